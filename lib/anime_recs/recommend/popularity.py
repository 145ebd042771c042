"""The popularity baseline: the most-promoted train titles the user has not rated in train
(the serving stage uses the same list over all splits)."""

from __future__ import annotations

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from anime_recs.tables import PROMOTER_MIN_RATING, TRAIN, require_columns


def promoter_counts(ratings: DataFrame, split: str | None = TRAIN) -> DataFrame:
    """Per title rated in ``split`` (None: in any split): ``promoters`` = its ratings >= 9.

    Titles rated but promoted by nobody keep ``promoters`` = 0 (they close the list).
    Output: ``anime_id`` int, ``promoters`` long.
    """
    needed = ("anime_id", "rating") + (("split",) if split is not None else ())
    require_columns(ratings.columns, needed, "ratings")
    rows = ratings if split is None else ratings.filter(F.col("split") == split)
    return (
        rows.groupBy("anime_id")
        .agg(F.sum((F.col("rating") >= PROMOTER_MIN_RATING).cast("long")).alias("promoters"))
        .select(F.col("anime_id").cast("int"), F.col("promoters").cast("long"))
    )


def popularity_order(anime_ids: np.ndarray, promoters: np.ndarray) -> np.ndarray:
    """Positions that sort titles by ``promoters`` descending, ties by smaller ``anime_id``."""
    return np.lexsort((np.asarray(anime_ids), -np.asarray(promoters)))


def popularity_lists(
    train_user: np.ndarray, train_pop_rank: np.ndarray, n_users: int, n_popular: int, n_max: int
) -> np.ndarray:
    """Per user, the first ``n_max`` positions of the popularity list not rated in train.

    ``train_pop_rank[j]`` is the position in the popularity list (0 = most promoted) of the
    title of train rating ``j`` of user ``train_user[j]`` (users 0..n_users-1, each title once
    per user). Returns ``[n_users, n_max]`` popularity positions, -1 where the list runs out.

    Vectorised over users: with a user's excluded positions sorted, ``r_0 < r_1 < ...``, and
    ``f_j = r_j - j`` (free positions before ``r_j``), the ``i``-th free position is
    ``g_i = i + #{j : f_j <= i}``.
    """
    train_user = np.asarray(train_user, dtype=np.int64)
    train_pop_rank = np.asarray(train_pop_rank, dtype=np.int64)
    order = np.lexsort((train_pop_rank, train_user))
    u, r = train_user[order], train_pop_rank[order]
    starts = np.searchsorted(u, np.arange(n_users))
    within = np.arange(u.size) - starts[u]
    span = n_popular + 1
    keys = u * span + (r - within)
    i = np.arange(n_max)
    query = np.arange(n_users)[:, None] * span + i[None, :]
    excluded_before = np.searchsorted(keys, query, side="right") - starts[:, None]
    positions = i[None, :] + excluded_before
    return np.where(positions < n_popular, positions, -1)
