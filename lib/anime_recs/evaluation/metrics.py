"""NPS-style scoring of recommendation lists against held-out (test) ratings, and ranking metrics.

Inputs are per recommender, one row per test user: ``test_ratings [users, n_max]`` = the
user's test rating of the title at each list position (0 = no test rating, or no title there),
``promoted_test [users]`` = the user's number of promoted (9-10) test titles, and
``anime [users, n_max]`` = the listed anime_ids (-1 = no title there).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from anime_recs.tables import EVALUATION_SCHEMA, PASSIVE_MIN_RATING, PROMOTER_MIN_RATING

# the evaluation table's columns per recommender, view and N, without the bootstrap CIs and
# the cold share (evaluate.py)
METRIC_COLUMNS = [
    c
    for c in EVALUATION_SCHEMA.fieldNames()
    if c not in ("recommender", "view", "cold_share") and not c.endswith(("_ci_low", "_ci_high"))
]


def points(rating: np.ndarray) -> np.ndarray:
    """NPS points of a test rating: +1 if 9-10 (promoter), 0 if 7-8 (passive), -1 if 1-6
    (detractor); 0 for 0 (= no test rating, which is not a hit and is ignored)."""
    rating = np.asarray(rating)
    return np.select(
        [rating >= PROMOTER_MIN_RATING, rating >= PASSIVE_MIN_RATING, rating >= 1],
        [1, 0, -1],
        default=0,
    ).astype(np.int64)


def position_weights(n: int) -> np.ndarray:
    """Weight of 0-based list position ``i < n`` in a list of length ``n``: ``(n - i) / n``."""
    i = np.arange(n)
    return (n - i) / n


def user_stats(
    test_ratings: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per user, for the first ``n`` positions: ``(points_sum, hits, promoted_hits,
    detractor_hits)``.

    - ``hits`` = number of positions ``i < n`` with a test rating (passives included),
    - ``points_sum`` = sum over those hits of ``(n - i) / n x points(rating)``,
    - ``promoted_hits`` = number of positions ``i < n`` whose test rating is 9-10,
    - ``detractor_hits`` = number of positions ``i < n`` whose test rating is 1-6.
    """
    top = np.asarray(test_ratings)[:, :n]
    weights = position_weights(n)[: top.shape[1]]
    hits = (top > 0).sum(axis=1)
    points_sum = (points(top) * weights).sum(axis=1)
    promoted_hits = (top >= PROMOTER_MIN_RATING).sum(axis=1)
    detractor_hits = ((top > 0) & (top < PASSIVE_MIN_RATING)).sum(axis=1)
    return points_sum, hits, promoted_hits, detractor_hits


def net_promoter_hits(promoted_hits: np.ndarray, detractor_hits: np.ndarray) -> float:
    """Net promoter hits per user: ``mean_u (promoted_hits_u - detractor_hits_u)`` (NaN
    without users). Unlike NPS@N it grows with every liked title a list finds, wherever it
    lists it, and falls with every disliked one."""
    promoted_hits = np.asarray(promoted_hits)
    if not promoted_hits.size:
        return float("nan")
    return float(np.mean(promoted_hits - np.asarray(detractor_hits)))


def promoter_share(promoted_hits: np.ndarray, hits: np.ndarray) -> float:
    """Share of promoters among the hits, pooled: ``sum_u promoted_hits_u / sum_u hits_u``
    (NaN without hits): how liked the titles a list finds are, whatever their number."""
    total = np.sum(hits)
    return float(np.sum(promoted_hits) / total) if total > 0 else float("nan")


def nps_pooled(points_sum: np.ndarray, hits: np.ndarray) -> float:
    """Pooled NPS: mean weighted points over all hits of all users,
    ``sum_u points_sum_u / sum_u hits_u`` (NaN without hits)."""
    total = np.sum(hits)
    return float(np.sum(points_sum) / total) if total > 0 else float("nan")


def nps_user_mean(points_sum: np.ndarray, hits: np.ndarray) -> float:
    """Mean over scored users (``hits_u > 0``) of each user's mean weighted points
    ``points_sum_u / hits_u`` (NaN when no user is scored)."""
    scored = np.asarray(hits) > 0
    if not scored.any():
        return float("nan")
    return float(np.mean(np.asarray(points_sum)[scored] / np.asarray(hits)[scored]))


