"""The ``hybrid`` recommender's neighbours: collaborative and content neighbour lists fused.

For every title ``t`` the candidates are the union of its top-``depth`` neighbours by promoter
Jaccard (collaborative) and by the cosine of the content embedder's vectors. Each candidate gets
one fused similarity (:func:`rrf_similarity` or :func:`score_similarity`), and the top ``k`` by
fused similarity (ties by smaller ``anime_id``) become the hybrid's neighbour list, stored in
``anime_neighbors`` like every other recommender's and scored by the same candidate aggregation.

A title without collaborative neighbours (a cold-start title nobody promoted in train) keeps
its content neighbours, and a cold-start title can enter another title's hybrid list through
the content side, judged by its content similarity alone (:func:`~anime_recs.recommend.fusion.
cf_weight`): collaborative filtering alone can reach neither.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from anime_recs.options import FUSIONS
from anime_recs.recommend.fusion import (
    TitlePrior,
    minmax_by_key,
    rrf_similarity,
    score_similarity,
    with_prior,
)
from anime_recs.recommend.neighbors import (
    NEIGHBOR_COLUMNS,
    empty_neighbors,
    neighbor_frame,
    topk_by_key,
)
from anime_recs.tables import require_columns


def hybrid_neighbors(
    cf: pd.DataFrame,
    content: pd.DataFrame,
    k: int,
    fusion: str,
    weight_cf: float,
    rrf_k: int,
    prior: TitlePrior | None = None,
    prior_weight: float = 0.0,
) -> pd.DataFrame:
    """Top-``k`` hybrid neighbours of every title from two neighbour frames.

    ``cf`` and ``content`` have :data:`~anime_recs.recommend.neighbors.NEIGHBOR_COLUMNS`
    (their depth is the candidate depth); the output has the same columns with ``similarity``
    the fused score of ``fusion`` (``rrf`` or ``score``), blended with the candidate's title
    prior (:func:`~anime_recs.recommend.fusion.with_prior`) when ``prior_weight`` > 0.
    """
    if fusion not in FUSIONS:
        raise ValueError(f"unknown fusion {fusion!r}; expected one of {FUSIONS}")
    for name, frame in (("cf", cf), ("content", content)):
        require_columns(frame.columns, NEIGHBOR_COLUMNS, f"{name} neighbours")
    left = cf[NEIGHBOR_COLUMNS].rename(columns={"rank": "rank_cf", "similarity": "sim_cf"})
    right = content[NEIGHBOR_COLUMNS].rename(
        columns={"rank": "rank_content", "similarity": "sim_content"}
    )
    merged = left.merge(right, on=["anime_id", "neighbor_id"], how="outer")
    if merged.empty:
        return empty_neighbors()
    keys = merged["anime_id"].to_numpy(dtype=np.int64)
    # candidates with collaborative data: titles in a promoter-Jaccard neighbour list
    with_cf = np.union1d(cf["anime_id"].to_numpy(), cf["neighbor_id"].to_numpy())
    cf_known = np.isin(merged["neighbor_id"].to_numpy(), with_cf)
    if fusion == "rrf":
        fused = rrf_similarity(
            merged["rank_cf"].fillna(0).to_numpy(),
            merged["rank_content"].fillna(0).to_numpy(),
            weight_cf,
            rrf_k,
            cf_known,
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
        fused = score_similarity(cf_norm, content_norm, weight_cf, cf_known)
    if prior_weight > 0:
        if prior is None:
            raise ValueError("prior_weight > 0 needs the title prior")
        fused = with_prior(fused, prior.of(merged["neighbor_id"].to_numpy()), prior_weight)
    # rounded like cosine similarities, so equal fused scores tie exactly (smaller id wins)
    fused = np.round(fused, 12)
    out_keys, nbrs, sims, rank = topk_by_key(
        keys, merged["neighbor_id"].to_numpy(dtype=np.int64), fused, k
    )
    return neighbor_frame(
        pd.DataFrame({"anime_id": out_keys, "neighbor_id": nbrs, "rank": rank, "similarity": sims})
    )
