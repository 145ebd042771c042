"""The ``hybrid`` recommender's neighbours: collaborative and content neighbour lists fused.

For every title ``t`` the candidates are the union of its top-``depth`` neighbours by promoter
Jaccard (collaborative) and by the cosine of the content embedder's vectors. Each candidate gets
one fused similarity (:func:`rrf_similarity` or :func:`score_similarity`), and the top ``k`` by
fused similarity (ties by smaller ``anime_id``) become the hybrid's neighbour list, stored in
``anime_neighbors`` like every other recommender's and scored by the same candidate aggregation.

A title without collaborative neighbours (a cold-start title nobody promoted in train) keeps
its content neighbours, and a cold-start title can enter another title's hybrid list through
the content side: collaborative filtering alone can reach neither.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from anime_recs.recommend.neighbors import NEIGHBOR_COLUMNS, topk_by_key

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


def hybrid_neighbors(
    cf: pd.DataFrame,
    content: pd.DataFrame,
    k: int,
    fusion: str = "rrf",
    weight_cf: float = 0.5,
    rrf_k: int = 60,
) -> pd.DataFrame:
    """Top-``k`` hybrid neighbours of every title from two neighbour frames.

    ``cf`` and ``content`` have :data:`~anime_recs.recommend.neighbors.NEIGHBOR_COLUMNS`
    (their depth is the candidate depth); the output has the same columns with ``similarity``
    the fused score of ``fusion`` (``rrf`` or ``score``).
    """
    if fusion not in FUSIONS:
        raise ValueError(f"unknown fusion {fusion!r}; expected one of {FUSIONS}")
    for name, frame in (("cf", cf), ("content", content)):
        missing = [c for c in NEIGHBOR_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} neighbours: missing columns {missing}")
    left = cf[NEIGHBOR_COLUMNS].rename(columns={"rank": "rank_cf", "similarity": "sim_cf"})
    right = content[NEIGHBOR_COLUMNS].rename(
        columns={"rank": "rank_content", "similarity": "sim_content"}
    )
    merged = left.merge(right, on=["anime_id", "neighbor_id"], how="outer")
    if merged.empty:
        return pd.DataFrame({c: [] for c in NEIGHBOR_COLUMNS}).astype(
            {"anime_id": "int32", "neighbor_id": "int32", "rank": "int32", "similarity": "float64"}
        )
    keys = merged["anime_id"].to_numpy(dtype=np.int64)
    if fusion == "rrf":
        fused = rrf_similarity(
            merged["rank_cf"].fillna(0).to_numpy(),
            merged["rank_content"].fillna(0).to_numpy(),
            weight_cf,
            rrf_k,
        )
    else:
        cf_norm = np.full(len(merged), np.nan)
        content_norm = np.full(len(merged), np.nan)
        has_cf = merged["sim_cf"].notna().to_numpy()
        has_content = merged["sim_content"].notna().to_numpy()
        cf_norm[has_cf] = minmax_by_key(keys[has_cf], merged["sim_cf"].to_numpy()[has_cf])
        content_norm[has_content] = minmax_by_key(
            keys[has_content], merged["sim_content"].to_numpy()[has_content]
        )
        fused = score_similarity(cf_norm, content_norm, weight_cf)
    # rounded like cosine similarities, so equal fused scores tie exactly (smaller id wins)
    fused = np.round(fused, 12)
    out_keys, nbrs, sims, rank = topk_by_key(
        keys, merged["neighbor_id"].to_numpy(dtype=np.int64), fused, k
    )
    return pd.DataFrame(
        {"anime_id": out_keys, "neighbor_id": nbrs, "rank": rank, "similarity": sims}
    ).astype({"anime_id": "int32", "neighbor_id": "int32", "rank": "int32", "similarity": "float64"})