def precision(promoted_hits: np.ndarray, n: int) -> float:
    """Precision@n: ``promoted_hits_u / n`` averaged over all test users (NaN without users)."""
    promoted_hits = np.asarray(promoted_hits)
    return float(np.mean(promoted_hits / n)) if promoted_hits.size else float("nan")


def recall(promoted_hits: np.ndarray, promoted_test: np.ndarray) -> float:
    """Recall@n: ``promoted_hits_u / promoted_test_u`` averaged over the test users with at
    least one promoted test title (NaN when there are none)."""
    promoted_test = np.asarray(promoted_test)
    has = promoted_test > 0
    if not has.any():
        return float("nan")
    return float(np.mean(np.asarray(promoted_hits)[has] / promoted_test[has]))


def ndcg(test_ratings: np.ndarray, promoted_test: np.ndarray, n: int) -> float:
    """NDCG@n with binary relevance (test rating 9-10), averaged over the test users with at
    least one promoted test title:
    ``DCG = sum_{i<n, relevant} 1 / log2(i + 2)``,
    ``IDCG = sum_{i < min(n, promoted_test_u)} 1 / log2(i + 2)``, NDCG = DCG / IDCG."""
    promoted_test = np.asarray(promoted_test)
    has = promoted_test > 0
    if not has.any():
        return float("nan")
    top = np.asarray(test_ratings)[has, :n]
    discount = 1.0 / np.log2(np.arange(n) + 2)
    dcg = ((top >= PROMOTER_MIN_RATING) * discount[: top.shape[1]]).sum(axis=1)
    ideal = np.cumsum(discount)[np.minimum(promoted_test[has], n) - 1]
    return float(np.mean(dcg / ideal))


def cold_share(anime: np.ndarray, cold: np.ndarray, n: int) -> float:
    """Share of the filled positions ``i < n`` (anime_id >= 0) holding a title of the sorted
    ``cold`` ids (NaN without a filled position): the slots a list gives to new titles."""
    top = np.asarray(anime)[:, :n]
    filled = top >= 0
    if not filled.any():
        return float("nan")
    return float(np.isin(top[filled], np.asarray(cold)).mean())


def unique_anime(anime: np.ndarray, n: int) -> int:
    """Number of distinct titles at positions ``i < n`` over all users' lists (-1 = none)."""
    top = np.asarray(anime)[:, :n]
    return int(np.unique(top[top >= 0]).size)


def evaluate_lists(
    test_ratings: np.ndarray, promoted_test: np.ndarray, anime: np.ndarray, n_max: int
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """All metrics of one recommender for N = 1..n_max (one row per N, :data:`METRIC_COLUMNS`).

    Also returns the per-user ``points_sum``, ``hits`` and ``promoted_hits`` matrices
    ``[users, n_max]`` (column N-1) for the bootstrap.
    """
    test_ratings = _pad(np.asarray(test_ratings), n_max, 0)
    anime = _pad(np.asarray(anime), n_max, -1)
    n_users = test_ratings.shape[0]
    sums = np.zeros((n_users, n_max))
    hits = np.zeros((n_users, n_max), dtype=np.int64)
    liked = np.zeros((n_users, n_max), dtype=np.int64)
    rows = []
    for n in range(1, n_max + 1):
        s, h, p, d = user_stats(test_ratings, n)
        sums[:, n - 1], hits[:, n - 1], liked[:, n - 1] = s, h, p
        rows.append(
            {
                "n": n,
                "nps": nps_pooled(s, h),
                "hits": int(h.sum()),
                "users_scored": int((h > 0).sum()),
                "users_total": n_users,
                "nps_user_mean": nps_user_mean(s, h),
                "precision": precision(p, n),
                "recall": recall(p, promoted_test),
                "ndcg": ndcg(test_ratings, promoted_test, n),
                "net_promoter_hits": net_promoter_hits(p, d),
                "promoter_share": promoter_share(p, h),
                "unique_anime": unique_anime(anime, n),
            }
        )
    return pd.DataFrame(rows, columns=METRIC_COLUMNS), sums, hits, liked


def _pad(matrix: np.ndarray, width: int, value: int) -> np.ndarray:
    if matrix.ndim != 2:
        matrix = matrix.reshape(-1, width) if matrix.size else np.zeros((0, width), matrix.dtype)
    if matrix.shape[1] >= width:
        return matrix[:, :width]
    pad = np.full((matrix.shape[0], width - matrix.shape[1]), value, dtype=matrix.dtype)
    return np.concatenate([matrix, pad], axis=1)
