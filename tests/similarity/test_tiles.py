"""The title-block tiles (``jaccard.mode: tiles``): block plan, tile grid, kernel and the Spark
computation, each against hand-computed values or brute-force Python sets."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from pyspark.testing import assertDataFrameEqual

from anime_recs.similarity.jaccard import (
    PAIR_ARROW_SCHEMA,
    block_pair_batches,
    broadcast_peak_bytes,
    pair_jaccard,
)
from anime_recs.similarity.matrix import build_promoter_matrix, plan_title_blocks, scipy_counter
from anime_recs.similarity.promoters import (
    pairs_of_lists,
    promoter_lists,
    promoters,
    title_block,
    title_promoter_counts,
)
from anime_recs.similarity.stage import jaccard_mode
from anime_recs.similarity.tiles import (
    tile_blocks,
    tile_membership,
    tile_pair_batches,
    tile_pair_jaccard,
)
from tests.similarity.jaccard_data import brute_force_pairs

MAX_CELLS, DEVICE = 4_000_000, "auto"


def _rows(batches) -> list[tuple]:
    table = pa.Table.from_batches(list(batches), schema=PAIR_ARROW_SCHEMA)
    return list(zip(*[table.column(i).to_pylist() for i in range(table.num_columns)], strict=True))


def _promoter_sets(rows) -> dict[int, list[int]]:
    sets: dict[int, set[int]] = {}
    for user, anime, rating, split in rows:
        if split == "train" and rating >= 9:
            sets.setdefault(anime, set()).add(user)
    return {a: sorted(users) for a, users in sorted(sets.items())}


def test_title_blocks_close_before_the_title_that_would_overflow_the_budget():
    # budget 5: [3, 2] | [4, 1] | [6] (over budget: alone) | [1]
    bounds = plan_title_blocks(np.array([3, 2, 4, 1, 6, 1]), 5)
    assert bounds.tolist() == [0, 2, 4, 5, 6]
    assert plan_title_blocks(np.array([3, 2, 4]), 100).tolist() == [0, 3]
    assert plan_title_blocks(np.array([], dtype=np.int64), 5).tolist() == [0]
    with pytest.raises(ValueError, match="block_promoters must be >= 1"):
        plan_title_blocks(np.array([1]), 0)


def test_tile_grid_is_the_upper_triangle_in_row_order():
    # 3 blocks: (0,0)=0 (0,1)=1 (0,2)=2 (1,1)=3 (1,2)=4 (2,2)=5
    assert tile_blocks(3) == [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]
    assert sorted(tile_blocks(4)) == [(i, j) for i in range(4) for j in range(4) if i <= j]
    # block 1 of 3 is read by tiles (0,1), (1,1), (1,2): b tiles per block, b^2 rows
    membership = tile_membership(3)
    assert sorted(t for t, block in membership if block == 1) == [1, 3, 4]
    assert len(membership) == 9


def test_mode_auto_picks_tiles_past_the_broadcast_memory_budget():
    # 100M pairs: driver 0.13 GiB + 5.7e9 B = 5.44 GiB; worker 0.75 GiB + 2.1e9 B = 2.71 GiB
    assert broadcast_peak_bytes(100_000_000) == int(0.13 * 2**30) + 57 * 100_000_000
    # 1M pairs: the worker's fixed 0.75 GiB dominates
    assert broadcast_peak_bytes(1_000_000) == int(0.75 * 2**30) + 21 * 1_000_000
    assert jaccard_mode("auto", 100_000_000, 4.0) == "tiles"
    assert jaccard_mode("auto", 100_000_000, 6.0) == "broadcast"
    assert jaccard_mode("broadcast", 10**12, 1.0) == "broadcast"
    assert jaccard_mode("tiles", 1, 100.0) == "tiles"


def test_kernel_off_diagonal_gives_the_pairs_with_the_right_hand_titles(generated_ratings):
    promo = [(u, a) for u, a, r, s in generated_ratings if s == "train" and r >= 9]
    users, titles = (np.array(c) for c in zip(*promo, strict=True))
    matrix = build_promoter_matrix(users, titles)
    whole = _rows(block_pair_batches(matrix, 0, matrix.n_titles, 1, MAX_CELLS))
    ids = matrix.title_ids
    for lo, hi, right_lo, max_cells in [(0, 10, 10, 7), (5, 12, 30, 1), (20, 25, 0, 50)]:
        got = _rows(
            block_pair_batches(
                matrix,
                lo,
                hi,
                1,
                max_cells,
                counter=scipy_counter(matrix, right_lo),
                right_lo=right_lo,
            )
        )
        a_ids, b_ids = set(ids[lo:hi].tolist()), set(ids[right_lo:].tolist())
        assert got == [r for r in whole if r[0] in a_ids and r[1] in b_ids]
        assert got
    with pytest.raises(ValueError, match="inside the block"):
        list(block_pair_batches(matrix, 0, 10, 1, MAX_CELLS, right_lo=5))


def _promoter_table(rows, block_promoters: int) -> pa.Table:
    """The ``promoters`` table's rows, in Python, blocked as the stage blocks them."""
    lists = _promoter_sets(rows)
    anime_ids = np.array(list(lists), dtype=np.int32)
    bounds = plan_title_blocks(np.array([len(v) for v in lists.values()]), block_promoters)
    blocks = np.searchsorted(bounds, np.arange(anime_ids.size), side="right") - 1
    return pa.table(
        {
            "title_block": pa.array(blocks, pa.int32()),
            "anime_id": pa.array(anime_ids),
            "user_ids": pa.array(list(lists.values()), pa.list_(pa.int32())),
        }
    )


