"""The padding benchmark's counts, on hand-computed examples (it prints what the profile in
docs/performance.md quotes)."""

import numpy as np
from benchmarks.bench_padding import padded_cost, udf_groups


def test_each_group_is_priced_at_its_longest_text():
    lengths = np.array([3, 5, 2, 2])
    # [3, 5] padded to 5: 10 positions, 2 x 25 attention; [2, 2]: 4 positions, 2 x 4
    assert padded_cost([[0, 1], [2, 3]], lengths) == (14, 58)
    assert padded_cost([[0, 1, 2, 3]], lengths) == (20, 100)
    assert padded_cost([[1], [0], [2], [3]], lengths) == (12, 42)  # no padding: the floor


def test_udf_groups_sort_each_partition_longest_first_then_cut_arrow_and_mini_batches():
    chars = [10, 30, 20, 40, 5]
    # partition 0 holds 0, 2, 4 -> by length 2, 0, 4 -> Arrow [2, 0], [4] -> mini [2, 0], [4]
    # partition 1 holds 1, 3 -> 3, 1 -> one Arrow batch, one mini-batch
    assert udf_groups(chars, partitions=2, arrow_batch=2, batch_size=2) == [[2, 0], [4], [3, 1]]
    assert udf_groups(chars, partitions=2, arrow_batch=2, batch_size=1) == [
        [2], [0], [4], [3], [1]
    ]  # fmt: skip
