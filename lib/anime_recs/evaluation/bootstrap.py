"""Bootstrap confidence intervals of the pooled NPS, resampling users."""

from __future__ import annotations

import numpy as np


def resample_counts(rng: np.random.Generator, n_users: int, samples: int) -> np.ndarray:
    """``[samples, n_users]`` multinomial resampling counts: each row draws ``n_users`` users
    with replacement and counts how often each user was drawn."""
    draws = rng.integers(0, n_users, size=(samples, n_users))
    flat = draws + np.arange(samples)[:, None] * n_users
    return np.bincount(flat.ravel(), minlength=samples * n_users).reshape(samples, n_users)


def bootstrap_ratio_ci(
    numerators: np.ndarray,
    denominators: np.ndarray,
    samples: int,
    seed: int,
    level: float = 0.95,
    chunk: int = 25,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap CI of the pooled ratio ``sum_u num_u / sum_u den_u`` per column.

    ``numerators``/``denominators`` are ``[users, columns]`` (for NPS: per-user weighted point
    sums and hit counts, one column per recommender and N). Each replicate resamples users with
    replacement (counts ``w_u``) and computes ``sum_u w_u num_u / sum_u w_u den_u``; the same
    replicates serve every column (a paired comparison). Returns ``(low, high)`` per column at
    the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles; NaN when ``samples`` is 0 or no
    replicate has a positive denominator. Deterministic for a given ``seed``.
    """
    numerators = np.asarray(numerators, dtype=np.float64)
    denominators = np.asarray(denominators, dtype=np.float64)
    if numerators.shape != denominators.shape or numerators.ndim != 2:
        raise ValueError("numerators and denominators must be [users, columns] of one shape")
    n_users, n_cols = numerators.shape
    nan = np.full(n_cols, np.nan)
    if samples <= 0 or n_users == 0:
        return nan, nan.copy()
    rng = np.random.default_rng(seed)
    ratios = np.empty((samples, n_cols))
    for start in range(0, samples, chunk):
        size = min(chunk, samples - start)
        weights = resample_counts(rng, n_users, size).astype(np.float64)
        num = weights @ numerators
        den = weights @ denominators
        with np.errstate(invalid="ignore", divide="ignore"):
            ratios[start : start + size] = np.where(
                den > 0, num / np.where(den > 0, den, 1), np.nan
            )
    alpha = (1 - level) / 2
    valid = ~np.isnan(ratios).all(axis=0)
    low, high = nan.copy(), nan.copy()
    if valid.any():
        low[valid] = np.nanquantile(ratios[:, valid], alpha, axis=0)
        high[valid] = np.nanquantile(ratios[:, valid], 1 - alpha, axis=0)
    return low, high


def paired_difference_ci(
    a: np.ndarray, b: np.ndarray, samples: int, seed: int, level: float = 0.95
) -> tuple[float, float, float]:
    """Mean of the per-user differences ``a_u - b_u`` (two recommenders' measures of the same
    users, in the same order) and its percentile bootstrap CI, resampling users:
    ``(mean, low, high)``."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if diff.size == 0:
        return float("nan"), float("nan"), float("nan")
    low, high = bootstrap_ratio_ci(diff[:, None], np.ones((diff.size, 1)), samples, seed, level)
    return float(diff.mean()), float(low[0]), float(high[0])
