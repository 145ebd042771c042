"""The held-out-title measures every recipe reports: titles of a pair set, the lists drawn once."""

from __future__ import annotations

import numpy as np
import pytest

from anime_recs.training.examples import PairSet
from anime_recs.training.held_out import (
    NDCG,
    SPEARMAN,
    chosen_measure,
    held_out_of,
    pair_set_titles,
    pair_set_values,
)


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


def test_each_objective_keeps_its_epoch_by_its_own_measure():
    assert chosen_measure("in_batch") == SPEARMAN and chosen_measure("listwise") == NDCG
