"""The hybrid's list: the warm ranking with cold candidates in the cold slots."""

from __future__ import annotations

import numpy as np

from anime_recs.recommend.hybrid import merge_cold_slots


def test_cold_candidates_take_the_slots_when_similar_enough():
    warm = np.array([[1, 2, 3, 4], [5, 6, -1, -1]])
    warm_scores = np.array([[0.9, 0.8, 0.7, 0.6], [0.5, 0.4, np.nan, np.nan]])
    cold = np.array([[10, 11], [12, -1]])
    cold_scores = np.array([[0.8, 0.3], [0.2, np.nan]])
    titles, scores, from_cold = merge_cold_slots(warm, warm_scores, cold, cold_scores, [2, 3], 0.5)
    # user 0: slot 2 takes 10 (0.8 >= 0.5), slot 3's candidate 11 (0.3) is below: warm 2
    # user 1: 12 (0.2) is below the threshold: the warm list as it is
    assert titles.tolist() == [[1, 10, 2, 3], [5, 6, -1, -1]]
    assert from_cold.tolist() == [[False, True, False, False], [False] * 4]
    assert np.allclose(scores[0], [0.9, 0.8, 0.8, 0.7])


def test_without_slots_the_list_is_the_warm_list():
    warm = np.array([[1, 2, 3]])
    titles, _, from_cold = merge_cold_slots(
        warm, np.ones((1, 3)), np.array([[9]]), np.ones((1, 1)), [], 0.0
    )
    assert titles.tolist() == [[1, 2, 3]] and not from_cold.any()


def test_a_cold_slot_at_the_top_and_a_short_warm_list():
    titles, _, _ = merge_cold_slots(
        np.array([[1, -1, -1]]),
        np.array([[0.5, np.nan, np.nan]]),
        np.array([[7, 8]]),
        np.array([[0.9, 0.9]]),
        [1, 3],
        0.0,
    )
    assert titles.tolist() == [[7, 1, 8]]


def test_a_list_whose_warm_part_runs_out_is_packed_to_the_left():
    titles, scores, from_cold = merge_cold_slots(
        np.array([[1, -1, -1, -1]]),
        np.array([[0.5, np.nan, np.nan, np.nan]]),
        np.array([[7, 8]]),
        np.array([[0.9, 0.8]]),
        [2, 4],
        0.0,
    )
    assert titles.tolist() == [[1, 7, 8, -1]]
    assert from_cold.tolist() == [[False, True, True, False]]
    assert np.isnan(scores[0, 3])
