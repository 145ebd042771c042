"""The ``evaluation`` table from the per-user lists (``user_scores``): metrics + bootstrap CIs."""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from anime_recs.evaluation.bootstrap import bootstrap_ratio_ci
from anime_recs.evaluation.metrics import cold_share, evaluate_lists
from anime_recs.tables import EVALUATION_SCHEMA, require_columns

EVALUATION_COLUMNS = EVALUATION_SCHEMA.fieldNames()


def flat_lists(user_scores: DataFrame, n_max: int) -> DataFrame:
    """One scalar column per list position: ``a0..a{n-1}`` anime_ids (-1 = none) and
    ``t0..t{n-1}`` test ratings (0 = none), plus recommender, view, user_id, promoted_test."""
    need = ["recommender", "view", "user_id", "anime_ids", "test_ratings", "promoted_test"]
    require_columns(user_scores.columns, need, "user_scores")
    cols = [F.col("recommender"), F.col("view"), F.col("user_id"), F.col("promoted_test")]
    cols += [F.coalesce(F.get("anime_ids", i), F.lit(-1)).alias(f"a{i}") for i in range(n_max)]
    cols += [F.coalesce(F.get("test_ratings", i), F.lit(0)).alias(f"t{i}") for i in range(n_max)]
    return user_scores.select(*cols)


def view_table(
    flat: pd.DataFrame,
    n_max: int,
    recommenders: list[str],
    cold: np.ndarray,
    bootstrap_samples: int,
    seed: int,
) -> pd.DataFrame:
    """Evaluation rows (recommender x N = 1..n_max) of one view's lists (:func:`flat_lists`
    rows of that view, collected to pandas).

    Every recommender must cover the same users; the bootstrap resamples those users once per
    replicate for all recommenders and N (:func:`bootstrap_ratio_ci`: the pooled NPS from
    per-user weighted point sums and hit counts, precision from promoted hits over N).
    """
    users = None
    frames, sums, hits, liked = [], [], [], []
    for name in recommenders:
        rows = flat[flat["recommender"] == name].sort_values("user_id")
        ids = rows["user_id"].to_numpy()
        if users is None:
            users = ids
        elif not np.array_equal(users, ids):
            raise ValueError(f"recommender {name!r} covers other test users than the first one")
        anime = rows[[f"a{i}" for i in range(n_max)]].to_numpy()
        ratings = rows[[f"t{i}" for i in range(n_max)]].to_numpy()
        table, s, h, p = evaluate_lists(ratings, rows["promoted_test"].to_numpy(), anime, n_max)
        table.insert(0, "recommender", name)
        table["cold_share"] = [cold_share(anime, cold, n) for n in range(1, n_max + 1)]
        frames.append(table)
        sums.append(s)
        hits.append(h)
        liked.append(p)
    if not frames:
        return pd.DataFrame(columns=[c for c in EVALUATION_COLUMNS if c != "view"])
    low, high = bootstrap_ratio_ci(np.hstack(sums), np.hstack(hits), bootstrap_samples, seed)
    slots = np.tile(np.arange(1, n_max + 1), len(frames))
    p_low, p_high = bootstrap_ratio_ci(
        np.hstack(liked), np.broadcast_to(slots, (len(users), slots.size)), bootstrap_samples, seed
    )
    table = pd.concat(frames, ignore_index=True)
    table["nps_ci_low"], table["nps_ci_high"] = low, high
    table["precision_ci_low"], table["precision_ci_high"] = p_low, p_high
    return table


def evaluation_table(
    flat: pd.DataFrame,
    n_max: int,
    views: dict[str, list[str]],
    cold: np.ndarray,
    bootstrap_samples: int,
    seed: int,
) -> pd.DataFrame:
    """``evaluation`` rows: :func:`view_table` of each view's recommenders (``views``: view ->
    recommenders), ``cold`` the sorted ids of the titles without a train rating."""
    frames = []
    for view, recommenders in views.items():
        table = view_table(
            flat[flat["view"] == view], n_max, recommenders, cold, bootstrap_samples, seed
        )
        table.insert(1, "view", view)
        frames.append(table)
    if not frames:
        return pd.DataFrame(columns=EVALUATION_COLUMNS)
    return pd.concat(frames, ignore_index=True)[EVALUATION_COLUMNS]
