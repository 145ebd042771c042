"""One user's recommendations from the Delta tables alone, for every recommender in the lake.

Reads the user's rows of ``ratings`` and ``watch_status``, the names in ``anime``, each
recommender's rows of ``anime_neighbors`` (the peers and the hybrid: what they are fitted on,
as the serve stage fits them) and the promoter counts of ``ratings`` (one aggregation: the
popularity list), and serves the one user with the same function as the serve
stage (:func:`~anime_recs.serve.lists.serve_chunk`), so the lists equal the user's rows of
``user_recommendations`` for the served recommender.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from anime_recs import tables
from anime_recs.config import AppConfig, RecommendConfig
from anime_recs.errors import JobError
from anime_recs.lakehouse import read_table, table_exists, table_version
from anime_recs.serve.lists import build_serve_model, serve_chunk
from anime_recs.serve.run import (
    check_recommender,
    lake_recommenders,
    neighbour_table,
    read_neighbors,
    read_titles_and_promoters,
    served_parts,
)
from anime_recs.tables import PROMOTER_MIN_RATING


@dataclass
class UserLookup:
    """A user's promoted titles ``(anime_id, name, rating)`` and, per recommender, the served
    rows (``rank, anime_id, name, score, source, because`` with ``because`` as
    ``[(anime_id, name)]``)."""

    user_id: int
    promoted: list[tuple[int, str, int]]
    lists: dict[str, list[dict]] = field(default_factory=dict)


def lookup_user(
    spark: SparkSession,
    lake: str,
    user_id: int,
    recommenders: list[str] | None,
    n: int,
    rc: RecommendConfig,
) -> UserLookup:
    """The lists of ``user_id`` for ``recommenders`` (None or []: all in the lake), built with
    the ``recommend`` settings ``rc`` as the serve stage builds them.

    :class:`JobError` naming the user when it has no rating, or the first unknown recommender.
    """
    k = rc.k
    versions = {t: table_version(spark, lake, t) for t in (tables.ANIME_EMBEDDINGS,)}
    embeddings_version = versions[tables.ANIME_EMBEDDINGS]
    known = lake_recommenders(spark, lake, None, embeddings_version, rc.hybrid.content)
    asked = list(recommenders or known)
    for name in asked:
        check_recommender(name, known)
    ratings = read_table(spark, lake, tables.RATINGS)
    mine = ratings.filter(F.col("user_id") == user_id).select("anime_id", "rating").toPandas()
    if mine.empty:
        raise JobError(f"unknown user {user_id}: no ratings in table {tables.RATINGS}")
    watched = pd.DataFrame({"anime_id": np.zeros(0, np.int64)})
    if table_exists(spark, lake, tables.WATCH_STATUS):
        watched = (
            read_table(spark, lake, tables.WATCH_STATUS)
            .filter(F.col("user_id") == user_id)
            .select("anime_id")
            .toPandas()
        )
    anime, promoters = read_titles_and_promoters(spark, lake, ratings)
    names = dict(zip(anime["anime_id"], anime["name"], strict=True))
    tables_of = {a: neighbour_table(a, rc) for a in asked}
    stored = sorted({t for t in tables_of.values() if t is not None})
    neighbors = read_neighbors(spark, lake, stored, k) if stored else None

    top = mine[mine["rating"] >= PROMOTER_MIN_RATING].sort_values(
        ["rating", "anime_id"], ascending=[False, True]
    )
    result = UserLookup(
        user_id,
        [
            (int(a), names.get(a, "?"), int(r))
            for a, r in zip(top["anime_id"], top["rating"], strict=True)
        ],
    )
    anime_ids = np.r_[mine["anime_id"].to_numpy(np.int64), watched["anime_id"].to_numpy(np.int64)]
    is_rated = np.r_[np.ones(len(mine), bool), np.zeros(len(watched), bool)]
    rating = np.r_[mine["rating"].to_numpy(np.int64), np.zeros(len(watched), np.int64)]
    users = np.full(anime_ids.size, user_id, dtype=np.int64)
    fitted = served_parts(spark, lake, asked, rc, ratings, versions)  # each model fitted once
    for name in asked:
        table = tables_of[name]
        rows = None if table is None else neighbors[neighbors["recommender"] == table]
        model = build_serve_model(anime, rows, promoters, k, fitted.get(name))
        served = serve_chunk(
            users, anime_ids, rating, is_rated, model, n, k, rc.frequency_bonus
        ).to_pylist()
        for row in served:
            row["because"] = [(a, names.get(a, "?")) for a in row["because"]]
        result.lists[name] = served
    return result


def format_lookup(result: UserLookup) -> list[str]:
    """Printable lines: the promoted titles, then per recommender its ranked titles with the
    score, the source and the ``because`` titles."""
    lines = [f"user {result.user_id}: {len(result.promoted)} promoted titles (rating >= 9)"]
    lines += [f"  {a:>6}  {name}  ({r})" for a, name, r in result.promoted]
    for name, rows in result.lists.items():
        lines.append(f"recommender {name}: top {len(rows)}")
        for row in rows:
            why = "; ".join(f"{t} ({a})" for a, t in row["because"])
            lines.append(
                f"  {row['rank']:>2}. {row['anime_id']:>6}  {row['name']}  "
                f"score {row['score']:.4f}  {row['source']}" + (f"  because: {why}" if why else "")
            )
    return lines


def list_length(asked: int | None, default: int) -> int:
    """The titles per list a lookup prints: ``asked`` (``--n``) or ``default`` (``serve.n``);
    :class:`JobError` when ``asked`` is not positive."""
    if asked is not None and asked <= 0:
        raise JobError(f"--n must be > 0, got {asked}")
    return asked or default


def lookup_lines(
    spark: SparkSession, config: AppConfig, user_id: int, recommenders: list[str], n: int
) -> list[str]:
    """:func:`format_lookup` of :func:`lookup_user` with the lake and the candidate settings
    (``recommend.k``, ``frequency_bonus``) of ``config``."""
    result = lookup_user(spark, config.paths.lake, user_id, recommenders, n, config.recommend)
    return format_lookup(result)
