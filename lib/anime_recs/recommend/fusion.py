"""The fusion formulas of the ``hybrid`` recommender (:mod:`anime_recs.recommend.hybrid`).

A leaf module (numpy only): the config validates ``recommend.hybrid.fusion`` against
:data:`FUSIONS` without importing the recommend stage.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FUSIONS = ("rrf", "score")


def rrf_similarity(
    rank_cf: np.ndarray, rank_content: np.ndarray, weight_cf: float, rrf_k: int
) -> np.ndarray:
    """Weighted reciprocal-rank fusion, scaled to (0, 1]::

        s = (rrf_k + 1) x ( w / (rrf_k + rank_cf) + (1 - w) / (rrf_k + rank_content) )

    with 1-based ranks in each source's list and a missing rank (0) contributing nothing; a
    candidate first in both lists gets 1.
    """
    rank_cf = np.asarray(rank_cf, dtype=np.float64)
    rank_content = np.asarray(rank_content, dtype=np.float64)
    cf = np.where(rank_cf > 0, weight_cf / (rrf_k + rank_cf), 0.0)
    content = np.where(rank_content > 0, (1.0 - weight_cf) / (rrf_k + rank_content), 0.0)
    return (rrf_k + 1) * (cf + content)


def score_similarity(
    sim_cf: np.ndarray, sim_content: np.ndarray, weight_cf: float
) -> np.ndarray:
    """Weighted sum of per-title min-max normalised similarities::

        s = w x cf_norm + (1 - w) x content_norm

    where each input is already normalised to [0, 1] within the title's list
    (:func:`minmax_by_key`) and a candidate missing from a list has 0 there (NaN in, 0 used).
    """
    cf = np.nan_to_num(np.asarray(sim_cf, dtype=np.float64), nan=0.0)
    content = np.nan_to_num(np.asarray(sim_content, dtype=np.float64), nan=0.0)
    return weight_cf * cf + (1.0 - weight_cf) * content


def minmax_by_key(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``(v - min_t) / (max_t - min_t)`` within each key ``t``; 1 where a key's values are all
    equal (a single neighbour is that title's best)."""
    keys = np.asarray(keys)
    values = np.asarray(values, dtype=np.float64)
    if keys.size == 0:
        return values
    frame = pd.DataFrame({"k": keys, "v": values})
    low = frame.groupby("k")["v"].transform("min").to_numpy()
    high = frame.groupby("k")["v"].transform("max").to_numpy()
    span = high - low
    return np.where(span > 0, (values - low) / np.where(span > 0, span, 1.0), 1.0)
