"""The stage registry: every stage of the pipeline declared once, in run order.

A :class:`Stage` names the Delta tables it reads and writes, the config sections it reads, the
job that runs it alone (``jobs/<job>.py``) and its run function
``run(spark, config, run: StageRun)``. Every entry point runs stages through the runner
(:mod:`anime_recs.pipeline`): ``jobs/pipeline.py`` all of them in this order, ``jobs/<job>.py``
the stages of that job (``cli.run_job``). The runner fingerprints each run from its config
sections and inputs, records it in the run log (:mod:`anime_recs.runlog`) and skips a stage
whose fingerprint did not change and whose outputs are still at the versions recorded.
Nothing else lists stages, tables per stage or config per stage: ``tables.WRITTEN_BY``, the
README's stage table (:func:`catalogue`, also ``jobs/pipeline.py --list``) and the jobs'
docstrings are checked against this module by ``tests/test_stages.py``.

Adding a stage = one :class:`Stage` entry in :data:`STAGES` (at its place in the order), one
run function next to the code it orchestrates (``lib/anime_recs/<package>/stage.py``) and a
``jobs/<job>.py`` of a few lines calling ``cli.run_job``. A stage's inputs are identified in
its fingerprint by their Delta versions, or by their contents (``by_content``: a rewrite with
the same rows keeps the fingerprint, for a stage whose result must not change identity then:
a registered model version, the served ``run_id``). Inputs that are not whole Delta tables
(raw files, registered model versions, one embedder's rows of ``anime_embeddings``) go in
``extra_inputs``; tables a stage writes or reads only in some runs (``watch_status``: only when
``animelist.csv`` is there; ``embedding_cache``: only for OpenAI embedders) in
``optional_outputs`` / ``optional_inputs`` (their version, None when absent, is recorded and
checked like the others); a stage that has nothing to do for some configs says so in
``enabled``. Outputs that are not Delta tables (the fine-tune's registered model version) go
in ``extra_outputs``: a function of the run's fingerprint giving each one's identity now
(``{"registered_model": "models:/NAME/VERSION"}``, None when it is gone). The runner records
them in the run log with the tables' versions and runs the stage again when one is no longer
what was recorded (a version deleted, a registry lost or reset), as when an output table was
rewritten by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import SparkSession

from anime_recs import tables
from anime_recs.config import AppConfig
from anime_recs.data import stage as ingest_stage
from anime_recs.embeddings import stage as embed_stage
from anime_recs.recommend import registry as recommender_registry
from anime_recs.recommend import stage as recommend_stage
from anime_recs.runlog import StageRun
from anime_recs.serve import stage as serve_stage
from anime_recs.similarity import stage as jaccard_stage
from anime_recs.training import stage as finetune_stage


def _always(config: AppConfig) -> bool:
    return True


def _never(config: AppConfig) -> bool:
    return False


@dataclass(frozen=True)
class Option:
    """A job flag that sets a config key (``--export PATH`` = ``--set serve.export=PATH``)."""

    flag: str
    key: str
    help: str
    metavar: str = "VALUE"


@dataclass(frozen=True)
class Stage:
    name: str
    job: str  # jobs/<job>.py runs it alone; also the rerun a damage diagnosis proposes
    inputs: tuple[str, ...]  # Delta tables read (must exist)
    outputs: tuple[str, ...]  # Delta tables written
    config_sections: tuple[str, ...]  # dotted config keys whose values it depends on
    run: Callable[[SparkSession, AppConfig, StageRun], None]
    optional_inputs: tuple[str, ...] = ()  # Delta tables read when they exist
    optional_outputs: tuple[str, ...] = ()  # Delta tables written in some runs only
    by_content: bool = False  # fingerprint the tables' content digests, not their versions
    # inputs that are not whole Delta tables, as {name: version or content digest}
    extra_inputs: Callable[[SparkSession, AppConfig], Mapping[str, Any]] | None = None
    extra_reads: str = ""  # what extra_inputs are, in words (the stage table)
    # outputs that are not Delta tables, as {name: identity now (None: gone)} for the run's
    # fingerprint: recorded after a run, checked before a skip like the tables' versions
    extra_outputs: Callable[[SparkSession, AppConfig, str], Mapping[str, Any]] | None = None
    extra_writes: str = ""  # what it writes besides Delta tables, in words (the stage table)
    ignored_settings: tuple[str, ...] = ()  # dotted keys in config_sections that change no result
    forced: Callable[[AppConfig], bool] = _never  # True: run even when unchanged
    enabled: Callable[[AppConfig], bool] = _always  # False: nothing to do for this config
    precheck: Callable[[AppConfig], None] | None = None  # fail fast, before the JVM starts
    options: tuple[Option, ...] = ()  # flags of jobs/<job>.py


STAGES: tuple[Stage, ...] = (
    Stage(
        name="ingest",
        job="ingest",
        inputs=(),
        outputs=(tables.ANIME, tables.RATINGS, tables.REJECTED_ROWS),
        optional_outputs=(tables.WATCH_STATUS,),  # when animelist.csv is present
        config_sections=("ingest", "paths.raw"),
        run=ingest_stage.run,
        extra_inputs=lambda spark, config: ingest_stage.raw_file_versions(config),
        extra_reads="raw files (`paths.raw`)",
        precheck=ingest_stage.check_local_inputs,
    ),
    Stage(
        name="jaccard",
        job="jaccard",
        inputs=(tables.RATINGS, tables.ANIME),
        outputs=(
            tables.PROMOTERS,
            tables.ANIME_PAIR_JACCARD,
            tables.TRAINING_PAIRS,
            tables.COPROMOTED_PAIRS,
        ),
        config_sections=("jaccard",),
        run=jaccard_stage.run,
    ),
    Stage(
        name="embed_base",
        job="embed",
        inputs=(tables.ANIME,),
        outputs=(tables.ANIME_EMBEDDINGS,),
        optional_outputs=(tables.EMBEDDING_CACHE,),  # OpenAI embedders only
        config_sections=("embed",),
        run=embed_stage.run_base,
        enabled=lambda config: bool(embed_stage.base_embedders(config)),
    ),
    Stage(
        name="finetune",
        job="finetune",
        inputs=(tables.TRAINING_PAIRS, tables.COPROMOTED_PAIRS, tables.ANIME),
        outputs=(),
        config_sections=("finetune", "mlflow"),
        run=finetune_stage.run,
        # a forced upstream rerun rewrites the same pairs: no new model version for them
        by_content=True,
        # only the rows of anime_embeddings it reads (the base encoder's), which
        # embed_finetuned rewrites other rows of right after
        extra_inputs=finetune_stage.vectors_inputs,
        extra_reads="the base encoder's rows of `anime_embeddings` (neighbourhoods)",
        # the registered version: lost with the registry, or deleted, it is trained again
        extra_outputs=finetune_stage.registered_outputs,
        extra_writes="MLflow run + registered model",
        ignored_settings=finetune_stage.IGNORED_SETTINGS,
        forced=lambda config: config.finetune.force,
    ),
    Stage(
        name="embed_finetuned",
        job="embed",
        inputs=(tables.ANIME,),
        outputs=(tables.ANIME_EMBEDDINGS,),
        optional_outputs=(tables.EMBEDDING_CACHE,),
        config_sections=("embed",),
        run=embed_stage.run_finetuned,
        extra_inputs=lambda spark, config: {
            "models": embed_stage.registered_model_versions(config)
        },
        extra_reads="the registered model",
        enabled=lambda config: bool(embed_stage.finetuned_embedders(config)),
    ),
    Stage(
        name="recommend",
        job="recommend",
        inputs=(tables.RATINGS, tables.ANIME_PAIR_JACCARD),
        # anime_embeddings: without it, no embedding recommenders; anime: the report page's
        # title names (without it, ids)
        optional_inputs=(tables.ANIME_EMBEDDINGS, tables.ANIME),
        outputs=(
            tables.ANIME_NEIGHBORS,
            tables.USER_SCORES,
            tables.RECOMMENDATIONS,
            tables.EVALUATION,
        ),
        config_sections=("recommend", "mlflow"),
        run=recommend_stage.run,
        extra_writes="report page `index.html` and charts (`paths.reports`), MLflow run",
    ),
    Stage(
        name="serve",
        job="serve",
        inputs=(tables.RATINGS, tables.ANIME, tables.ANIME_NEIGHBORS),
        # watch_status: excluded titles too, when ingest wrote it; anime_embeddings: the
        # model (version) of an embedding recommender, which the rows name
        optional_inputs=(tables.WATCH_STATUS, tables.ANIME_EMBEDDINGS),
        outputs=(tables.USER_RECOMMENDATIONS,),
        # besides serve: the settings the lists are built with, each recommender's settings
        # (the registry's sections: any one may be served)
        config_sections=(
            "serve",
            "recommend.k",
            "recommend.frequency_bonus",
            *recommender_registry.sections(),
        ),
        run=serve_stage.run,
        # the fingerprint is the served rows' run_id: the same rows keep it
        by_content=True,
        extra_writes="export (`serve.export`)",
        options=(Option("--export", "serve.export", "also export to PATH", "PATH"),),
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


def of_job(job: str) -> list[Stage]:
    """The stages ``jobs/<job>.py`` runs, in order (none: not a stage job)."""
    return [stage for stage in STAGES if stage.job == job]


def written(stage: Stage) -> tuple[str, ...]:
    """Every Delta table the stage may write."""
    return (*stage.outputs, *stage.optional_outputs)


def read(stage: Stage) -> tuple[str, ...]:
    """Every Delta table the stage may read."""
    return (*stage.inputs, *stage.optional_inputs)


def writers(registry: Sequence[Stage] = STAGES) -> dict[str, set[str]]:
    """``{table: names of the stages of ``registry`` that write it}``."""
    out: dict[str, set[str]] = {}
    for stage in registry:
        for table in written(stage):
            out.setdefault(table, set()).add(stage.name)
    return out


def written_by() -> dict[str, str]:
    """``{table: the job that writes it}``: what ``tables.WRITTEN_BY`` must say."""
    return {table: stage.job for stage in STAGES for table in written(stage)}


def catalogue() -> str:
    """The stage table of the README, as Markdown: one row per stage (optional tables in
    brackets), with the job that runs it alone and its run function."""

    def names(required: tuple[str, ...], optional: tuple[str, ...], extra: str) -> str:
        cells = [f"`{t}`" for t in required] + [f"[`{t}`]" for t in optional]
        return ", ".join(cells + ([extra] if extra else [])) or "-"

    lines = [
        "| stage | reads | writes | config | job | run function |",
        "|---|---|---|---|---|---|",
    ]
    for s in STAGES:
        reads = names(s.inputs, s.optional_inputs, s.extra_reads)
        writes = names(s.outputs, s.optional_outputs, s.extra_writes)
        config = ", ".join(f"`{c}`" for c in s.config_sections)
        where = f"`{s.run.__module__}.{s.run.__name__}`"
        lines.append(
            f"| `{s.name}` | {reads} | {writes} | {config} | `jobs/{s.job}.py` | {where} |"
        )
    return "\n".join(lines)
