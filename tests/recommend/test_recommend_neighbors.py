"""Neighbours: top-k with the tie rule, exact blocked cosine, promoter Jaccard, dense arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from anime_recs.recommend.neighbors import (
    cosine_neighbors,
    cosine_similarity_block,
    jaccard_neighbors,
    neighbor_arrays,
    topk_by_key,
    unit_vectors,
)


def test_topk_by_key_keeps_k_best_ties_by_smaller_neighbor():
    keys = np.array([1, 1, 1, 1, 2, 2])
    nbrs = np.array([40, 30, 20, 10, 7, 9])
    sims = np.array([0.5, 0.9, 0.5, 0.1, 0.3, 0.3])
    k, n, s, r = topk_by_key(keys, nbrs, sims, 2)
    assert k.tolist() == [1, 1, 2, 2]
    assert n.tolist() == [30, 20, 7, 9]  # 20 beats 40 at 0.5 (smaller id)
    assert s.tolist() == [0.9, 0.5, 0.3, 0.3]
    assert r.tolist() == [1, 2, 1, 2]


def test_cosine_similarity_block_is_the_cosine():
    a = unit_vectors(np.array([[3.0, 4.0], [0.0, 0.0]]))
    b = unit_vectors(np.array([[1.0, 0.0], [0.0, 2.0]]))
    assert np.allclose(cosine_similarity_block(a, b), [[0.6, 0.8], [0.0, 0.0]])


def test_cosine_neighbors_hand_example_excludes_self_and_breaks_ties_by_id():
    ids = np.array([30, 10, 20, 40])
    vectors = np.array([[1.0, 1.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # 10 and 20 equal
    got = cosine_neighbors(ids, vectors, k=2)
    c = 1 / np.sqrt(2)
    expected = pd.DataFrame(
        {
            "anime_id": [10, 10, 20, 20, 30, 30, 40, 40],
            "neighbor_id": [20, 30, 10, 30, 10, 20, 30, 10],
            "rank": [1, 2, 1, 2, 1, 2, 1, 2],
            "similarity": [1.0, c, 1.0, c, c, c, c, 0.0],
        }
    )
    # 30 is equally close to 10, 20 and 40: the smaller ids win; 40's second: 10 before 20
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, atol=1e-12)


def test_cosine_neighbors_blocks_give_the_same_result():
    rng = np.random.default_rng(0)
    ids = np.arange(100, 137)
    vectors = rng.normal(size=(ids.size, 5))
    one = cosine_neighbors(ids, vectors, k=4, block_rows=1000)
    blocked = cosine_neighbors(ids, vectors, k=4, block_rows=5)
    pd.testing.assert_frame_equal(one, blocked)
    # brute force
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = unit @ unit.T
    for i, title in enumerate(ids):
        order = sorted((j for j in range(ids.size) if j != i), key=lambda j: (-sims[i, j], j))
        got = one[one["anime_id"] == title]["neighbor_id"].tolist()
        assert got == [int(ids[j]) for j in order[:4]]


def test_cosine_neighbors_rejects_bad_shapes():
    with pytest.raises(ValueError, match="vectors must be"):
        cosine_neighbors(np.array([1, 2]), np.zeros((3, 2)), k=1)
    with pytest.raises(ValueError, match="unique"):
        cosine_neighbors(np.array([1, 1]), np.zeros((2, 2)), k=1)


def test_jaccard_neighbors_uses_both_directions(spark):
    pairs = spark.createDataFrame(
        [(1, 2, 0.5), (1, 3, 0.2), (2, 3, 0.5), (3, 4, 0.9), (1, 4, 0.2)],
        "anime_a int, anime_b int, jaccard double",
    ).repartition(2)
    got = jaccard_neighbors(pairs, k=2, buffer_rows=3)
    expected = pd.DataFrame(
        {
            "anime_id": [1, 1, 2, 2, 3, 3, 4, 4],
            "neighbor_id": [2, 3, 1, 3, 4, 2, 3, 1],
            "rank": [1, 2, 1, 2, 1, 2, 1, 2],
            "similarity": [0.5, 0.2, 0.5, 0.5, 0.9, 0.5, 0.9, 0.2],
        }
    )
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    with pytest.raises(ValueError, match="missing columns"):
        jaccard_neighbors(pairs.drop("jaccard"), k=2)


def test_neighbor_arrays_dense_with_padding():
    nb = pd.DataFrame(
        {
            "anime_id": [5, 5, 9],
            "neighbor_id": [9, 7, 5],
            "rank": [1, 2, 1],
            "similarity": [0.8, 0.4, 0.8],
        }
    )
    idx, sim = neighbor_arrays(nb, np.array([5, 7, 9]), k=2)
    assert idx.tolist() == [[2, 1], [-1, -1], [0, -1]]
    assert sim.tolist() == [[0.8, 0.4], [0.0, 0.0], [0.8, 0.0]]
    with pytest.raises(ValueError, match="universe"):
        neighbor_arrays(nb, np.array([5, 9]), k=2)


def test_partial_topk_with_floor_matches_brute_force():
    import pyarrow as pa

    from anime_recs.recommend.neighbors import _partial_topk_arrow

    rng = np.random.default_rng(2)
    a = rng.integers(0, 30, 400)
    b = rng.integers(0, 30, 400)
    a, b = np.minimum(a, b)[a != b], np.maximum(a, b)[a != b]
    pairs = pd.DataFrame({"anime_a": a, "anime_b": b}).drop_duplicates()
    pairs["jaccard"] = rng.integers(0, 5, len(pairs)) / 4  # many ties
    batches = [
        pa.RecordBatch.from_pandas(pairs.iloc[i : i + 17], preserve_index=False)
        for i in range(0, len(pairs), 17)
    ]
    out = pa.Table.from_batches(list(_partial_topk_arrow(3, 20)(iter(batches)))).to_pandas()
    for title in range(30):
        both = [(j, y) for x, y, j in pairs.itertuples(index=False) if x == title]
        both += [(j, x) for x, y, j in pairs.itertuples(index=False) if y == title]
        want = [y for j, y in sorted(both, key=lambda t: (-t[0], t[1]))[:3]]
        assert out[out["anime_id"] == title]["neighbor_id"].tolist() == want


def test_restrict_neighbors_ranks_the_allowed_neighbours_again():
    from anime_recs.recommend.neighbors import restrict_neighbors

    deep = pd.DataFrame(
        {
            "anime_id": [1, 1, 1, 1, 2, 2],
            "neighbor_id": [5, 6, 7, 8, 5, 9],
            "rank": [1, 2, 3, 4, 1, 2],
            "similarity": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
        }
    )
    out = restrict_neighbors(deep, np.array([6, 8, 9]), 1)
    assert out.values.tolist() == [[1, 6, 1, 0.8], [2, 9, 1, 0.4]]
    assert restrict_neighbors(deep, np.array([6, 8]), 2)["neighbor_id"].tolist() == [6, 8]
