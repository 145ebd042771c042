"""What the recommenders list from, fitted on train ratings: used by the recommend stage (on
the train split), the serve stage (its served recommender) and ``tools.tune`` (on a
validation carve).

Each recommender is fitted as its declaration (:mod:`anime_recs.recommend.registry`) says. A
neighbour recommender's neighbours come per view (:func:`view_neighbors`): its lists as made,
among the warm titles, and among the cold titles when it can reach them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame

from anime_recs.config import RecommendConfig
from anime_recs.recommend.neighbors import restrict_neighbors
from anime_recs.recommend.peers import DenseModel
from anime_recs.recommend.registry import FitInputs, Kind, Recommender
from anime_recs.recommend.scoring import HybridParts
from anime_recs.tables import ALL, COLD, WARM

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
    recommenders: Iterable[Recommender],
    rc: RecommendConfig,
    warm: np.ndarray,
    train: DataFrame,
    pairs: DataFrame | None,
    vectors_of: Callable[[str], pd.DataFrame],
) -> tuple[dict[tuple[str, str], pd.DataFrame], dict[str, DenseModel]]:
    """What the ``recommenders`` list from, each fitted by its declaration's fit on the
    ``train`` ratings, the promoter-Jaccard ``pairs`` or ``vectors_of(name)``: the neighbours
    per view of each neighbour recommender (:func:`view_neighbors`) and the model of each
    dense one; the others (popularity, the hybrid) fit nothing."""
    inputs = FitInputs(rc, train, pairs, vectors_of, max(rc.k, NEIGHBOUR_DEPTH))
    views: dict[tuple[str, str], pd.DataFrame] = {}
    dense: dict[str, DenseModel] = {}
    for recommender in recommenders:
        if recommender.kind is Kind.DENSE:
            dense[recommender.name] = recommender.fit(recommender.name, inputs)
        elif recommender.kind is Kind.NEIGHBOURS:
            deep = recommender.fit(recommender.name, inputs)
            for view, frame in view_neighbors(deep, rc.k, warm, recommender.reaches_cold).items():
                views[(recommender.name, view)] = frame
    return views, dense
