"""The serve stage: ``user_recommendations`` for every user with a rating, in one Spark pass.

The ratings (all splits) and, when the table exists, ``watch_status`` are unioned,
repartitioned by ``user_id`` and sorted within partitions; a ``mapInArrow`` function cuts each
partition into chunks of whole users (:func:`~anime_recs.recommend.scoring.user_chunks`) and
serves every chunk in numpy (:func:`~anime_recs.serve.lists.serve_chunk`) with the
:class:`~anime_recs.serve.lists.ServeModel` broadcast once. Each task logs its progress.

``run_id`` is the stage's fingerprint (the runner's): of the serving settings and the input
tables' contents (the stage is declared ``by_content``: their
:func:`~anime_recs.lakehouse.table_digest`, not their Delta versions, since a forced upstream
rerun rewrites the same contents under new versions), so a rerun with the same inputs writes
exactly the same rows (the overwrite still makes a new Delta version; the old ones stay
readable by time travel).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from anime_recs import tables
from anime_recs.config import RecommendConfig
from anime_recs.errors import JobError
from anime_recs.hashing import stable_hash
from anime_recs.lakehouse import read_table, table_exists, write_table
from anime_recs.progress import Progress, worker_logging
from anime_recs.recommend.fitting import recommender_models
from anime_recs.recommend.popularity import promoter_counts
from anime_recs.recommend.registry import REGISTRY, Kind, Recommender, embedder
from anime_recs.recommend.scoring import user_chunks
from anime_recs.runlog import StageRun
from anime_recs.serve.lists import (
    SERVED_DDL,
    ServedParts,
    ServeModel,
    build_serve_model,
    serve_chunk,
)
from anime_recs.tables import COLD

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeSettings:
    """What the lists are built with: ``serve.recommender``, ``serve.n`` and the candidate
    settings ``recommend.k``, ``recommend.frequency_bonus``."""

    recommender: str
    n: int
    k: int
    frequency_bonus: float


@dataclass
class ServeResult:
    version: int
    rows: int
    users: int
    run_id: str
    model_version: str


def seen_rows(ratings: DataFrame, watched: DataFrame | None) -> DataFrame:
    """``user_id, anime_id, rating, is_rated``: every rating (any split) plus, when given,
    every watching-status entry (``is_rated`` false, rating 0: seen, never a seed)."""
    rows = ratings.select(
        F.col("user_id").cast("int"),
        F.col("anime_id").cast("int"),
        F.col("rating").cast("int"),
        F.lit(True).alias("is_rated"),
    )
    if watched is not None:
        rows = rows.unionByName(
            watched.select(
                F.col("user_id").cast("int"),
                F.col("anime_id").cast("int"),
                F.lit(0).cast("int").alias("rating"),
                F.lit(False).alias("is_rated"),
            )
        )
    return rows


def _serve_partition(model_ref, settings: ServeSettings, chunk_rows: int, rows_per_task):
    n, k, frequency_bonus = settings.n, settings.k, settings.frequency_bonus

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext

        worker_logging()
        model: ServeModel = model_ref.value if hasattr(model_ref, "value") else model_ref
        ctx = TaskContext.get()
        task = ctx.partitionId() if ctx is not None else 0
        progress = Progress(f"serve task {task}", rows_per_task, unit="rows", logger=log)
        for table in user_chunks(batches, chunk_rows):
            cols = [table.column(c).to_numpy() for c in ("user_id", "anime_id", "rating")]
            is_rated = table.column("is_rated").to_numpy(zero_copy_only=False).astype(bool)
            out = serve_chunk(*cols, is_rated, model, n, k, frequency_bonus)
            progress.update(table.num_rows)
            yield from (b for b in out.to_batches() if b.num_rows)
        progress.done()

    return run


def serve_users(
    spark: SparkSession,
    rows: DataFrame,
    model: ServeModel,
    settings: ServeSettings,
    partitions: int | None = None,
    chunk_rows: int = 200_000,
    total_rows: int | None = None,
) -> DataFrame:
    """Served rows (:data:`~anime_recs.serve.lists.SERVED_DDL`) from :func:`seen_rows`.

    ``total_rows`` (when known) gives each task's progress an ETA (rows / partitions).
    """
    partitions = partitions or int(spark.conf.get("spark.sql.shuffle.partitions"))
    model_ref = spark.sparkContext.broadcast(model)
    per_task = total_rows // partitions if total_rows else None
    return (
        rows.repartition(partitions, "user_id")
        .sortWithinPartitions("user_id")
        .mapInArrow(
            _serve_partition(model_ref, settings, chunk_rows, per_task),
            SERVED_DDL,
        )
    )


def lake_recommenders(
    spark: SparkSession,
    lake: str,
    version: int | None = None,
    embeddings_version: int | None = None,
    hybrid_content: str | None = None,
) -> list[str]:
    """Recommenders that can be served from the lake: the neighbour recommenders with rows in
    ``anime_neighbors`` (at ``version``; None: the latest), then every other servable one of
    the registry: a hybrid when its content embedder has vectors in ``anime_embeddings`` at
    ``embeddings_version``, the others (dense models, popularity: fitted on ``ratings``)
    always."""
    names = []
    if table_exists(spark, lake, tables.ANIME_NEIGHBORS):
        neighbors = read_table(spark, lake, tables.ANIME_NEIGHBORS, version)
        names = sorted(r[0] for r in neighbors.select("recommender").distinct().collect())
        names = [n for n in names if n not in REGISTRY or REGISTRY[n].servable]
    content = False
    if embeddings_version is not None and hybrid_content is not None:
        vectors = read_table(spark, lake, tables.ANIME_EMBEDDINGS, embeddings_version)
        content = bool(vectors.filter(F.col("embedder") == hybrid_content).limit(1).count())
    for recommender in REGISTRY.values():
        if recommender.kind is Kind.NEIGHBOURS or not recommender.servable:
            continue  # a neighbour recommender is served from its rows of anime_neighbors
        if recommender.kind is not Kind.HYBRID or content:
            names.append(recommender.name)
    return names


def check_recommender(name: str, known: list[str]) -> None:
    """:class:`JobError` naming ``name`` when it is not one of ``known``."""
    if name not in known:
        raise JobError(f"unknown recommender {name!r}: the lake has {known}")


def model_version_label(
    spark: SparkSession,
    lake: str,
    recommender: str,
    digests: dict[str, str | None],
    embeddings_version: int | None,
    hybrid_content: str | None = None,
) -> str:
    """What produced the recommender's lists: ``<model>@<model_version>`` of an embedder in
    ``anime_embeddings`` at ``embeddings_version`` (None: the table was absent); else its
    input table and a fingerprint of that table's contents (``ratings:<fp>`` for popularity
    and the peers, fitted on the ratings; ``anime_neighbors:<fp>`` for any other recommender;
    the hybrid: its ratings label and its content embedder's)."""
    kind = REGISTRY[recommender].kind if recommender in REGISTRY else Kind.NEIGHBOURS
    if kind in (Kind.DENSE, Kind.POPULARITY):
        return f"{tables.RATINGS}:{stable_hash(digests[tables.RATINGS])[:12]}"
    if kind is Kind.HYBRID:
        content = model_version_label(spark, lake, hybrid_content, digests, embeddings_version)
        return f"{tables.RATINGS}:{stable_hash(digests[tables.RATINGS])[:12]},{content}"
    # never the latest version: one written since the runner pinned the inputs would label
    # the rows with another model than the one whose neighbours are served
    if embeddings_version is not None:
        rows = (
            read_table(spark, lake, tables.ANIME_EMBEDDINGS, embeddings_version)
            .filter(F.col("embedder") == recommender)
            .select("model", "model_version")
            .distinct()
            .orderBy("model", "model_version")
            .collect()
        )
        if rows:
            return ",".join(
                f"{r.model}@{r.model_version}" if r.model_version else r.model for r in rows
            )
    neighbors = stable_hash([recommender, digests[tables.ANIME_NEIGHBORS]])
    return f"{tables.ANIME_NEIGHBORS}:{neighbors[:12]}"


