"""Cold-start metrics pinned on a hand-computed example; cold titles found from the splits."""

from __future__ import annotations

import numpy as np
import pytest

from anime_recs.evaluation.cold_start import cold_start_metrics, cold_titles

ANIME = np.array([[5, 7, 8], [9, 5, -1], [1, 2, 3]])
RATINGS = np.array([[10, 0, 6], [9, 7, 0], [10, 0, 0]])
COLD = np.array([5, 8])
HAS_COLD_TEST = np.array([True, True, False])


def test_cold_start_metrics_by_hand():
    got = cold_start_metrics(ANIME, RATINGS, COLD, HAS_COLD_TEST, 3).set_index("n")
    assert got.cold_hits.tolist() == [1, 2, 3]
    assert got.cold_promoted_hits.tolist() == [1, 1, 1]
    assert got.users_with_cold_test.tolist() == [2, 2, 2]
    # N=2: user 0 pos 0 (+1 x 1), user 1 pos 1 (rating 7: 0 points); N=3 adds user 0 pos 2
    # (rating 6: -1 x 1/3) with weights (3 - i) / 3
    assert got.nps_cold.tolist() == pytest.approx([1.0, 0.5, (1 - 1 / 3) / 3])
    assert got.precision_cold.tolist() == pytest.approx([1 / 2, 1 / 4, 1 / 6])


def test_no_cold_titles_gives_no_hits():
    got = cold_start_metrics(ANIME, RATINGS, np.array([], dtype=int), HAS_COLD_TEST, 2)
    assert got.cold_hits.tolist() == [0, 0]
    assert np.isnan(got.nps_cold).all()


def test_cold_titles_are_rated_in_test_only(spark):
    ratings = spark.createDataFrame(
        [(1, 10, "train"), (2, 10, "test"), (1, 11, "test"), (2, 11, "test"), (1, 12, "train")],
        "user_id int, anime_id int, split string",
    )
    assert [r.anime_id for r in cold_titles(ratings).collect()] == [11]
