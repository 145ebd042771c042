"""The recommend stage: every test user's lists, evaluated on warm and on cold titles.

Reads ``ratings``, ``anime_embeddings``, ``anime_pair_jaccard`` and ``anime`` (title names for
the report page); writes ``anime_neighbors`` (top-k per title of each neighbour recommender),
``user_scores`` (per recommender, view and test user: the list, its scores and the user's test
ratings of the listed titles),
``recommendations`` (recommender, user_id, rank, anime_id, score: the lists as made) and
``evaluation`` (one row per recommender, view and N = 1..n_max), plus charts, a markdown
report and the report page ``index.html`` (:mod:`anime_recs.evaluation.page`: the verdict, the
tables, the charts inline, the fine-tune's held-out measures, example users by title name from
``anime`` when it is there) in ``paths.reports``, all logged to one MLflow run.

Recommenders: every embedder in ``anime_embeddings`` (cosine neighbours), ``jaccard_cf``
(promoter Jaccard neighbours), the peers ``ease`` and ``als``
(:mod:`anime_recs.recommend.peers`), ``hybrid`` (the collaborative list with new titles in its
cold slots, :mod:`anime_recs.recommend.hybrid`, when the embedder ``recommend.hybrid.content``
has vectors) and ``popularity``, each declared in :mod:`anime_recs.recommend.registry`;
``recommend.recommenders`` picks a subset.

Views (``tables.VIEWS``): ``warm`` ranks among and scores on the titles with a train rating,
``cold`` among and on the others (the newest titles, held out whole by ingest), for the
recommenders that can list them; ``all`` is each list as made, on every test rating.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from anime_recs import tables
from anime_recs.config import AppConfig, RecommendConfig
from anime_recs.errors import JobError
from anime_recs.evaluation.evaluate import evaluation_table, flat_lists
from anime_recs.evaluation.page import PAGE, ExampleUser, Finetune, Listed, charts, page, verdict
from anime_recs.evaluation.report import write_report
from anime_recs.lakehouse import read_table, write_table
from anime_recs.recommend.fitting import hybrid_parts, recommender_models
from anime_recs.recommend.popularity import promoter_counts
from anime_recs.recommend.registry import (
    REGISTRY,
    Kind,
    Need,
    Recommender,
    declaration,
    embedder,
)
from anime_recs.recommend.scoring import (
    build_model,
    list_views,
    recommendations_from_lists,
    score_users,
)
from anime_recs.runlog import StageRun
from anime_recs.steps import step
from anime_recs.tables import ALL, PROMOTER_MIN_RATING, TRAIN, VIEWS
from anime_recs.tracking import configure_mlflow, dotted_params, keep_logging

log = logging.getLogger(__name__)


def choose_recommenders(
    configured: list[str], embedders: list[str], hybrid_content: str | None
) -> list[Recommender]:
    """The recommenders of this run: the configured ones, or every embedder and then every
    registered recommender that can run (a hybrid when its content embedder has vectors)."""
    if not configured:
        runnable = [
            r for r in REGISTRY.values() if r.kind is not Kind.HYBRID or hybrid_content in embedders
        ]
        return [embedder(name) for name in sorted(embedders)] + runnable
    missing = [r for r in configured if r not in REGISTRY and r not in embedders]
    if missing:
        raise JobError(f"recommenders {missing} have no vectors in table {tables.ANIME_EMBEDDINGS}")
    chosen = [declaration(name, embedders) for name in configured]
    for recommender in chosen:
        if recommender.kind is Kind.HYBRID and hybrid_content not in embedders:
            raise JobError(
                f"recommender {recommender.name} needs vectors of recommend.hybrid.content "
                f"({hybrid_content!r}) in table {tables.ANIME_EMBEDDINGS}"
            )
    return chosen


def hybrid_sides(recommenders: list[Recommender], rc: RecommendConfig) -> list[str]:
    """The parts of the hybrids among ``recommenders`` (``recommend.hybrid``): its
    collaborative side and its content embedder; none without a hybrid."""
    if not any(r.kind is Kind.HYBRID for r in recommenders):
        return []
    return [rc.hybrid.collaborative, rc.hybrid.content]


def evaluated_lists(recommenders: list[Recommender]) -> list[tuple[str, str]]:
    """Every (recommender, view) the run scores: ``all`` and ``warm``, and ``cold`` for the
    recommenders that reach the cold titles."""
    return [(r.name, view) for r in recommenders for view in list_views(r.reaches_cold)]


def fitted_recommenders(
    recommenders: list[Recommender], rc: RecommendConfig, embedders: list[str]
) -> list[Recommender]:
    """The recommenders whose models a run fits: the evaluated ones and the hybrid's parts."""
    names = dict.fromkeys([*(r.name for r in recommenders), *hybrid_sides(recommenders, rc)])
    return [declaration(name, embedders) for name in names]


