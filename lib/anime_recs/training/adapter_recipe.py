"""The ``adapter`` recipe of the finetune stage: a vector adapter trained on stored vectors.

Reads the vectors of ``finetune.adapter.source`` in ``anime_embeddings`` (handed in by the
stage), the train and val rows of ``copromoted_pairs`` (ids and graded Jaccard only: no
descriptions) and trains :mod:`anime_recs.training.adapter` on the driver with the objective
``finetune.adapter.objective``. The epoch kept is the one whose adapted vectors score best on
the held-out titles (the ``val`` pairs, titles no train pair has): their pairs' Spearman of
cosine vs Jaccard for ``in_batch``, NDCG@``finetune.validation_k`` of their neighbourhoods for
``listwise``; epoch 0, the identity, included, so the kept adapter never scores below the
vectors it maps.

MLflow, like the encoder recipes: one run tagged with the stage's fingerprint (params: the
fine-tune config, the inputs' versions, example and title counts; metrics: both held-out
measures before and after, the chosen one per epoch, the loss per epoch, wall time), the
adapter logged as a ``pyfunc`` model (:mod:`anime_recs.training.adapter_model`) and a new
version of ``finetune.adapter.registered_model``. A fingerprint registered already does nothing
unless the run is forced (``StageRun.forced``: ``--force`` or ``finetune.force``). Training
takes seconds, so an interrupted run simply runs again.
"""

from __future__ import annotations

import logging
import tempfile
import time

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from anime_recs import tables
from anime_recs.config import AdapterConfig, AppConfig
from anime_recs.embeddings.adapted import VectorAdapter, adapt, save_adapter
from anime_recs.errors import JobError
from anime_recs.lakehouse import read_table
from anime_recs.options import IN_BATCH
from anime_recs.runlog import StageRun
from anime_recs.steps import step
from anime_recs.tracking import configure_mlflow, dotted_params, keep_logging
from anime_recs.training.adapter import (
    AdapterSettings,
    TrainExamples,
    listwise_examples,
    pair_rows,
    train_adapter,
)
from anime_recs.training.held_out import chosen_measure, held_out_of
from anime_recs.training.pairs import sample_pair_rows
from anime_recs.training.registry import (
    FINGERPRINT_TAG,
    STAGE_TAG,
    log_and_register_adapter,
    registered_already,
)

log = logging.getLogger(__name__)


def settings_of(cfg: AdapterConfig, seed: int) -> AdapterSettings:
    return AdapterSettings(
        rank=cfg.rank,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        l2=cfg.l2,
        scale=cfg.scale,
        seed=seed,
        loss=cfg.objective,
    )


