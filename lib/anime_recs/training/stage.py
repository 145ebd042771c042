"""The finetune stage: the bi-encoder fine-tuned on promoter-Jaccard pairs on the driver,
tracked in MLflow and registered; resumable and skipped when its inputs did not change.

Reads the examples of the recipe ``finetune.recipe`` (:mod:`anime_recs.training.recipes`:
``copromoted_pairs`` with ``MultipleNegativesRankingLoss``, or the case study's
``training_pairs`` with ``CosineSimilarityLoss``), the validation pairs (the ``val`` rows of
``copromoted_pairs``: every guarded pair of two held-out titles, labelled with its graded
Jaccard, the same for both recipes) and ``anime`` (descriptions); collects them to the driver and
fine-tunes ``finetune.base_model`` there (CUDA when the driver sees a GPU, else CPU;
:mod:`anime_recs.training.finetune`).
Writes no Delta table: one MLflow run (params: the fine-tune config, the inputs' Delta
versions, pair counts, device; metrics: validation Spearman before/after/per epoch, the loss
curve, wall time, pairs per second), the model (sentence-transformers flavour), a new version
of ``finetune.registered_model``, and checkpoints under
``<paths.checkpoints>/finetune/<fingerprint>/`` (removed once the version is registered).

The fingerprint hashes the fine-tune settings and the input tables' contents
(``lakehouse.table_digest``, not their Delta versions: an upstream rerun that rewrites the same
rows must not register a duplicate model version). A rerun whose fingerprint finished and was
registered does nothing (unless ``finetune.force``); an interrupted run continues from its last
checkpoint, in the same MLflow run.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from anime_recs import tables
from anime_recs.config import AppConfig
from anime_recs.errors import JobError
from anime_recs.lakehouse import read_table, table_digest, table_version
from anime_recs.models import is_hub_id, load_sentence_transformer
from anime_recs.steps import step
from anime_recs.tracking import configure_mlflow, keep_logging
from anime_recs.training.finetune import (
    TrainSettings,
    clear_checkpoints,
    pick_device,
    read_checkpoint_state,
    train,
)
from anime_recs.training.pairs import (
    PairSet,
    collect_pair_sets,
    limit_pairs,
    pair_texts,
    sample_pair_rows,
    within_content_neighbourhood,
)
from anime_recs.training.recipes import RECIPES
from anime_recs.training.registry import (
    FINGERPRINT_TAG,
    STAGE_TAG,
    find_registered,
    log_and_register,
    run_is_resumable,
    training_fingerprint,
)

log = logging.getLogger(__name__)

INPUTS = (tables.TRAINING_PAIRS, tables.COPROMOTED_PAIRS, tables.ANIME)


def graded(pairs: DataFrame) -> DataFrame:
    """``copromoted_pairs`` as labelled pairs: the label is the pair's Jaccard."""
    return pairs.withColumn("label", F.col("jaccard"))


def neighbourhood_pairs(model, pairs: PairSet, k: int) -> PairSet:
    """The pairs inside the base encoder's content neighbourhoods (``k`` nearest among the
    pairs' titles; :func:`~anime_recs.training.pairs.within_content_neighbourhood`)."""
    if k <= 0 or len(pairs) == 0:
        return pairs
    texts = {}
    for (a, b), text_a, text_b in zip(pairs.ids, pairs.texts_a, pairs.texts_b, strict=True):
        texts[a], texts[b] = text_a, text_b
    ids = sorted(texts)
    vectors = model.encode(
        [texts[i] for i in ids], batch_size=64, normalize_embeddings=True, show_progress_bar=False
    )
    return within_content_neighbourhood(pairs, np.asarray(ids), vectors, k)


def read_examples(
    spark: SparkSession,
    lake: str,
    recipe: str,
    versions: dict[str, int | None],
    max_val_pairs: int = 0,
    seed: int = 0,
) -> tuple[PairSet, PairSet]:
    """The recipe's train pairs and the graded validation pairs (at most ``max_val_pairs``, a
    seeded sample: :func:`~anime_recs.training.pairs.sample_pair_rows`), with both
    descriptions; each split is filtered before it reaches the driver."""
    anime = read_table(spark, lake, tables.ANIME, versions[tables.ANIME])
    copromoted = graded(
        read_table(spark, lake, tables.COPROMOTED_PAIRS, versions[tables.COPROMOTED_PAIRS])
    )
    table = RECIPES[recipe].pairs_table
    examples = (
        copromoted
        if table == tables.COPROMOTED_PAIRS
        else read_table(spark, lake, table, versions[table])
    )
    train = examples.where(F.col("split") == tables.TRAIN)
    train_pairs = collect_pair_sets(pair_texts(train, anime))[tables.TRAIN]
    val = pair_texts(copromoted.where(F.col("split") == tables.VAL), anime)
    val_pairs = collect_pair_sets(sample_pair_rows(val, max_val_pairs, seed))[tables.VAL]
    return train_pairs, val_pairs


