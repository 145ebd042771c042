"""The collaborative recommenders a Spark user would try first: EASE and implicit ALS.

Both score every warm title for a user from the user's train ratings and list the best ones
the user has not rated in train (``anime_recs.recommend.scoring``):

- ``ease`` (Steck 2019, "Embarrassingly Shallow Autoencoders"): item-item weights ``B`` from
  the closed form on the Gram matrix of the users x titles matrix of *promoted* train ratings
  (the liked titles the recommenders start from); a user's score of title j is
  ``sum_{p promoted by the user} B[p, j]``. The solve is one ``T x T`` inversion on the
  driver (``O(T^3)`` time, about three ``T x T`` float64 matrices of memory), guarded by
  ``recommend.ease.max_titles``; the full MAL catalogue (about 17k titles) needs about 7 GiB
  and minutes on one core.
- ``als``: Spark MLlib ALS with implicit feedback (Hu, Koren, Volinsky 2008) on the train
  ratings, the rating as the strength of the preference; a user's score of title j is the dot
  product of their factors, distributed like every stage.

Their settings come from a validation carve of the train split (``tools.tune_peers``), never
from test users.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from anime_recs.errors import JobError
from anime_recs.recommend.candidates import contains
from anime_recs.tables import PROMOTER_MIN_RATING, require_columns

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DenseModel:
    """A recommender that scores every one of its ``titles`` (sorted anime_ids) for a user.

    ``ease``: ``item_weights [T, T]`` (rows: promoted titles, columns: scored titles).
    ``als``: ``item_factors [T, r]`` and ``user_ids`` (sorted) with ``user_factors [U, r]``.
    """

    titles: np.ndarray
    item_weights: np.ndarray | None = None
    item_factors: np.ndarray | None = None
    user_ids: np.ndarray | None = None
    user_factors: np.ndarray | None = None


def ease_weights(gram: np.ndarray, l2: float) -> np.ndarray:
    """EASE's closed form: ``P = (G + l2 I)^-1``, ``B_ij = -P_ij / P_jj`` for ``i != j``,
    ``B_jj = 0`` (the minimiser of ``||X - X B||^2 + l2 ||B||^2`` subject to ``diag(B) = 0``,
    with ``G = X^T X``)."""
    gram = np.asarray(gram, dtype=np.float64)
    p = np.linalg.inv(gram + l2 * np.eye(gram.shape[0]))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b


def promoted_gram(user_ids: np.ndarray, anime_ids: np.ndarray, titles: np.ndarray) -> np.ndarray:
    """``X^T X`` of the binary users x ``titles`` matrix of the given (user, title) promotions:
    entry ``(i, j)`` = users who promoted both titles, the diagonal = each title's promoters."""
    users, user_index = np.unique(np.asarray(user_ids), return_inverse=True)
    cols = np.searchsorted(titles, anime_ids)
    x = sp.csr_matrix(
        (np.ones(cols.size, np.float64), (user_index, cols)), shape=(users.size, titles.size)
    )
    return (x.T @ x).toarray()


def fit_ease(ratings: DataFrame, l2: float, max_titles: int) -> DenseModel:
    """EASE on the promoted (9-10) ``train`` ratings of ``ratings`` (``user_id``,
    ``anime_id``, ``rating``; the caller filters the split): the weights of every promoted
    title. Fails with one line when there are more than ``max_titles`` of them."""
    require_columns(ratings.columns, ("user_id", "anime_id", "rating"), "ratings")
    promoted = ratings.filter(F.col("rating") >= PROMOTER_MIN_RATING)
    # counted before the promoted ratings are collected: the guard must fire first
    n_titles = promoted.agg(F.countDistinct("anime_id")).first()[0]
    if n_titles > max_titles:
        need = 3 * n_titles**2 * 8 / 2**30
        raise JobError(
            f"ease: {n_titles} promoted titles > recommend.ease.max_titles={max_titles} "
            f"(the driver solve needs about {need:.1f} GiB): raise it with the driver's memory"
        )
    rows = promoted.select("user_id", "anime_id").toPandas()
    titles = np.unique(rows["anime_id"].to_numpy(np.int64))
    gram = promoted_gram(rows["user_id"].to_numpy(), rows["anime_id"].to_numpy(), titles)
    weights = ease_weights(gram, l2).astype(np.float32)
    log.info("ease: %d titles, l2 %s", titles.size, l2)
    return DenseModel(titles=titles, item_weights=weights)


def fit_als(
    ratings: DataFrame,
    rank: int,
    reg: float,
    alpha: float,
    max_iter: int,
    seed: int,
) -> DenseModel:
    """Spark MLlib ALS with ``implicitPrefs`` on ``ratings`` (``user_id``, ``anime_id``,
    ``rating``: the strength), collected factors of every title and user it saw."""
    from pyspark.ml.recommendation import ALS

    require_columns(ratings.columns, ("user_id", "anime_id", "rating"), "ratings")
    als = ALS(
        rank=rank,
        regParam=reg,
        alpha=alpha,
        maxIter=max_iter,
        seed=seed,
        implicitPrefs=True,
        userCol="user_id",
        itemCol="anime_id",
        ratingCol="rating",
        coldStartStrategy="drop",
    )
    model = als.fit(ratings.select("user_id", "anime_id", F.col("rating").cast("float")))
    items = model.itemFactors.orderBy("id").toPandas()
    users = model.userFactors.orderBy("id").toPandas()
    log.info("als: %d titles, %d users, rank %d", len(items), len(users), rank)
    return DenseModel(
        titles=items["id"].to_numpy(np.int64),
        item_factors=np.stack(items["features"].to_numpy()).astype(np.float32),
        user_ids=users["id"].to_numpy(np.int64),
        user_factors=np.stack(users["features"].to_numpy()).astype(np.float32),
    )


def dense_scores(
    model: DenseModel,
    users: np.ndarray,
    promoted_user: np.ndarray,
    promoted_anime: np.ndarray,
    n_users: int,
) -> np.ndarray:
    """``[n_users, len(model.titles)]`` scores for a chunk of users (``users``: their ids,
    chunk index ``u`` = position): EASE from their promoted titles (``promoted_user`` chunk
    indexes, ``promoted_anime`` anime_ids), ALS from their factors (0 for a user ALS did not
    see)."""
    if model.item_weights is not None:
        known = contains(model.titles, promoted_anime)
        at = np.searchsorted(model.titles, promoted_anime)
        x = sp.csr_matrix(
            (np.ones(int(known.sum()), np.float32), (promoted_user[known], at[known])),
            shape=(n_users, model.titles.size),
        )
        return np.asarray(x @ model.item_weights)
    seen = contains(model.user_ids, users)
    factors = np.zeros((n_users, model.item_factors.shape[1]), np.float32)
    factors[seen] = model.user_factors[np.searchsorted(model.user_ids, users[seen])]
    return factors @ model.item_factors.T