def collect_vectors(rows: DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(anime ids ascending, [titles, dim] float32)`` of one embedder's rows."""
    frame = rows.select("anime_id", "embedding").orderBy("anime_id").toPandas()
    ids = frame["anime_id"].to_numpy(np.int64)
    if not len(frame):
        return ids, np.zeros((0, 0), np.float32)
    return ids, np.stack(frame["embedding"].to_numpy()).astype(np.float32)


def collect_pairs(pairs: DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    frame = pairs.select("anime_a", "anime_b", "jaccard").orderBy("anime_a", "anime_b").toPandas()
    return (
        frame["anime_a"].to_numpy(np.int64),
        frame["anime_b"].to_numpy(np.int64),
        frame["jaccard"].to_numpy(np.float64),
    )


def run(spark: SparkSession, config: AppConfig, run: StageRun, source_rows: DataFrame) -> None:
    """Train, log and register the adapter unless this fingerprint is registered already."""
    ft, cfg, lake = config.finetune, config.finetune.adapter, config.paths.lake
    versions, fingerprint = dict(run.versions), run.fingerprint
    job_start = time.perf_counter()
    import mlflow

    experiment_id = configure_mlflow(config.mlflow)
    client = mlflow.MlflowClient()
    if registered_already(client, experiment_id, cfg.registered_model, fingerprint, run.forced):
        return

    with step("read inputs") as facts:
        ids, vectors = collect_vectors(source_rows)
        copromoted = read_table(
            spark, lake, tables.COPROMOTED_PAIRS, versions[tables.COPROMOTED_PAIRS]
        )
        train = collect_pairs(copromoted.where(F.col("split") == tables.TRAIN))
        val_rows = copromoted.where(F.col("split") == tables.VAL)
        val = collect_pairs(sample_pair_rows(val_rows, ft.max_val_pairs, ft.seed))
        ta, tb, tj = pair_rows(ids, *train)
        held_out = held_out_of(ids, vectors, val, ft.validation_candidates, ft.validation_k)
        facts.update(
            source=cfg.source,
            titles=int(ids.size),
            dim=int(vectors.shape[1]) if vectors.size else 0,
            train_pairs=int(ta.size),
            val_pairs=int(held_out.pair_a.size),
        )
    if ta.size == 0:
        raise JobError(
            f"{tables.COPROMOTED_PAIRS} has no train pair whose two titles have vectors of "
            f"{cfg.source} (finetune.adapter.source): nothing to learn"
        )
    if held_out.titles == 0:
        log.warning("no val pairs: the adapter stays the identity (nothing to validate on)")
    if cfg.objective == IN_BATCH:
        examples = TrainExamples.pairs(ta, tb)
    else:
        examples = listwise_examples(vectors, ta, tb, tj, cfg.candidates)
    measure = chosen_measure(cfg.objective)

    before = held_out.measures(vectors)
    tags = {FINGERPRINT_TAG: fingerprint, STAGE_TAG: "finetune"}
    with mlflow.start_run(run_name=f"finetune-{fingerprint}", tags=tags):
        mlflow.log_params(dotted_params("finetune", ft.model_dump()))
        mlflow.log_params(
            {
                **{f"data.{name}.version": v for name, v in versions.items()},
                "data.train_pairs": int(ta.size),
                "data.train_examples": len(examples),
                "data.val_pairs": int(held_out.pair_a.size),
                "data.val_titles": held_out.titles,
                "data.titles": int(ids.size),
                "validation_measure": measure,
                "fingerprint": fingerprint,
            }
        )
        with step("train") as facts:
            result = train_adapter(
                vectors,
                examples,
                lambda v: held_out.measures(v)[measure],
                settings_of(cfg, ft.seed),
            )
            facts.update(
                objective=cfg.objective,
                examples=len(examples),
                best_epoch=result.best_epoch,
                measure=measure,
                before=result.measure_before,
                after=result.measure_after,
            )
        after = held_out.measures(adapt(vectors, result.a, result.b))
        summary = {"best_epoch": result.best_epoch, "train_s": result.train_s}
        for name, value in before.items():
            if value is not None:
                summary[f"val_{name}_before"] = value
        for name, value in after.items():
            if value is not None:
                summary[f"val_{name}_after"] = value
        summary["wall_s"] = time.perf_counter() - job_start
        mlflow.log_metrics(summary)
        for epoch, value in result.epoch_measure:
            mlflow.log_metric(f"val_{measure}_epoch", value, step=epoch)
        for epoch, value in result.loss_curve:
            mlflow.log_metric("train_loss", value, step=epoch)

        adapter = VectorAdapter(
            result.a,
            result.b,
            {"source": cfg.source, "objective": cfg.objective, "best_epoch": result.best_epoch},
        )
        with step("log and register adapter") as facts, keep_logging():
            with tempfile.TemporaryDirectory(prefix="anime-adapter-") as folder:
                path = save_adapter(adapter, folder)
                registered = log_and_register_adapter(
                    str(path), adapter.dim, cfg.registered_model, fingerprint, client
                )
            facts.update(model_uri=registered.uri, run_id=registered.run_id)
    log.info(
        "adapter (%s) on %s's vectors: %s examples; held-out %s -> %s; registered %s",
        cfg.objective,
        cfg.source,
        len(examples),
        before,
        after,
        registered.uri,
    )
