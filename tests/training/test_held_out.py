"""The held-out-title measures every recipe reports: titles of a pair set, the lists drawn once."""

from __future__ import annotations

import numpy as np
import pytest

from anime_recs.training.examples import PairSet
from anime_recs.training.held_out import (
    NDCG,
    SPEARMAN,
    held_out_of,
    neighbourhood_ndcg,
    neighbourhoods,
    pair_rows,
    pair_set_titles,
    pair_set_values,
    relevance_matrix,
)
from tests.training.training_data import hidden_world


def test_pair_set_titles_and_values_by_hand():
    pairs = PairSet(["t7", "t3"], ["t3", "t9"], [0.5, 0.25], [(7, 3), (3, 9)])
    ids, texts = pair_set_titles(pairs)
    assert ids.tolist() == [3, 7, 9] and texts == ["t3", "t7", "t9"]
    a, b, value = pair_set_values(pairs)
    assert a.tolist() == [7, 3] and b.tolist() == [3, 9] and value.tolist() == [0.5, 0.25]


def test_the_neighbourhoods_are_drawn_from_the_vectors_before_and_re_ranked_by_each():
    # titles 10, 20, 30 (rows 0, 1, 2); the valued pair is (10, 30) with Jaccard 0.4, (10, 20)
    # has 0; with 2 candidates each title's list is both others, ordered by the vectors
    # before; title 20 has no valued candidate and is dropped
    ids = np.array([10, 20, 30])
    before = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    val = (np.array([10, 10]), np.array([20, 30]), np.array([0.0, 0.4]))
    held_out = held_out_of(ids, before, val, candidates=2, k=1)
    assert held_out.titles == 3
    assert held_out.lists.first.tolist() == [0, 2]
    assert held_out.lists.second.tolist() == [[1, 2], [1, 0]]
    # before: each list's first by cosine is title 20 (gain 0): NDCG@1 = 0; Spearman of the
    # cosines (0.8, 0.0) vs the Jaccard (0.0, 0.4): -1
    assert held_out.measures(before) == {SPEARMAN: pytest.approx(-1.0), NDCG: 0.0}
    # vectors that put 10 and 30 together rank the valued partner first in both lists
    after = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    assert held_out.measures(after) == {SPEARMAN: pytest.approx(1.0), NDCG: 1.0}


def test_neighbourhoods_exclude_the_title_and_break_ties_by_smaller_row():
    v = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    near = neighbourhoods(v, np.array([0, 1, 2, 3]), 2)
    assert near[0].tolist() == [1, 3]
    assert near[2].tolist() == [0, 1]  # all at cosine 0: the smaller rows


def test_neighbourhoods_in_chunks_equal_one_block(monkeypatch):
    from anime_recs.training import held_out

    v, *_ = hidden_world(n=60)
    whole = neighbourhoods(v, np.arange(60), 7)
    monkeypatch.setattr(held_out, "NEIGHBOURHOOD_CHUNK", 8)
    np.testing.assert_array_equal(neighbourhoods(v, np.arange(60), 7), whole)


def test_pair_rows_by_hand():
    # ids 30, 10, 20 are rows 0, 1, 2; the pair with title 99 (no vector) is dropped
    a, b, value = pair_rows(
        np.array([30, 10, 20]),
        np.array([10, 20, 99]),
        np.array([30, 30, 10]),
        np.array([0.5, 0.25, 0.1]),
    )
    assert a.tolist() == [1, 2] and b.tolist() == [0, 0] and value.tolist() == [0.5, 0.25]


def test_relevance_matrix_is_symmetric_and_zero_when_absent():
    rel = relevance_matrix(
        np.array([0, 2]),
        np.array([[1, 2], [0, 1]]),
        np.array([0, 1]),
        np.array([2, 2]),
        np.array([0.5, 0.3]),
    )
    np.testing.assert_allclose(rel, [[0.0, 0.5], [0.5, 0.3]])


def test_neighbourhood_ndcg_by_hand():
    # anchor 0 at (1, 0); candidates 1 (cos 1) and 2 (cos 0) with gains 0 and 1:
    # ranking puts 1 first: DCG@2 = 0 + 1 / log2(3), IDCG = 1
    v = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    got = neighbourhood_ndcg(v, np.array([0]), np.array([[1, 2]]), np.array([[0.0, 1.0]]), 2)
    assert got == pytest.approx(1 / np.log2(3))
    assert neighbourhood_ndcg(v, np.array([0]), np.array([[1, 2]]), np.zeros((1, 2)), 2) is None
