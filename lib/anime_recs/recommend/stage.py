"""The recommend stage: neighbours, every test user's lists, NPS@N with baselines and CIs.

Reads ``ratings``, ``anime_embeddings`` and ``anime_pair_jaccard``; writes ``anime_neighbors``
(top-k per title and recommender), ``user_scores`` (per recommender and test user: the list,
its scores and the user's test ratings of the listed titles), ``recommendations`` (recommender,
user_id, rank, anime_id, score) and ``evaluation`` (one row per recommender and N = 1..n_max),
plus charts and a markdown report in ``paths.reports``, all logged to one MLflow run.

Recommenders: every embedder in ``anime_embeddings`` (cosine neighbours), ``jaccard_cf``
(promoter Jaccard neighbours), ``hybrid`` (both fused, :mod:`anime_recs.recommend.hybrid`, when
the embedder ``recommend.hybrid.content`` has vectors) and ``popularity``;
``recommend.recommenders`` picks a subset. ``cold_start_evaluation`` scores the lists on the
titles that have test ratings but no train rating (:mod:`anime_recs.evaluation.cold_start`).
"""

from __future__ import annotations

import logging
import math
import time

import pandas as pd
from pyspark.sql import SparkSession

from anime_recs import tables
from anime_recs.config import AppConfig
from anime_recs.errors import JobError
from anime_recs.evaluation.cold_start import cold_start_table, cold_test_users, cold_titles
from anime_recs.evaluation.evaluate import evaluation_table, flat_lists
from anime_recs.evaluation.report import write_report
from anime_recs.lakehouse import read_table, write_table
from anime_recs.recommend.hybrid import hybrid_neighbors
from anime_recs.recommend.neighbors import (
    cosine_neighbors,
    embedding_matrix,
    jaccard_neighbors,
)
from anime_recs.recommend.popularity import promoter_counts, title_priors
from anime_recs.recommend.scoring import (
    build_model,
    recommendations_from_lists,
    score_users,
)
from anime_recs.runlog import StageRun
from anime_recs.steps import step
from anime_recs.tables import BUILTIN_RECOMMENDERS, HYBRID, JACCARD_CF, POPULARITY
from anime_recs.tracking import configure_mlflow

log = logging.getLogger(__name__)


def choose_recommenders(
    configured: list[str], embedders: list[str], hybrid_content: str | None
) -> list[str]:
    """The recommenders of this run: the configured ones, or every embedder, ``jaccard_cf``,
    ``hybrid`` (when its content embedder has vectors) and ``popularity``."""
    if not configured:
        hybrid = [HYBRID] if hybrid_content in embedders else []
        return sorted(embedders) + [JACCARD_CF] + hybrid + [POPULARITY]
    if HYBRID in configured and hybrid_content not in embedders:
        raise JobError(
            f"recommender {HYBRID} needs vectors of recommend.hybrid.content "
            f"({hybrid_content!r}) in table {tables.ANIME_EMBEDDINGS}"
        )
    missing = [
        r for r in configured if r not in (*BUILTIN_RECOMMENDERS, HYBRID) and r not in embedders
    ]
    if missing:
        raise JobError(f"recommenders {missing} have no vectors in table {tables.ANIME_EMBEDDINGS}")
    return list(configured)


