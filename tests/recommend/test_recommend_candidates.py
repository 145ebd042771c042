"""Candidates, their scores (with the frequency bonus), train exclusion, ties, top-N."""

from __future__ import annotations

import numpy as np

from anime_recs.recommend.candidates import aggregate_scores, candidate_lists, top_n


def test_a_candidate_scores_its_best_similarity_plus_a_bonus_per_further_seed():
    score = aggregate_scores(np.array([0.9, 0.8]), np.array([1, 3]), 0.05)
    assert np.allclose(score, [0.9, 0.9])  # 0.8 + 0.05 x 2


# titles 0..6 (indexes = anime_id order). User 0 promoted titles 0 and 1, rated 0, 1, 4 in train.
NB_INDEX = np.array(
    [
        [2, 3, 4],  # neighbours of 0
        [3, 5, 2],  # neighbours of 1
        [-1, -1, -1],
        [-1, -1, -1],
        [-1, -1, -1],
        [-1, -1, -1],
        [0, 1, -1],
    ]
)
NB_SIM = np.array(
    [
        [0.9, 0.7, 0.6],
        [0.8, 0.75, 0.5],
        [0, 0, 0],
        [0, 0, 0],
        [0, 0, 0],
        [0, 0, 0],
        [0.9, 0.1, 0],
    ]
)
N_TITLES = 7
TRAIN_KEYS = np.sort(np.array([0, 1, 4]))  # user 0: key = 0 * 7 + title


def lists(k=3, n_max=10, bonus=0.05):
    return candidate_lists(
        np.array([0, 0]), np.array([0, 1]), TRAIN_KEYS, NB_INDEX, NB_SIM, k, 1, n_max, bonus
    )


def test_weighted_adds_bonus_per_extra_occurrence_and_drops_train_titles():
    # candidates: 2 (0.9, 0.5) -> 0.95; 3 (0.7, 0.8) -> 0.85; 5 (0.75); 4 is rated in train
    titles, scores = lists()
    assert titles[0, :3].tolist() == [2, 3, 5] and titles[0, 3] == -1
    assert np.allclose(scores[0, :3], [0.95, 0.85, 0.75])
    assert np.isnan(scores[0, 3:]).all()


def test_k_limits_neighbours_per_promoted_title_and_n_max_cuts():
    titles, _ = lists(k=1)  # only 2 (from 0) and 3 (from 1)
    assert titles[0].tolist()[:3] == [2, 3, -1]
    titles, _ = lists(n_max=2)
    assert titles.shape == (1, 2) and titles[0].tolist() == [2, 3]


def test_ties_broken_by_smaller_anime_id():
    user = np.array([0, 0, 0, 1])
    title = np.array([9, 4, 6, 1])
    score = np.array([0.5, 0.5, 0.7, 0.1])
    titles, scores = top_n(user, title, score, 3, 3)
    assert titles.tolist() == [[6, 4, 9], [1, -1, -1], [-1, -1, -1]]
    assert scores[0].tolist() == [0.7, 0.5, 0.5]