def read_titles_and_promoters(
    spark: SparkSession, lake: str, ratings: DataFrame, anime_version: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What every served list shares: ``anime_id, name`` of ``anime`` (at ``anime_version``;
    None: the latest) and the promoter counts (``anime_id, promoters``) over all ``ratings``,
    all splits."""
    anime = read_table(spark, lake, tables.ANIME, anime_version)
    anime = anime.select("anime_id", "name").toPandas()
    return anime, promoter_counts(ratings, split=None).toPandas()


def read_neighbors(
    spark: SparkSession, lake: str, recommenders: list[str], k: int, version: int | None = None
) -> pd.DataFrame:
    """``recommender, anime_id, neighbor_id, rank, similarity`` of ``anime_neighbors`` (at
    ``version``; None: the latest) for ``recommenders``, rank <= k."""
    return (
        read_table(spark, lake, tables.ANIME_NEIGHBORS, version)
        .filter(F.col("recommender").isin(recommenders) & (F.col("rank") <= k))
        .select("recommender", "anime_id", "neighbor_id", "rank", "similarity")
        .toPandas()
    )


def neighbour_table(recommender: str, rc: RecommendConfig) -> str | None:
    """The recommender whose rows of ``anime_neighbors`` the served list of ``recommender`` is
    made from: its own for a neighbour recommender (an embedder, ``jaccard_cf``), its
    collaborative side's for a hybrid whose side is one, else None (fitted on the ratings)."""
    declared = REGISTRY.get(recommender)
    if declared is not None and declared.kind is Kind.HYBRID:
        recommender = rc.hybrid.collaborative
        declared = REGISTRY.get(recommender)
    if declared is None or declared.kind is Kind.NEIGHBOURS:  # None: an embedder
        return recommender
    return None


def served_parts(
    spark: SparkSession,
    lake: str,
    recommenders: list[str],
    rc: RecommendConfig,
    ratings: DataFrame,
    versions: Mapping[str, int | None],
) -> dict[str, ServedParts]:
    """What each dense recommender or hybrid among ``recommenders`` lists from, fitted once on
    the ``train`` ratings as the recommend stage fits them
    (:func:`~anime_recs.recommend.fitting.recommender_models`): a dense model; the hybrid's
    collaborative side (when dense) and its content side's neighbours among the cold titles
    (vectors of ``anime_embeddings`` at the pinned version). The others (one neighbour table,
    the popularity list) have no entry."""
    hy = rc.hybrid
    wanted = [
        REGISTRY[r]
        for r in recommenders
        if r in REGISTRY and REGISTRY[r].kind in (Kind.DENSE, Kind.HYBRID)
    ]
    if not wanted:
        return {}
    fitted: dict[str, Recommender] = {r.name: r for r in wanted if r.kind is Kind.DENSE}
    hybrids = [r.name for r in wanted if r.kind is Kind.HYBRID]
    if hybrids:
        side = REGISTRY[hy.collaborative]
        if side.kind is Kind.DENSE:
            fitted[side.name] = side
        fitted[hy.content] = embedder(hy.content)
    train = ratings.filter(F.col("split") == tables.TRAIN)
    warm = np.sort(promoter_counts(ratings).toPandas()["anime_id"].to_numpy(np.int64))

    def vectors_of(name: str) -> pd.DataFrame:  # the hybrid's content side only
        version = versions[tables.ANIME_EMBEDDINGS]
        rows = read_table(spark, lake, tables.ANIME_EMBEDDINGS, version)
        rows = rows.filter(F.col("embedder") == name)
        return rows.select("anime_id", "embedding").toPandas()

    views, dense = recommender_models(fitted.values(), rc, warm, train, None, vectors_of)
    parts = {r.name: ServedParts(dense=dense[r.name]) for r in wanted if r.kind is Kind.DENSE}
    for name in hybrids:
        parts[name] = ServedParts(
            dense=dense.get(hy.collaborative),
            cold_neighbors=views[(hy.content, COLD)],
            cold_slots=tuple(hy.cold_slots),
            min_similarity=hy.min_similarity,
        )
    return parts


def load_serve_model(
    spark: SparkSession,
    lake: str,
    recommender: str,
    rc: RecommendConfig,
    ratings: DataFrame,
    versions: Mapping[str, int | None],
) -> ServeModel:
    """The :class:`ServeModel` of one recommender: :func:`read_titles_and_promoters`, its
    :func:`read_neighbors` (its :func:`neighbour_table`, when it has one) and its
    :func:`served_parts`, every table at ``versions``."""
    anime, promoters = read_titles_and_promoters(spark, lake, ratings, versions[tables.ANIME])
    table = neighbour_table(recommender, rc)
    neighbors = None
    if table is not None:
        neighbors = read_neighbors(spark, lake, [table], rc.k, versions[tables.ANIME_NEIGHBORS])
    parts = served_parts(spark, lake, [recommender], rc, ratings, versions).get(recommender)
    return build_serve_model(anime, neighbors, promoters, rc.k, parts)


def run_serve(
    spark: SparkSession,
    lake: str,
    settings: ServeSettings,
    run: StageRun,
    rc: RecommendConfig,
    partitions: int | None = None,
) -> ServeResult:
    """Write ``user_recommendations`` (overwrite) for every user with a rating, from the input
    versions of ``run`` (every table read at ``run.versions``: the versions its fingerprint,
    the rows' ``run_id``, is of), with its fingerprint as ``run_id``."""
    recommender, run_id, versions = settings.recommender, run.fingerprint, run.versions
    embeddings_version = versions.get(tables.ANIME_EMBEDDINGS)
    known = lake_recommenders(
        spark, lake, versions[tables.ANIME_NEIGHBORS], embeddings_version, rc.hybrid.content
    )
    check_recommender(recommender, known)
    log.info("serve: %s, input versions %s", settings, dict(versions))
    model_version = model_version_label(
        spark, lake, recommender, dict(run.inputs), embeddings_version, rc.hybrid.content
    )
    ratings = read_table(spark, lake, tables.RATINGS, versions[tables.RATINGS])
    watched = None
    if versions.get(tables.WATCH_STATUS) is not None:
        watched = read_table(spark, lake, tables.WATCH_STATUS, versions[tables.WATCH_STATUS])
    else:
        log.info("serve: no %s table: excluding rated titles only", tables.WATCH_STATUS)
    model = load_serve_model(spark, lake, recommender, rc, ratings, versions)
    total = ratings.count() + (watched.count() if watched is not None else 0)
    served = serve_users(
        spark, seen_rows(ratings, watched), model, settings, partitions, total_rows=total
    ).select(
        "*",
        F.lit(recommender).alias("recommender"),
        F.lit(model_version).alias("model_version"),
        F.lit(run_id).alias("run_id"),
    )
    version = write_table(
        served, lake, tables.USER_RECOMMENDATIONS, tables.USER_RECOMMENDATIONS_SCHEMA
    )
    written = read_table(spark, lake, tables.USER_RECOMMENDATIONS, version=version)
    rows, users = written.agg(F.count("*"), F.countDistinct("user_id")).first()
    log.info(
        "serve: %s version %s: %d rows for %d users (run_id %s, model %s)",
        tables.USER_RECOMMENDATIONS,
        version,
        rows,
        users,
        run_id,
        model_version,
    )
    return ServeResult(version, int(rows), int(users), run_id, model_version)