def run(spark: SparkSession, config: AppConfig, run: StageRun) -> None:
    """Neighbours, peers, user lists per view, recommendations, evaluation, report; one MLflow
    run."""
    rc, lake = config.recommend, config.paths.lake
    started = time.perf_counter()
    versions = dict(run.versions)
    log.info("input versions %s", versions)

    ratings = read_table(spark, lake, tables.RATINGS, versions[tables.RATINGS])
    train = ratings.filter(F.col("split") == TRAIN)
    embedders: list[str] = []
    if versions[tables.ANIME_EMBEDDINGS] is not None:
        embeddings = read_table(
            spark, lake, tables.ANIME_EMBEDDINGS, versions[tables.ANIME_EMBEDDINGS]
        )
        embedders = sorted(r[0] for r in embeddings.select("embedder").distinct().collect())
    else:
        log.warning("table %s not found: no embedding recommenders", tables.ANIME_EMBEDDINGS)
    chosen = choose_recommenders(rc.recommenders, embedders, rc.hybrid.content)
    recommenders = [r.name for r in chosen]
    log.info("recommenders %s", recommenders)
    timings: dict[str, float] = {}
    promoters = promoter_counts(ratings).toPandas()
    warm = np.sort(promoters["anime_id"].to_numpy(np.int64))

    hy = rc.hybrid

    # 1. neighbours (driver-side numpy) and the peers, fitted on the train split
    with step("models") as facts:
        fitted = fitted_recommenders(chosen, rc, embedders)
        pairs = None
        if any(Need.PAIRS in r.needs for r in fitted):
            version = versions[tables.ANIME_PAIR_JACCARD]
            pairs = read_table(spark, lake, tables.ANIME_PAIR_JACCARD, version)

        def vectors_of(name: str) -> pd.DataFrame:
            rows = embeddings.filter(embeddings.embedder == name)
            return rows.select("anime_id", "embedding").toPandas()

        views, dense = recommender_models(fitted, rc, warm, train, pairs, vectors_of)
        facts.update({name: len(frame) for (name, view), frame in views.items() if view == ALL})
        facts.update({name: int(model.titles.size) for name, model in dense.items()})
        frames = [
            frame.assign(recommender=name)
            for (name, view), frame in views.items()
            if view == ALL and name in recommenders
        ]
        if frames:
            columns = tables.ANIME_NEIGHBORS_SCHEMA.fieldNames()
            frame = spark.createDataFrame(
                pd.concat(frames, ignore_index=True)[columns], schema=tables.ANIME_NEIGHBORS_SCHEMA
            )
            facts["version"] = write_table(
                frame, lake, tables.ANIME_NEIGHBORS, tables.ANIME_NEIGHBORS_SCHEMA
            )
    timings["models_s"] = facts["wall_s"]

    # 3. per-user lists of every recommender and view in one pass over the ratings
    lists = evaluated_lists(chosen)
    with step("user lists") as facts:
        hybrids = {r.name: hybrid_parts(rc) for r in chosen if r.kind is Kind.HYBRID}
        model = build_model(lists, views, promoters, rc.k, dense, hybrids)
        facts["titles"] = int(model.universe.size)
        scored = score_users(spark, ratings, model, rc.k, rc.n_max, rc.frequency_bonus)
        facts["version"] = write_table(scored, lake, tables.USER_SCORES, tables.USER_SCORES_SCHEMA)
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

    # 4. evaluation per view (metrics and bootstrap on the driver, from compact per-user rows)
    with step("evaluation") as facts:
        flat = flat_lists(user_scores, rc.n_max).toPandas()
        by_view = {view: [n for n, v in lists if v == view] for view in VIEWS}
        cold = np.setdiff1d(model.universe, warm)
        evaluation = evaluation_table(flat, rc.n_max, by_view, cold, rc.bootstrap_samples, rc.seed)
        facts["version"] = write_table(
            spark.createDataFrame(evaluation, schema=tables.EVALUATION_SCHEMA),
            lake,
            tables.EVALUATION,
            tables.EVALUATION_SCHEMA,
        )
        facts["rows"] = len(evaluation)
        for view in VIEWS:
            rows = evaluation[evaluation["view"] == view]
            facts[f"users_{view}"] = int(rows["users_total"].max()) if len(rows) else 0
    timings["evaluation_s"] = facts["wall_s"]

    with step("report and mlflow") as facts:
        params = {
            **dotted_params("recommend", rc.model_dump()),
            "recommenders": ",".join(recommenders),
            **{f"input_version.{t}": v for t, v in versions.items()},
        }
        files = write_report(evaluation, config.paths.reports, params)
        anime = None
        if versions.get(tables.ANIME) is not None:
            anime = read_table(spark, lake, tables.ANIME, versions[tables.ANIME])
        else:
            log.warning("table %s not found: the report page shows title ids", tables.ANIME)
        shown = next((r.name for r in chosen if r.kind is Kind.HYBRID), recommenders[0])
        examples = example_users(user_scores, ratings, anime, warm, shown, EXAMPLE_USERS)
        text = page(
            evaluation, params, hy.content, charts(evaluation), latest_finetune(config), examples
        )
        index = Path(config.paths.reports) / PAGE
        index.write_text(text, encoding="utf-8")
        files.append(index)
        facts["page"] = str(index)
        timings["total_s"] = round(time.perf_counter() - started, 3)
        facts["run_id"] = log_to_mlflow(config, params, evaluation, files, timings)
    log.info(
        "recommend done in %.1fs %s; %s",
        time.perf_counter() - started,
        timings,
        verdict(evaluation, hy.content),
    )


