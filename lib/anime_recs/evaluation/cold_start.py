"""Cold-start evaluation: how often each recommender surfaces titles that had no train rating.

A *cold* title has test ratings but no train rating: the ingest's title holdout
(``ingest.cold_title_fraction``) moves every rating of a seeded fraction of titles to ``test``,
as if they had just been released, so collaborative filtering cannot reach them by construction
while a content or hybrid recommender can. :func:`cold_titles` finds them from ``ratings``
alone; :func:`cold_start_metrics` scores the recommendation lists on them (table
``cold_start_evaluation``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from anime_recs.evaluation.metrics import points, position_weights
from anime_recs.tables import (
    COLD_START_EVALUATION_SCHEMA,
    PROMOTER_MIN_RATING,
    TEST,
    TRAIN,
    require_columns,
)

COLD_START_COLUMNS = COLD_START_EVALUATION_SCHEMA.fieldNames()


def cold_titles(ratings: DataFrame) -> DataFrame:
    """Titles with at least one ``test`` rating and no ``train`` rating: ``anime_id`` int."""
    require_columns(ratings.columns, ("anime_id", "split"), "ratings")
    return (
        ratings.groupBy("anime_id")
        .agg(
            F.max((F.col("split") == TEST).cast("int")).alias("in_test"),
            F.max((F.col("split") == TRAIN).cast("int")).alias("in_train"),
        )
        .where((F.col("in_test") == 1) & (F.col("in_train") == 0))
        .select(F.col("anime_id").cast("int"))
    )


def cold_test_users(ratings: DataFrame, cold: DataFrame) -> DataFrame:
    """Users with at least one ``test`` rating of a cold title: ``user_id`` int."""
    require_columns(ratings.columns, ("user_id", "anime_id", "split"), "ratings")
    return (
        ratings.where(F.col("split") == TEST)
        .join(cold, "anime_id", "left_semi")
        .select(F.col("user_id").cast("int"))
        .distinct()
    )


def cold_start_metrics(
    anime: np.ndarray,
    test_ratings: np.ndarray,
    cold: np.ndarray,
    has_cold_test: np.ndarray,
    n_max: int,
) -> pd.DataFrame:
    """Cold-start metrics of one recommender for N = 1..n_max, over the users with a cold test
    title (``has_cold_test``; rows of ``anime``/``test_ratings`` are the recommender's test
    users, ``[users, n_max]``, -1/0 = no title/no test rating; ``cold`` = sorted cold ids):

    - ``cold_hits``: positions ``i < N`` holding a cold title the user rated in test;
    - ``cold_promoted_hits``: those rated 9-10;
    - ``nps_cold``: ``sum (N - i) / N x points(rating) / cold_hits`` over the cold hits (NaN
      without one), the evaluation's pooled NPS restricted to cold hits;
    - ``precision_cold``: ``cold_promoted_hits / (N x users_with_cold_test)`` (NaN without such
      users).
    """
    anime = np.asarray(anime)[np.asarray(has_cold_test, dtype=bool)]
    ratings = np.asarray(test_ratings)[np.asarray(has_cold_test, dtype=bool)]
    cold = np.asarray(cold)
    if cold.size:
        pos = np.minimum(np.searchsorted(cold, anime), cold.size - 1)
        is_cold = (anime >= 0) & (cold[pos] == anime)
    else:
        is_cold = np.zeros(anime.shape, dtype=bool)
    cold_hit = is_cold & (ratings > 0)
    users = int(anime.shape[0])
    rows = []
    for n in range(1, n_max + 1):
        hit = cold_hit[:, :n]
        weights = position_weights(n)[: hit.shape[1]]
        hits = int(hit.sum())
        promoted = int((hit & (ratings[:, :n] >= PROMOTER_MIN_RATING)).sum())
        point_sum = float((points(ratings[:, :n]) * weights * hit).sum())
        rows.append(
            {
                "n": n,
                "cold_hits": hits,
                "cold_promoted_hits": promoted,
                "users_with_cold_test": users,
                "nps_cold": point_sum / hits if hits else float("nan"),
                "precision_cold": promoted / (n * users) if users else float("nan"),
            }
        )
    return pd.DataFrame(rows, columns=COLD_START_COLUMNS[1:])


def cold_start_table(
    flat: pd.DataFrame,
    n_max: int,
    recommenders: list[str],
    cold: list[int],
    cold_users: list[int],
) -> pd.DataFrame:
    """``cold_start_evaluation`` rows (recommender x N) from the evaluation's flat lists
    (:func:`anime_recs.evaluation.evaluate.flat_lists` collected to pandas)."""
    cold_sorted = np.asarray(sorted(cold), dtype=np.int64)
    users = np.asarray(sorted(cold_users), dtype=np.int64)
    frames = []
    for name in recommenders:
        rows = flat[flat["recommender"] == name]
        anime = rows[[f"a{i}" for i in range(n_max)]].to_numpy()
        ratings = rows[[f"t{i}" for i in range(n_max)]].to_numpy()
        has_cold = np.isin(rows["user_id"].to_numpy(), users)
        table = cold_start_metrics(anime, ratings, cold_sorted, has_cold, n_max)
        table.insert(0, "recommender", name)
        frames.append(table)
    if not frames:
        return pd.DataFrame(columns=COLD_START_COLUMNS)
    return pd.concat(frames, ignore_index=True)[COLD_START_COLUMNS]
