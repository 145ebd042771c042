"""The finetune stage: the bi-encoder fine-tuned on promoter-Jaccard pairs on the driver,
tracked in MLflow and registered; resumable and skipped when its inputs did not change.

Reads the examples of the recipe ``finetune.recipe`` (:mod:`anime_recs.training.recipes`:
``copromoted_pairs`` with ``MultipleNegativesRankingLoss``, or the case study's
``training_pairs`` with ``CosineSimilarityLoss``), the validation pairs (the ``val`` rows of
``copromoted_pairs``: every guarded pair of two held-out titles, labelled with its graded
Jaccard, the same for both recipes), ``anime`` (descriptions) and, for the contrastive recipe,
the base encoder's vectors in ``anime_embeddings`` (``finetune.content_neighbours_embedder``,
written by ``embed_base``): a train pair is kept when its titles are content neighbours. The
pairs are chosen from their ids (:mod:`anime_recs.training.inputs`); only the chosen pairs'
descriptions reach the driver, where ``finetune.base_model`` is fine-tuned (CUDA when the
driver sees a GPU, else CPU; :func:`anime_recs.training.encoder.fit_encoder`, which knows no
Spark and no MLflow).
Writes no Delta table: one MLflow run (params: the fine-tune config, the inputs' Delta
versions, pair counts, device; metrics: validation Spearman before/after/per epoch, the loss
curve, wall time, pairs per second), the model (sentence-transformers flavour), a new version
of ``finetune.registered_model``, and checkpoints under
``<paths.checkpoints>/finetune/<fingerprint>/`` (removed once the version is registered). The
registered version is the stage's recorded output (:func:`registered_outputs`): when it is
no longer in the registry, the runner runs the stage again, which trains and registers anew.

The stage's fingerprint (the runner's, ``runlog.fingerprint``) hashes the fine-tune settings
but :data:`IGNORED_SETTINGS` and the inputs' contents (the stage is declared ``by_content``: the
``lakehouse.table_digest`` of each table, and of ``anime_embeddings`` only the neighbourhood
embedder's rows, :func:`vectors_inputs`), not their Delta versions: an upstream rerun that
rewrites the same rows must not register a duplicate model version. A run whose fingerprint
finished and was registered already does nothing unless the runner forces the run (``--force``
of the job or the pipeline, or ``finetune.force``: ``StageRun.forced``); an interrupted run
continues from its last checkpoint, in the same MLflow run.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from anime_recs.config import AppConfig, FinetuneConfig
from anime_recs.errors import JobError
from anime_recs.models import is_hub_id
from anime_recs.runlog import StageRun
from anime_recs.steps import step
from anime_recs.tracking import configure_mlflow, dotted_params, keep_logging, set_mlflow_uris
from anime_recs.training.encoder import fit_encoder
from anime_recs.training.examples import PairSet
from anime_recs.training.finetune import (
    TrainResult,
    clear_checkpoints,
    encode_texts,
    pick_device,
    read_checkpoint_state,
)
from anime_recs.training.held_out import (
    NDCG,
    HeldOut,
    held_out_of,
    pair_set_titles,
    pair_set_values,
)
from anime_recs.training.inputs import (
    embedder_vectors,
    neighbourhood_embedder,
    read_pairs,
    vectors_embedder,
    vectors_input,
)
from anime_recs.training.recipes import RECIPES
from anime_recs.training.registry import (
    FINGERPRINT_TAG,
    STAGE_TAG,
    find_registered,
    log_and_register,
    registered_already,
    run_is_resumable,
)

log = logging.getLogger(__name__)

# settings that change no trained weights: not part of the fingerprint (registered versions
# carry it as a tag, so a rerun with other logging or checkpoint steps finds them)
IGNORED_SETTINGS = ("finetune.force", "finetune.logging_steps", "finetune.checkpoint_steps")
REGISTERED_OUTPUT = "registered_model"  # the registered version's name in the run log


def vectors_inputs(spark: SparkSession, config: AppConfig) -> dict[str, str | None]:
    """The content of the stored vectors the stage reads
    (:func:`~anime_recs.training.inputs.vectors_embedder`), for the pipeline's stage
    fingerprint: one embedder's rows of ``anime_embeddings``, which ``embed_finetuned``
    rewrites other rows of (their table version alone would rerun this stage after it)."""
    try:
        chosen = vectors_embedder(config)
    except JobError:
        return {"content_neighbours_embedder": None}  # the run fails and is recorded
    if chosen is None:
        return {}
    try:
        _, digest = embedder_vectors(spark, config.paths.lake, *chosen)
    except JobError:
        digest = None  # the run says why
    return {vectors_input(chosen[0]): digest}


def registered_outputs(
    spark: SparkSession, config: AppConfig, fingerprint: str
) -> dict[str, str | None]:
    """The stage's output outside the lake, for the run log (the stage's ``extra_outputs``):
    ``{"registered_model": "models:/NAME/VERSION"}``, the version of the recipe's registered
    model trained with ``fingerprint`` (the newest, when forced runs registered several), or
    None when the registry has none (the version deleted, the registry lost or reset). Looks
    only: creates no experiment."""
    import mlflow

    ft = config.finetune
    name = ft.registered_model
    found = None
    # a first touch of a fresh SQLite store replaces the root log handlers (alembic)
    with keep_logging():
        set_mlflow_uris(config.mlflow)
        client = mlflow.MlflowClient()
        experiment = client.get_experiment_by_name(config.mlflow.experiment)
        if experiment is not None:
            found = find_registered(client, experiment.experiment_id, name, fingerprint)
    return {REGISTERED_OUTPUT: None if found is None else found.uri}


class HeldOutNdcg:
    """NDCG of the validation titles' content neighbourhoods by the encoder before and after
    training (:mod:`anime_recs.training.held_out`: the candidates fixed by the untrained
    model's vectors); nothing is measured without validation pairs."""

    def __init__(self, val_pairs: PairSet, ft: FinetuneConfig) -> None:
        self.val_pairs, self.ft = val_pairs, ft
        self.held_out: HeldOut | None = None
        self.texts: list[str] = []
        self.before: float | None = None
        self.after: float | None = None

    @property
    def measured(self) -> bool:
        return self.held_out is not None and self.before is not None

    def measure_untrained(self, model: Any) -> None:
        """The candidates and the NDCG before training (``fit_encoder``'s ``on_loaded``)."""
        if not len(self.val_pairs):
            return
        ft = self.ft
        with step("held-out titles before training") as facts:
            val_ids, self.texts = pair_set_titles(self.val_pairs)
            base_vectors = encode_texts(model, self.texts, ft.batch_size)
            self.held_out = held_out_of(
                val_ids,
                base_vectors,
                pair_set_values(self.val_pairs),
                ft.validation_candidates,
                ft.validation_k,
            )
            self.before = self.held_out.measures(base_vectors)[NDCG]
            facts.update(titles=int(val_ids.size), ndcg=self.before)

    def measure_trained(self, model: Any) -> None:
        """The NDCG after training (``fit_encoder``'s ``on_trained``)."""
        if self.measured:
            vectors = encode_texts(model, self.texts, self.ft.batch_size)
            self.after = self.held_out.measures(vectors)[NDCG]


def log_run_params(
    ft: FinetuneConfig,
    versions: dict[str, int | None],
    train_pairs: PairSet,
    val_pairs: PairSet,
    available: int,
    fingerprint: str,
) -> None:
    """The MLflow params of a new run: the fine-tune config, the inputs and pair counts."""
    import mlflow

    mlflow.log_params(dotted_params("finetune", ft.model_dump()))
    mlflow.log_params(
        {
            **{f"data.{name}.version": v for name, v in versions.items()},
            "data.train_pairs": len(train_pairs),
            "data.train_positives": train_pairs.positives(),
            "data.train_available": available,
            "data.val_pairs": len(val_pairs),
            "data.val_titles": len(set(val_pairs.texts_a) | set(val_pairs.texts_b)),
            "loss": RECIPES[ft.recipe].loss,
            "fingerprint": fingerprint,
        }
    )


def summary_metrics(result: TrainResult, held_out: HeldOutNdcg, wall_s: float) -> dict[str, float]:
    """The run's summary metrics: steps, time, throughput, validation measures."""
    summary = {
        "train_steps": result.global_step,
        "train_s": result.train_s,
        "train_pairs_per_s": result.pairs_per_s,
        "wall_s": wall_s,
    }
    if held_out.measured:
        summary.update(val_ndcg_before=held_out.before, val_ndcg_after=held_out.after)
    if result.spearman_before is not None:
        summary["val_spearman_before"] = result.spearman_before
    if result.spearman_after is not None:
        summary["val_spearman_after"] = result.spearman_after
        summary["val_spearman_gain"] = result.spearman_after - (result.spearman_before or 0)
    return summary


def run(spark: SparkSession, config: AppConfig, run: StageRun) -> None:
    """Train, log and register unless this fingerprint is registered already; resume a crash.

    ``run.fingerprint`` (of the settings and the inputs' contents) identifies the training:
    its MLflow run and registered version are tagged with it. The encoder is fitted by
    :func:`~anime_recs.training.encoder.fit_encoder`; this stage reads its pairs, tracks it in
    MLflow and registers it."""
    ft, lake = config.finetune, config.paths.lake
    if not is_hub_id(ft.base_model):
        # packaged, local folder or MLflow URI: nothing may reach the Hugging Face hub
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    job_start = time.perf_counter()
    versions, fingerprint = dict(run.versions), run.fingerprint
    neighbours = neighbourhood_embedder(config)
    vectors = None
    if neighbours is not None:
        vectors, _ = embedder_vectors(
            spark, lake, neighbours, "finetune.content_neighbours_embedder"
        )
    import mlflow

    experiment_id = configure_mlflow(config.mlflow)
    client = mlflow.MlflowClient()
    if registered_already(client, experiment_id, ft.registered_model, fingerprint, run.forced):
        return

    train_pairs, val_pairs, counts = read_pairs(spark, config, versions, vectors)
    checkpoint_dir = Path(config.paths.checkpoints) / "finetune" / fingerprint
    state = read_checkpoint_state(checkpoint_dir)
    previous_run = state.meta.get("mlflow_run_id") if state else None
    resume_run = previous_run if run_is_resumable(client, previous_run, experiment_id) else None

    device = pick_device()
    held_out = HeldOutNdcg(val_pairs, ft)
    tags = {FINGERPRINT_TAG: fingerprint, STAGE_TAG: "finetune"}
    with mlflow.start_run(
        run_id=resume_run,
        run_name=None if resume_run else f"finetune-{fingerprint}",
        tags=None if resume_run else tags,
    ) as active:
        if resume_run:
            log.info(
                "continuing MLflow run %s from the checkpoint at step %s",
                active.info.run_id,
                state.global_step,
            )
            mlflow.set_tag("resumed_from_step", str(state.global_step))
        else:
            available = counts["train_available"]
            log_run_params(ft, versions, train_pairs, val_pairs, available, fingerprint)
        mlflow.set_tag("device", device)

        fitted = fit_encoder(
            ft,
            train_pairs,
            val_pairs,
            checkpoint_dir,
            device=device,
            on_loaded=held_out.measure_untrained,
            on_trained=held_out.measure_trained,
            on_metrics=lambda metrics, at: mlflow.log_metrics(metrics, step=at),
            meta={"mlflow_run_id": active.info.run_id, "fingerprint": fingerprint},
        )
        result = fitted.result
        mlflow.log_metrics(summary_metrics(result, held_out, time.perf_counter() - job_start))
        for epoch, value in result.epoch_spearman:
            mlflow.log_metric("val_spearman_epoch", value, step=epoch)

        # registering opens MLflow's registry store; on a fresh SQLite file its migrations
        # replace the root log handlers (alembic fileConfig): keep ours
        with step("log and register model") as facts, keep_logging():
            registered = log_and_register(fitted.model, ft.registered_model, fingerprint, client)
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