EXAMPLE_USERS = 3  # the report page's example users


def example_users(
    user_scores: DataFrame,
    ratings: DataFrame,
    anime: DataFrame | None,
    warm: np.ndarray,
    recommender: str,
    count: int,
) -> list[ExampleUser]:
    """The report page's example users: the first ``count`` test users by ``user_id`` that
    have a list of ``recommender`` (its ``all`` view in ``user_scores``) and promoted titles
    (train ratings >= 9), with those titles sorted by name and the list in rank order, each
    title named from ``anime`` (None: not there, or no ``anime``) and marked new when it is not
    in ``warm`` (the titles with a train rating)."""
    promoted = ratings.filter(
        (F.col("split") == TRAIN) & (F.col("rating") >= PROMOTER_MIN_RATING)
    ).select("user_id", "anime_id")
    lists = (
        user_scores.filter((F.col("recommender") == recommender) & (F.col("view") == ALL))
        .join(promoted.select("user_id").distinct(), "user_id")
        .orderBy("user_id")
        .limit(count)
        .select("user_id", "anime_ids", "test_ratings")
        .collect()
    )
    users = [int(row.user_id) for row in lists]
    liked = promoted.filter(F.col("user_id").isin(users)).collect() if users else []
    ids = sorted({int(a) for row in lists for a in row.anime_ids} | {r.anime_id for r in liked})
    names: dict[int, str] = {}
    if anime is not None and ids:
        chosen = anime.filter(F.col("anime_id").isin(ids)).select("anime_id", "name")
        names = {int(r.anime_id): r.name for r in chosen.collect()}
    warm_titles = set(warm.tolist())
    out = []
    for row in lists:
        mine = [int(r.anime_id) for r in liked if r.user_id == row.user_id]
        titles = sorted(((a, names.get(a)) for a in mine), key=lambda t: (t[1] is None, t[1], t[0]))
        listed = [
            Listed(rank, int(a), names.get(int(a)), int(a) not in warm_titles, int(rating))
            for rank, (a, rating) in enumerate(zip(row.anime_ids, row.test_ratings, strict=True), 1)
        ]
        out.append(ExampleUser(int(row.user_id), recommender, titles, listed))
    return out


def latest_finetune(config: AppConfig) -> Finetune | None:
    """The newest finished fine-tune run (a run with param ``finetune.recipe``) of the
    configured MLflow experiment: its recipe, registered model (``finetune.registered_model``),
    pairs and held-out measures ``val_<measure>_before``/``_after``; None when there is none."""
    import mlflow

    experiment_id = configure_mlflow(config.mlflow)
    with keep_logging():
        runs = mlflow.MlflowClient().search_runs(
            [experiment_id],
            filter_string="attributes.status = 'FINISHED' and params.`finetune.recipe` LIKE '%'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
    if not runs:
        return None
    run = runs[0]
    params, metrics = run.data.params, run.data.metrics
    recipe = params["finetune.recipe"]
    model = params.get("finetune.registered_model")
    measures = {
        name: (metrics.get(f"val_{name}_before"), metrics.get(f"val_{name}_after"))
        for name in ("spearman", "ndcg")
        if f"val_{name}_before" in metrics or f"val_{name}_after" in metrics
    }
    return Finetune(
        recipe,
        model,
        run.info.run_id,
        params.get("data.train_pairs"),
        params.get("data.val_pairs"),
        measures,
    )


# logged per recommender, view and N; recommender and view name the metric, n is its step
METRICS = [
    c
    for c in tables.EVALUATION_SCHEMA.fieldNames()
    if c not in ("recommender", "view", "n", "users_total")
]


def log_to_mlflow(
    config: AppConfig, params: dict, evaluation: pd.DataFrame, files: list, timings: dict
) -> str:
    """One MLflow run: parameters, metric ``<metric>.<view>.<recommender>`` at step N, the
    report."""
    import mlflow

    configure_mlflow(config.mlflow)
    with mlflow.start_run(run_name="recommend") as run:
        mlflow.log_params({k: str(v) for k, v in params.items()})
        for row in evaluation.itertuples(index=False):
            values = {f"{m}.{row.view}.{row.recommender}": float(getattr(row, m)) for m in METRICS}
            mlflow.log_metrics(
                {k: v for k, v in values.items() if not math.isnan(v)}, step=int(row.n)
            )
        mlflow.log_metrics({f"time.{k}": float(v) for k, v in timings.items()})
        for path in files:
            mlflow.log_artifact(str(path))
        return run.info.run_id
