"""Bootstrap CI of the pooled ratio, resampling users; deterministic by seed."""

from __future__ import annotations

import numpy as np
import pytest

from anime_recs.evaluation.bootstrap import bootstrap_ratio_ci, resample_counts


def test_resample_counts_draw_every_user_count_times():
    counts = resample_counts(np.random.default_rng(0), 7, 5)
    assert counts.shape == (5, 7) and (counts.sum(axis=1) == 7).all()


def test_ci_is_deterministic_and_brackets_the_estimate():
    rng = np.random.default_rng(4)
    hits = rng.integers(0, 4, size=(300, 2)).astype(float)
    sums = hits * rng.uniform(-1, 1, size=(300, 2))
    low, high = bootstrap_ratio_ci(sums, hits, 400, seed=11)
    again = bootstrap_ratio_ci(sums, hits, 400, seed=11)
    assert np.array_equal(low, again[0]) and np.array_equal(high, again[1])
    other = bootstrap_ratio_ci(sums, hits, 400, seed=12)
    assert not np.array_equal(low, other[0])
    estimate = sums.sum(axis=0) / hits.sum(axis=0)
    assert (low < estimate).all() and (estimate < high).all()
    # same replicates as computing one column at a time with the same seed
    low0, high0 = bootstrap_ratio_ci(sums[:, :1], hits[:, :1], 400, seed=11)
    assert low0[0] == pytest.approx(low[0], rel=1e-12)
    assert high0[0] == pytest.approx(high[0], rel=1e-12)


def test_constant_ratio_gives_a_point_interval_and_edge_cases():
    hits = np.array([[1.0], [2.0], [3.0]])
    low, high = bootstrap_ratio_ci(0.5 * hits, hits, 50, seed=1)
    assert low[0] == pytest.approx(0.5) and high[0] == pytest.approx(0.5)
    low, high = bootstrap_ratio_ci(hits, hits, 0, seed=1)
    assert np.isnan(low).all() and np.isnan(high).all()
    low, high = bootstrap_ratio_ci(np.zeros((3, 1)), np.zeros((3, 1)), 10, seed=1)
    assert np.isnan(low).all()
    with pytest.raises(ValueError, match="one shape"):
        bootstrap_ratio_ci(np.zeros((3, 1)), np.zeros((3, 2)), 10, seed=1)


def test_paired_difference_ci_resamples_users_of_both_recommenders_together():
    from anime_recs.evaluation.bootstrap import paired_difference_ci

    # b = a - 0.1 for every user: the paired difference is exactly 0.1 in every replicate,
    # however spread a is
    a = np.random.default_rng(0).random(200)
    mean, low, high = paired_difference_ci(a, a - 0.1, 300, 1)
    assert mean == pytest.approx(0.1) and low == pytest.approx(0.1) and high == pytest.approx(0.1)
    mean, low, high = paired_difference_ci(np.r_[np.ones(50), np.zeros(50)], np.zeros(100), 500, 1)
    assert mean == pytest.approx(0.5) and 0.35 < low < 0.5 < high < 0.65