@pytest.mark.parametrize(("block_promoters", "max_cells"), [(1, 5), (40, 60), (10**9, 10**9)])
def test_tiles_cover_every_pair_exactly_once(generated_ratings, block_promoters, max_cells):
    table = _promoter_table(generated_ratings, block_promoters)
    n_blocks = int(table.column("title_block").to_numpy().max()) + 1
    blocks = table.column("title_block").to_numpy()
    got = []
    for i, j in tile_blocks(n_blocks):
        rows = table.filter(pa.array((blocks == i) | (blocks == j)))
        got += _rows(tile_pair_batches(rows, i, j, 1, max_cells, "cpu"))
    assert n_blocks > 1 or block_promoters == 10**9
    assert sorted(got) == brute_force_pairs(generated_ratings)


def test_title_block_column_counts_the_block_starts_at_or_below_the_id(spark):
    df = spark.createDataFrame([(i,) for i in (3, 9, 10, 11, 24, 25, 99)], "anime_id int")
    got = df.select(title_block(df.anime_id, [3, 10, 25]).alias("b")).collect()
    assert [r.b for r in got] == [0, 0, 1, 1, 1, 2, 2]


def test_promoters_table_and_spark_tiles_equal_brute_force_and_broadcast(
    spark, ratings_df, generated_ratings
):
    pairs = promoters(ratings_df)
    anime_ids, counts = title_promoter_counts(pairs)
    expected_lists = _promoter_sets(generated_ratings)
    assert anime_ids.tolist() == list(expected_lists)
    assert counts.tolist() == [len(v) for v in expected_lists.values()]
    # about 3 blocks, 6 tiles (one block per title is the kernel test's case, not Spark's)
    bounds = plan_title_blocks(counts, int(counts.sum() // 3))
    table = promoter_lists(pairs, anime_ids[bounds[:-1]].tolist()).cache()
    rows = {r.anime_id: r for r in table.collect()}
    assert {a: r.user_ids for a, r in rows.items()} == expected_lists
    assert all(r.promoters == len(r.user_ids) for r in rows.values())
    blocks = [rows[a].title_block for a in expected_lists]
    assert blocks == sorted(blocks) and len(set(blocks)) == len(bounds) - 1 >= 3
    assert [blocks.count(k) for k in range(len(bounds) - 1)] == np.diff(bounds).tolist()

    got, plan = tile_pair_jaccard(spark, table, len(bounds) - 1, 1, MAX_CELLS, DEVICE)
    assert plan.n_tiles == plan.n_blocks * (plan.n_blocks + 1) // 2
    broadcast, _ = pair_jaccard(spark, pairs_of_lists(table), 1, 0, MAX_CELLS, DEVICE)
    got_rows = got.collect()
    assertDataFrameEqual(got_rows, broadcast.collect(), checkRowOrder=False)
    assert sorted(map(tuple, got_rows)) == brute_force_pairs(generated_ratings)
    table.unpersist()


def test_spark_tiles_without_promoters_is_empty(spark):
    empty = spark.createDataFrame([], "anime_id int, title_block int, user_ids array<int>")
    got, plan = tile_pair_jaccard(spark, empty, 0, 1, MAX_CELLS, DEVICE)
    assert plan.n_tiles == 0 and got.count() == 0
    with pytest.raises(ValueError, match="min_intersection must be >= 1"):
        tile_pair_jaccard(spark, empty, 1, 0, MAX_CELLS, DEVICE)
