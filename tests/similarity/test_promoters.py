"""Promoters, the compact promoter matrix, cost estimates and block planning."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.testing import assertDataFrameEqual

from anime_recs.similarity.matrix import (
    build_promoter_matrix,
    compact_index,
    plan_blocks,
    title_costs,
    title_work,
    total_triples,
)
from anime_recs.similarity.promoters import promoters
from anime_recs.tables import RATINGS_SCHEMA


def test_promoters_keep_train_ratings_of_9_and_10(spark):
    ratings = spark.createDataFrame(
        [(1, 10, 9, "train"), (1, 11, 8, "train"), (2, 10, 10, "train"), (2, 11, 10, "test")],
        RATINGS_SCHEMA,
    )
    assertDataFrameEqual(promoters(ratings), [(1, 10), (2, 10)])


def test_promoters_require_columns(spark):
    with pytest.raises(ValueError, match=r"missing columns \['split'\]"):
        promoters(spark.createDataFrame([(1, 2, 9)], "user_id int, anime_id int, rating int"))


def test_matrix_has_compact_sorted_indexes_and_counts_duplicates_once():
    # users 50, 7, 20; titles 300, 100, 200; (7, 100) twice
    m = build_promoter_matrix(
        np.array([50, 7, 7, 20, 7, 50]), np.array([300, 100, 100, 100, 200, 100])
    )
    assert m.title_ids.tolist() == [100, 200, 300]
    assert m.promoters.tolist() == [3, 1, 1]  # 100: users 7, 20, 50
    assert m.n_users == 3 and m.nnz == 5
    dense = m.csr().toarray()  # rows: users 7, 20, 50
    assert dense.tolist() == [[1, 1, 0], [1, 0, 0], [1, 0, 1]]
    assert (m.columns_t(1, 3).toarray() == dense[:, 1:3].T).all()
    assert (m.right(1).toarray() == dense[:, 1:]).all()


def test_title_work_counts_triples_right_of_the_diagonal():
    # user 1 promotes titles 0,1,2; user 2 promotes 0,2
    m = build_promoter_matrix(np.array([1, 1, 1, 2, 2]), np.array([0, 1, 2, 0, 2]))
    triples, rows = title_work(m)
    # title 0: user 1 -> {1,2} (2), user 2 -> {2} (1); title 1: user 1 -> {2}; title 2: none
    assert triples.tolist() == [3, 1, 0]
    assert rows.tolist() == [2, 1, 0]  # min(n - 1 - j, triples_j)
    assert title_costs(m, output_row_cost=10).tolist() == [23, 11, 0]
    assert total_triples(m) == 4  # 3 pairs for user 1, 1 for user 2


def test_plan_blocks_balances_cost_and_a_heavy_title_closes_its_block():
    assert plan_blocks(np.ones(100), 4).tolist() == [0, 25, 50, 75, 100]
    assert plan_blocks(np.array([1, 1, 1, 1, 10, 10]), 2).tolist() == [0, 5, 6]
    # one title costing 1000 of 1009: both cuts fall right after it -> 2 blocks, not 3
    heavy = np.array([1, 1, 1, 1000, 1, 1, 1, 1, 1, 1])
    assert plan_blocks(heavy, 3).tolist() == [0, 4, 10]


def test_plan_blocks_edge_cases():
    assert plan_blocks(np.zeros(0), 4).tolist() == [0, 0]
    assert plan_blocks(np.ones(3), 10).tolist() == [0, 1, 2, 3]
    assert plan_blocks(np.ones(5), 1).tolist() == [0, 5]
    assert plan_blocks(np.zeros(4), 2).tolist() == [0, 2, 4]  # no cost: by count


@pytest.mark.parametrize(
    "ids",
    [
        np.array([7, 3, 7, 0, 3]),  # small ids: presence table
        np.array([5, -2, 5, 9]),  # negative: np.unique
        np.array([10**12, 3, 10**12]),  # sparse huge ids: np.unique
        np.array([], dtype=np.int64),
    ],
)
def test_compact_index_matches_np_unique(ids):
    unique_ids, index = compact_index(ids)
    expected_ids, expected_index = np.unique(ids, return_inverse=True)
    assert unique_ids.tolist() == expected_ids.tolist()
    assert index.tolist() == expected_index.reshape(-1).tolist()