def run(spark: SparkSession, config: AppConfig, run: StageRun) -> None:
    """Neighbours, user lists, recommendations, evaluation, report; one MLflow run."""
    rc, lake = config.recommend, config.paths.lake
    started = time.perf_counter()
    versions = dict(run.versions)
    log.info("input versions %s", versions)

    ratings = read_table(spark, lake, tables.RATINGS, versions[tables.RATINGS])
    embedders: list[str] = []
    if versions[tables.ANIME_EMBEDDINGS] is not None:
        embeddings = read_table(
            spark, lake, tables.ANIME_EMBEDDINGS, versions[tables.ANIME_EMBEDDINGS]
        )
        embedders = sorted(r[0] for r in embeddings.select("embedder").distinct().collect())
    else:
        log.warning("table %s not found: no embedding recommenders", tables.ANIME_EMBEDDINGS)
    recommenders = choose_recommenders(rc.recommenders, embedders, rc.hybrid.content)
    log.info("recommenders %s", recommenders)
    timings: dict[str, float] = {}

    # 1. neighbours (driver-side numpy; K = k, the only k of this run; the hybrid fuses
    # deeper lists of its two sources)
    with step("neighbours") as facts:
        hy = rc.hybrid
        depth = max(rc.k, hy.depth) if HYBRID in recommenders else rc.k
        deep: dict[str, pd.DataFrame] = {}

        def neighbours_of(name: str) -> pd.DataFrame:
            if name not in deep:
                if name == JACCARD_CF:
                    pairs = read_table(
                        spark, lake, tables.ANIME_PAIR_JACCARD, versions[tables.ANIME_PAIR_JACCARD]
                    )
                    deep[name] = jaccard_neighbors(pairs, depth)
                else:
                    vectors = (
                        embeddings.filter(embeddings.embedder == name)
                        .select("anime_id", "embedding")
                        .toPandas()
                    )
                    deep[name] = cosine_neighbors(*embedding_matrix(vectors), depth)
            return deep[name]

        frames = []
        for name in recommenders:
            if name == POPULARITY:
                continue
            if name == HYBRID:
                prior = title_priors(ratings, hy.prior_strength) if hy.prior_weight else None
                nb = hybrid_neighbors(
                    neighbours_of(JACCARD_CF),
                    neighbours_of(hy.content),
                    rc.k,
                    hy.fusion,
                    hy.weight_cf,
                    hy.rrf_k,
                    prior,
                    hy.prior_weight,
                )
            else:
                full = neighbours_of(name)
                nb = full[full["rank"] <= rc.k]
            facts[name] = len(nb)
            frames.append(nb.assign(recommender=name))
        neighbors_pdf = pd.concat(frames, ignore_index=True) if frames else None
        if neighbors_pdf is not None:
            columns = tables.ANIME_NEIGHBORS_SCHEMA.fieldNames()
            frame = spark.createDataFrame(
                neighbors_pdf[columns], schema=tables.ANIME_NEIGHBORS_SCHEMA
            )
            facts["version"] = write_table(
                frame, lake, tables.ANIME_NEIGHBORS, tables.ANIME_NEIGHBORS_SCHEMA
            )
    timings["neighbours_s"] = facts["wall_s"]

    # 2. per-user lists of every recommender in one pass over the ratings
    with step("user lists") as facts:
        neighbors = {}
        if neighbors_pdf is not None:
            stored = read_table(spark, lake, tables.ANIME_NEIGHBORS).toPandas()
            neighbors = {name: rows for name, rows in stored.groupby("recommender")}
        promoters = promoter_counts(ratings).toPandas()
        model = build_model(recommenders, neighbors, promoters, rc.k)
        facts["titles"] = int(model.universe.size)
        lists = score_users(
            spark, ratings, model, rc.k, rc.n_max, rc.aggregation, rc.frequency_bonus
        )
        facts["version"] = write_table(lists, lake, tables.USER_SCORES, tables.USER_SCORES_SCHEMA)
        user_scores = read_table(spark, lake, tables.USER_SCORES)
        facts["rows"] = user_scores.count()
    timings["user_lists_s"] = facts["wall_s"]

    with step("recommendations") as facts:
        facts["version"] = write_table(
            recommendations_from_lists(user_scores),
            lake,
            tables.RECOMMENDATIONS,
            tables.RECOMMENDATIONS_SCHEMA,
        )
    timings["recommendations_s"] = facts["wall_s"]

    # 3. evaluation (metrics and bootstrap on the driver, from compact per-user rows)
    with step("evaluation") as facts:
        flat = flat_lists(user_scores, rc.n_max).toPandas()
        evaluation = evaluation_table(flat, rc.n_max, recommenders, rc.bootstrap_samples, rc.seed)
        facts["version"] = write_table(
            spark.createDataFrame(evaluation, schema=tables.EVALUATION_SCHEMA),
            lake,
            tables.EVALUATION,
            tables.EVALUATION_SCHEMA,
        )
        facts["rows"] = len(evaluation)
        facts["users_total"] = int(evaluation["users_total"].max()) if len(evaluation) else 0
    timings["evaluation_s"] = facts["wall_s"]

    with step("cold-start evaluation") as facts:
        cold = cold_titles(ratings)
        cold_ids = sorted(r[0] for r in cold.collect())
        cold_users = sorted(r[0] for r in cold_test_users(ratings, cold).collect())
        cold_eval = cold_start_table(flat, rc.n_max, recommenders, cold_ids, cold_users)
        facts["version"] = write_table(
            spark.createDataFrame(cold_eval, schema=tables.COLD_START_EVALUATION_SCHEMA),
            lake,
            tables.COLD_START_EVALUATION,
            tables.COLD_START_EVALUATION_SCHEMA,
        )
        facts.update(cold_titles=len(cold_ids), users_with_cold_test=len(cold_users))
    timings["cold_start_s"] = facts["wall_s"]

    with step("report and mlflow") as facts:
        params = {
            "k": rc.k,
            "n_max": rc.n_max,
            "aggregation": rc.aggregation,
            "frequency_bonus": rc.frequency_bonus,
            "recommenders": ",".join(recommenders),
            "bootstrap_samples": rc.bootstrap_samples,
            "seed": rc.seed,
            **{f"input_version.{t}": v for t, v in versions.items()},
        }
        files = write_report(evaluation, config.paths.reports, params, cold_eval)
        timings["total_s"] = round(time.perf_counter() - started, 3)
        facts["run_id"] = log_to_mlflow(config, params, evaluation, files, timings)
    log.info("recommend done in %.1fs %s", time.perf_counter() - started, timings)


# logged per recommender and N; recommender and n are the metric's name and step
METRICS = [
    c for c in tables.EVALUATION_SCHEMA.fieldNames() if c not in ("recommender", "n", "users_total")
]


def log_to_mlflow(
    config: AppConfig, params: dict, evaluation: pd.DataFrame, files: list, timings: dict
) -> str:
    """One MLflow run: parameters, metric ``<metric>.<recommender>`` at step N, the report."""
    import mlflow

    configure_mlflow(config.mlflow)
    with mlflow.start_run(run_name="recommend") as run:
        mlflow.log_params({k: str(v) for k, v in params.items()})
        for row in evaluation.itertuples(index=False):
            values = {f"{m}.{row.recommender}": float(getattr(row, m)) for m in METRICS}
            mlflow.log_metrics(
                {k: v for k, v in values.items() if not math.isnan(v)}, step=int(row.n)
            )
        mlflow.log_metrics({f"time.{k}": float(v) for k, v in timings.items()})
        for path in files:
            mlflow.log_artifact(str(path))
        return run.info.run_id