def run(spark: SparkSession, config: AppConfig) -> None:
    """Train, log and register unless this fingerprint is registered already; resume a crash."""
    ft, lake = config.finetune, config.paths.lake
    if not is_hub_id(ft.base_model):
        # packaged, local folder or MLflow URI: nothing may reach the Hugging Face hub
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    job_start = time.perf_counter()

    # the fingerprint needs only the inputs' digests: an unchanged rerun stops before training
    versions = {name: table_version(spark, lake, name) for name in INPUTS}
    missing = [name for name, version in versions.items() if version is None]
    if missing:
        raise FileNotFoundError(
            f"Delta table(s) {missing} not found under {lake}: run their stage first"
        )
    digests = {name: table_digest(spark, lake, name, versions[name]) for name in INPUTS}
    finetune_params = ft.model_dump()
    fingerprint = training_fingerprint(finetune_params, digests)
    import mlflow

    experiment_id = configure_mlflow(config.mlflow)
    client = mlflow.MlflowClient()
    done = find_registered(client, experiment_id, ft.registered_model, fingerprint)
    if done and not ft.force:
        log.info(
            "fingerprint %s (inputs %s) already trained in run %s and registered as %s: "
            "skipped (set finetune.force=true to train again)",
            fingerprint,
            versions,
            done.run_id,
            done.uri,
        )
        return

    recipe = RECIPES[ft.recipe]
    device = pick_device()
    with step("load base model") as facts:
        model = load_sentence_transformer(ft.base_model, ft.max_seq_length, device)
        facts.update(model=ft.base_model, device=device, max_seq_length=model.max_seq_length)
    with step("read inputs") as facts:
        available, val_pairs = read_examples(
            spark, lake, ft.recipe, versions, ft.max_val_pairs, ft.seed
        )
        candidates = len(available)
        if recipe.pairs_table == tables.COPROMOTED_PAIRS:
            available = neighbourhood_pairs(model, available, ft.content_neighbours)
        train_pairs = limit_pairs(available, ft.max_train_pairs, ft.seed)
        facts.update(
            inputs=versions,
            recipe=ft.recipe,
            candidates=candidates,
            train_pairs=len(train_pairs),
            train_available=len(available),
            val_pairs=len(val_pairs),
        )
    if len(train_pairs) == 0:
        raise JobError(
            f"{recipe.pairs_table} has no train pair with two descriptions: nothing to learn"
        )
    if len(val_pairs) == 0:
        log.warning("no val pairs: validation Spearman will not be computed")

    checkpoint_dir = Path(config.paths.checkpoints) / "finetune" / fingerprint
    state = read_checkpoint_state(checkpoint_dir)
    previous_run = state.meta.get("mlflow_run_id") if state else None
    resume_run = previous_run if run_is_resumable(client, previous_run, experiment_id) else None

    settings = TrainSettings(
        batch_size=ft.batch_size,
        forward_chunk=ft.forward_chunk,
        epochs=ft.epochs,
        learning_rate=ft.learning_rate,
        warmup_ratio=ft.warmup_ratio,
        seed=ft.seed,
        logging_steps=ft.logging_steps,
        checkpoint_steps=ft.checkpoint_steps,
        loss=recipe.loss,
    )
    tags = {FINGERPRINT_TAG: fingerprint, STAGE_TAG: "finetune"}
    with mlflow.start_run(
        run_id=resume_run,
        run_name=None if resume_run else f"finetune-{fingerprint}",
        tags=None if resume_run else tags,
    ) as run:
        if resume_run:
            log.info(
                "continuing MLflow run %s from the checkpoint at step %s",
                run.info.run_id,
                state.global_step,
            )
            mlflow.set_tag("resumed_from_step", str(state.global_step))
        else:
            mlflow.log_params({f"finetune.{k}": v for k, v in finetune_params.items()})
            mlflow.log_params(
                {
                    **{f"data.{name}.version": v for name, v in versions.items()},
                    "data.train_pairs": len(train_pairs),
                    "data.train_positives": train_pairs.positives(),
                    "data.train_available": len(available),
                    "data.val_pairs": len(val_pairs),
                    "data.val_titles": len(set(val_pairs.texts_a) | set(val_pairs.texts_b)),
                    "loss": recipe.loss,
                    "fingerprint": fingerprint,
                }
            )
        mlflow.set_tag("device", device)

        with step("train") as facts:
            result = train(
                model,
                train_pairs,
                val_pairs,
                settings,
                checkpoint_dir,
                on_metrics=lambda metrics, at: mlflow.log_metrics(metrics, step=at),
                meta={"mlflow_run_id": run.info.run_id, "fingerprint": fingerprint},
            )
            facts.update(
                steps=result.global_step,
                spearman_before=result.spearman_before,
                spearman_after=result.spearman_after,
                pairs_per_s=round(result.pairs_per_s, 2),
            )
        summary = {
            "train_steps": result.global_step,
            "train_s": result.train_s,
            "train_pairs_per_s": result.pairs_per_s,
            "wall_s": time.perf_counter() - job_start,
        }
        if result.spearman_before is not None:
            summary["val_spearman_before"] = result.spearman_before
        if result.spearman_after is not None:
            summary["val_spearman_after"] = result.spearman_after
            summary["val_spearman_gain"] = result.spearman_after - (result.spearman_before or 0)
        mlflow.log_metrics(summary)
        for epoch, value in result.epoch_spearman:
            mlflow.log_metric("val_spearman_epoch", value, step=epoch)

        # registering opens MLflow's registry store; on a fresh SQLite file its migrations
        # replace the root log handlers (alembic fileConfig): keep ours
        with step("log and register model") as facts, keep_logging():
            registered = log_and_register(model, ft.registered_model, fingerprint, client)
            facts.update(model_uri=registered.uri, run_id=registered.run_id)

    clear_checkpoints(checkpoint_dir)
    log.info(
        "fine-tuned %s on %s pairs (%s steps, %s): val spearman %s -> %s; registered %s",
        ft.base_model,
        len(train_pairs),
        result.global_step,
        device,
        result.spearman_before,
        result.spearman_after,
        registered.uri,
    )
