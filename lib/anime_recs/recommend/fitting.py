"""What the recommenders list from, fitted on train ratings: used by the recommend stage (on
the train split), the serve stage (its served recommender) and ``tools.tune`` (on a
validation carve).

A neighbour recommender's neighbours come per view (:func:`view_neighbors`): its lists as made,
among the warm titles, and among the cold titles when it can reach them; the peers' dense
models come from :mod:`anime_recs.recommend.peers`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame

from anime_recs.config import RecommendConfig
from anime_recs.recommend.neighbors import (
    cosine_neighbors,
    embedding_matrix,
    jaccard_neighbors,
    restrict_neighbors,
)
from anime_recs.recommend.peers import DenseModel, fit_als, fit_ease
from anime_recs.recommend.scoring import HybridParts
from anime_recs.tables import ALL, ALS, COLD, EASE, JACCARD_CF, POPULARITY, WARM

# each title's neighbours are computed this deep, so that every view (warm titles, cold
# titles) keeps recommend.k of them where the title has that many within this depth
NEIGHBOUR_DEPTH = 20


def view_neighbors(
    deep: pd.DataFrame, k: int, warm: np.ndarray, reaches_cold: bool
) -> dict[str, pd.DataFrame]:
    """A neighbour recommender's top-``k`` lists per view from its deeper list: ``all`` as it
    is, ``warm`` among the ``warm`` titles, ``cold`` among the others (when it reaches them)."""
    titles = np.union1d(deep["anime_id"].to_numpy(), deep["neighbor_id"].to_numpy())
    views = {
        ALL: deep[deep["rank"] <= k].reset_index(drop=True),
        WARM: restrict_neighbors(deep, warm, k),
    }
    if reaches_cold:
        views[COLD] = restrict_neighbors(deep, np.setdiff1d(titles, warm), k)
    return views


def hybrid_parts(rc: RecommendConfig) -> HybridParts:
    """The ``hybrid`` recommender of the ``recommend.hybrid`` settings."""
    hy = rc.hybrid
    return HybridParts(hy.collaborative, hy.content, tuple(hy.cold_slots), hy.min_similarity)


def recommender_models(
    names: list[str],
    rc: RecommendConfig,
    warm: np.ndarray,
    train: DataFrame,
    pairs: DataFrame,
    vectors_of: Callable[[str], pd.DataFrame],
) -> tuple[dict[tuple[str, str], pd.DataFrame], dict[str, DenseModel]]:
    """What the recommenders ``names`` list from, fitted on the ``train`` ratings: the
    neighbours per view of each neighbour recommender (:func:`view_neighbors`: ``jaccard_cf``
    from the promoter-Jaccard ``pairs``, an embedder from ``vectors_of(name)``'s cosine) and
    the dense models of the peers (``ease``, ``als`` with ``recommend.ease``/``.als``)."""
    depth = max(rc.k, NEIGHBOUR_DEPTH)
    views: dict[tuple[str, str], pd.DataFrame] = {}
    dense: dict[str, DenseModel] = {}
    for name in names:
        if name == POPULARITY:
            continue
        if name == EASE:
            dense[name] = fit_ease(train, rc.ease.l2, rc.ease.max_titles)
        elif name == ALS:
            als = rc.als
            dense[name] = fit_als(train, als.rank, als.reg, als.alpha, als.max_iter, als.seed)
        else:
            if name == JACCARD_CF:
                deep = jaccard_neighbors(pairs, depth)
            else:
                deep = cosine_neighbors(*embedding_matrix(vectors_of(name)), depth)
            for view, frame in view_neighbors(deep, rc.k, warm, name != JACCARD_CF).items():
                views[(name, view)] = frame
    return views, dense
