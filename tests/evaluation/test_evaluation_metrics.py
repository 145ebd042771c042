"""NPS points, (N - i)/N weights, pooled vs per-user NPS, precision, recall, NDCG, unique."""

from __future__ import annotations

import numpy as np
import pytest

from anime_recs.evaluation.metrics import (
    cold_share,
    evaluate_lists,
    ndcg,
    net_promoter_hits,
    nps_pooled,
    nps_user_mean,
    points,
    position_weights,
    precision,
    promoter_share,
    recall,
    unique_anime,
    user_stats,
)


def test_points_promoter_passive_detractor_and_no_rating():
    assert points(np.array([10, 9, 8, 7, 6, 1, 0])).tolist() == [1, 1, 0, 0, -1, -1, 0]


def test_position_weights():
    assert position_weights(4).tolist() == [1.0, 0.75, 0.5, 0.25]
    assert position_weights(1).tolist() == [1.0]


# user A: list [10, 0, 7, 3]; user B: [0, 9, 0, 0]; user C: no hits
RATINGS = np.array([[10, 0, 7, 3], [0, 9, 0, 0], [0, 0, 0, 0]])


def test_user_stats_weights_points_and_counts_passives_as_hits():
    s, h, p, d = user_stats(RATINGS, 4)
    # A: 1*1 + 0.5*0 + 0.25*(-1) = 0.75, hits 3 (the 7 is a hit with 0 points)
    assert s.tolist() == [0.75, 0.75, 0.0]
    assert h.tolist() == [3, 1, 0]
    assert p.tolist() == [1, 1, 0]
    assert d.tolist() == [1, 0, 0]  # A's 3
    s, h, p, _ = user_stats(RATINGS, 2)  # weights 1, 0.5
    assert s.tolist() == [1.0, 0.5, 0.0] and h.tolist() == [1, 1, 0]


def test_pooled_vs_user_mean():
    s, h, _, _ = user_stats(RATINGS, 4)
    assert nps_pooled(s, h) == pytest.approx(1.5 / 4)  # over all 4 hits
    assert nps_user_mean(s, h) == pytest.approx((0.75 / 3 + 0.75 / 1) / 2)  # C not scored
    assert np.isnan(nps_pooled(np.zeros(2), np.zeros(2)))
    assert np.isnan(nps_user_mean(np.zeros(2), np.zeros(2)))


def test_precision_recall_ndcg_hand_computed():
    promoted_test = np.array([2, 1, 0])
    _, _, p, _ = user_stats(RATINGS, 2)
    assert p.tolist() == [1, 1, 0]
    assert precision(p, 2) == pytest.approx((0.5 + 0.5 + 0) / 3)  # over all test users
    assert recall(p, promoted_test) == pytest.approx((1 / 2 + 1 / 1) / 2)  # C has none
    # A: rel at 0 -> dcg 1, idcg 1 + 1/log2(3); B: rel at 1 -> dcg 1/log2(3), idcg 1
    expected = (1 / (1 + 1 / np.log2(3)) + 1 / np.log2(3)) / 2
    assert ndcg(RATINGS, promoted_test, 2) == pytest.approx(expected)
    assert np.isnan(recall(p, np.zeros(3)))


def test_unique_anime_counts_distinct_titles_up_to_n():
    anime = np.array([[5, 6, 7], [5, 8, -1]])
    assert [unique_anime(anime, n) for n in (1, 2, 3)] == [1, 3, 4]


def test_evaluate_lists_per_n_not_cumulative():
    anime = np.array([[1, 2, 3, 4], [5, 6, -1, -1], [7, 8, 9, 1]])
    table, sums, hits, liked = evaluate_lists(RATINGS, np.array([2, 1, 0]), anime, 4)
    assert table["n"].tolist() == [1, 2, 3, 4]
    assert table["hits"].tolist() == [1, 2, 3, 4]
    assert table["users_scored"].tolist() == [1, 2, 2, 2]
    assert (table["users_total"] == 3).all()
    # N=3: A: 1 + (1/3)*0 = 1, B: (2/3)*1 -> pooled (1 + 2/3) / 3 hits
    assert table["nps"].tolist()[2] == pytest.approx((1 + 2 / 3) / 3)
    assert table["nps"].tolist()[3] == pytest.approx(1.5 / 4)
    assert sums[:, 3].tolist() == [0.75, 0.75, 0.0] and hits[:, 0].tolist() == [1, 0, 0]
    assert liked[:, 3].tolist() == [1, 1, 0]
    # N=4: A 1 promoter - 1 detractor, B 1 - 0, C 0: (0 + 1 + 0) / 3; 2 promoters of 4 hits
    assert table["net_promoter_hits"].tolist()[3] == pytest.approx(1 / 3)
    assert table["promoter_share"].tolist()[3] == pytest.approx(2 / 4)
    assert table["unique_anime"].tolist() == [3, 6, 8, 9]


def test_net_promoter_hits_and_promoter_share_by_hand():
    # two users: 3 promoters and 1 detractor among 5 hits; 0 and 0 among 1 hit
    assert net_promoter_hits(np.array([3, 0]), np.array([1, 0])) == pytest.approx(1.0)
    assert promoter_share(np.array([3, 0]), np.array([5, 1])) == pytest.approx(0.5)
    assert np.isnan(promoter_share(np.zeros(2), np.zeros(2)))
    assert np.isnan(net_promoter_hits(np.zeros(0), np.zeros(0)))


def test_cold_share_counts_the_filled_slots_on_cold_titles():
    anime = np.array([[5, 6, 7], [6, 8, -1]])
    # N=1: 5 cold of {5, 6}; N=3: cold 5, 7 of 5 filled slots
    assert cold_share(anime, np.array([5, 7]), 1) == pytest.approx(0.5)
    assert cold_share(anime, np.array([5, 7]), 3) == pytest.approx(2 / 5)
    assert np.isnan(cold_share(np.full((1, 2), -1), np.array([5]), 2))
