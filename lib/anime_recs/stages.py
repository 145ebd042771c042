"""The stage registry: every stage of the pipeline declared once, in run order.

A :class:`Stage` names the Delta tables it reads and writes, the config sections it reads and
its run function ``run(spark, config)``. The pipeline runner (:mod:`anime_recs.pipeline`) runs
them in this order, fingerprints each one from its config sections and input versions for the
run log (:mod:`anime_recs.runlog`), and skips a stage whose fingerprint did not change and
whose outputs exist. Nothing else lists stages, tables per stage or config per stage: the
docs and ``jobs/pipeline.py --help`` read this module too (:func:`catalogue`).

Adding a stage = one :class:`Stage` entry in :data:`STAGES` (at its place in the order) and one
run function next to the code it orchestrates (e.g. ``lib/anime_recs/<package>/stage.py``),
plus, when it should also run alone, a ``jobs/<name>.py`` of a few lines that calls it. Inputs
that are not whole Delta tables (raw files, registered model versions, one embedder's rows of
``anime_embeddings``) go in ``extra_inputs``; tables a stage writes or reads only in some runs
(``watch_status``: only when ``animelist.csv`` is there) in ``optional_outputs`` /
``optional_inputs`` (their version, None when absent, is part of the fingerprint); a stage that
has nothing to do for some configs says so in ``enabled``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pyspark.sql import SparkSession

from anime_recs import tables
from anime_recs.config import AppConfig
from anime_recs.data import stage as ingest_stage
from anime_recs.embeddings import stage as embed_stage
from anime_recs.recommend import stage as recommend_stage
from anime_recs.serve import stage as serve_stage
from anime_recs.similarity import stage as jaccard_stage
from anime_recs.training import stage as finetune_stage


def _always(config: AppConfig) -> bool:
    return True


@dataclass(frozen=True)
class Stage:
    name: str
    inputs: tuple[str, ...]  # Delta tables read
    outputs: tuple[str, ...]  # Delta tables written
    config_sections: tuple[str, ...]  # dotted config keys whose values it depends on
    run: Callable[[SparkSession, AppConfig], None]
    # inputs that are not whole Delta tables (raw files, model versions, some rows of a
    # table), as {name: version or content digest} for the fingerprint
    extra_inputs: Callable[[SparkSession, AppConfig], Mapping[str, Any]] | None = None
    enabled: Callable[[AppConfig], bool] = _always  # False: nothing to do for this config
    optional_inputs: tuple[str, ...] = ()  # Delta tables read when they exist
    optional_outputs: tuple[str, ...] = ()  # Delta tables written in some runs only


STAGES: tuple[Stage, ...] = (
    Stage(
        name="ingest",
        inputs=(),
        outputs=(tables.ANIME, tables.RATINGS, tables.REJECTED_ROWS),
        config_sections=("ingest", "paths.raw"),
        run=ingest_stage.run,
        extra_inputs=lambda spark, config: ingest_stage.raw_file_versions(config),
        optional_outputs=(tables.WATCH_STATUS,),  # when animelist.csv is present
    ),
    Stage(
        name="jaccard",
        inputs=(tables.RATINGS, tables.ANIME),
        outputs=(tables.ANIME_PAIR_JACCARD, tables.TRAINING_PAIRS, tables.COPROMOTED_PAIRS),
        config_sections=("jaccard",),
        run=jaccard_stage.run,
    ),
    Stage(
        name="embed_base",
        inputs=(tables.ANIME,),
        outputs=(tables.ANIME_EMBEDDINGS,),
        config_sections=("embed",),
        run=embed_stage.run_base,
        enabled=lambda config: bool(embed_stage.base_embedders(config)),
    ),
    Stage(
        name="finetune",
        inputs=finetune_stage.INPUTS,
        outputs=(),  # an MLflow run and a registered model version
        config_sections=("finetune", "mlflow"),
        run=finetune_stage.run,
        extra_inputs=finetune_stage.neighbourhood_input,  # the base encoder's vectors
    ),
    Stage(
        name="embed_finetuned",
        inputs=(tables.ANIME,),
        outputs=(tables.ANIME_EMBEDDINGS,),
        config_sections=("embed",),
        run=embed_stage.run_finetuned,
        extra_inputs=lambda spark, config: {
            "models": embed_stage.registered_model_versions(config)
        },
        enabled=lambda config: bool(embed_stage.finetuned_embedders(config)),
    ),
    Stage(
        name="recommend",
        inputs=(tables.RATINGS, tables.ANIME_EMBEDDINGS, tables.ANIME_PAIR_JACCARD),
        outputs=(
            tables.ANIME_NEIGHBORS,
            tables.USER_SCORES,
            tables.RECOMMENDATIONS,
            tables.EVALUATION,
            tables.COLD_START_EVALUATION,
        ),
        config_sections=("recommend", "mlflow"),
        run=recommend_stage.run,
    ),
    Stage(
        name="serve",
        inputs=serve_stage.INPUTS,
        outputs=(tables.USER_RECOMMENDATIONS,),
        config_sections=serve_stage.CONFIG_SECTIONS,
        run=serve_stage.run,
        optional_inputs=serve_stage.OPTIONAL_INPUTS,
    ),
)


def plan(config: AppConfig) -> list[Stage]:
    """The stages this config runs, in order."""
    return [stage for stage in STAGES if stage.enabled(config)]


def by_name(name: str) -> Stage:
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise KeyError(name)


def catalogue() -> str:
    """One line per stage: name, inputs -> outputs ([optional]), config sections, run
    function."""
    lines = []
    for s in STAGES:
        inputs = ", ".join([*s.inputs, *(f"[{t}]" for t in s.optional_inputs)]) or "raw files"
        outputs = ", ".join([*s.outputs, *(f"[{t}]" for t in s.optional_outputs)])
        outputs = outputs or "MLflow model"
        where = f"{s.run.__module__}.{s.run.__name__}"
        lines.append(f"{s.name}: {inputs} -> {outputs} [{', '.join(s.config_sections)}] {where}")
    return "\n".join(lines)
