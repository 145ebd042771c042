"""The runner: every run of a stage, alone or in the pipeline, goes through :func:`run_stage`.

A stage's run is recorded in the Delta table ``pipeline_runs`` with its fingerprint
(:func:`prepare`: the config sections it reads and its inputs' identities, hashed by
``runlog.fingerprint``), the versions of the tables it wrote and its ``extra_outputs`` (the
fine-tune's registered model version). A stage is skipped only when its last successful run
has the same fingerprint and each of its outputs is still at the version the run log expects
(``runlog.expected_outputs``; an extra output: still what the run log recorded); ``force``
(or the stage's own ``forced`` setting) runs it anyway, and tells the stage so
(``StageRun.forced``). So after a failure the pipeline resumes from the failed stage, and a
stage run alone with other settings (``jobs/recommend.py --set recommend.k=5``), or an output
rewritten or restored by hand (or a registered version deleted), makes the next run of the
stage recompute it. A failed run is recorded with the step it failed in and the one-line
reason (in ``outputs``).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from anime_recs import faults, runlog, tables
from anime_recs.config import AppConfig
from anime_recs.errors import JobError
from anime_recs.evaluation.page import PAGE, verdict
from anime_recs.lakehouse import (
    missing_tables_message,
    read_table,
    table_digest,
    table_exists,
    table_version,
)
from anime_recs.paths import is_uri
from anime_recs.runlog import StageRun
from anime_recs.stages import STAGES, Stage, plan, read, writers, written
from anime_recs.steps import step

log = logging.getLogger(__name__)

# (out folder, scale name, seed) -> writes the raw files; the generator lives outside the package
Generate = Callable[[str, str, int], None]

Timing = tuple[str, str, float]  # (stage, what happened, wall seconds)


def check_stage_names(config: AppConfig, names: list[str]) -> None:
    known = [s.name for s in plan(config)]
    for name in names:
        if name not in known:
            raise JobError(f"unknown stage {name!r}; stages: {known}")


def ensure_raw_data(config: AppConfig, scale: str | None, seed: int, generate: Generate) -> None:
    """Generate the raw files with ``generate`` when ``paths.raw`` is a local folder without
    them and a scale is given; fail with one line when they are missing and none is."""
    raw = Path(config.paths.raw)
    if is_uri(config.paths.raw) or all((raw / f).is_file() for f in tables.RAW_FILES):
        return
    if not scale:
        raise JobError(f"raw files missing in {raw} (pass --generate SCALE to generate them)")
    log.info("raw files missing in %s: generating scale %s (seed %s)", raw, scale, seed)
    try:
        generate(str(raw), scale, seed)
    except ValueError as exc:
        raise JobError(f"generate failed: {exc}") from exc


def config_parts(config: AppConfig, stage: Stage) -> dict[str, Any]:
    """``{dotted section: its values}`` of the stage's config sections, without its
    ``ignored_settings``."""
    full = config.to_dict()
    out = {}
    for dotted in stage.config_sections:
        node = full
        for part in dotted.split("."):
            node = node[part]
        if isinstance(node, dict):
            prefix = dotted + "."
            ignored = {
                k.removeprefix(prefix) for k in stage.ignored_settings if k.startswith(prefix)
            }
            node = {k: v for k, v in node.items() if k not in ignored}
        out[dotted] = node
    return out


def prepare(
    spark: SparkSession, config: AppConfig, stage: Stage, run_id: str, forced: bool = False
) -> StageRun:
    """The stage's input versions and identities and its fingerprint (a one-line error when a
    table it needs does not exist); ``forced``: the run is forced (``StageRun.forced``)."""
    lake = config.paths.lake
    with step(f"fingerprint {stage.name}") as facts:
        missing = [t for t in stage.inputs if not table_exists(spark, lake, t)]
        if missing:
            raise FileNotFoundError(missing_tables_message(lake, missing))
        versions = {t: table_version(spark, lake, t) for t in read(stage)}  # absent: None
        identity: dict[str, Any] = dict(versions)
        if stage.by_content:
            identity = {
                t: None if v is None else table_digest(spark, lake, t, v)
                for t, v in versions.items()
            }
        if stage.extra_inputs is not None:
            identity.update(stage.extra_inputs(spark, config))
        fingerprint = runlog.fingerprint(stage.name, config_parts(config, stage), identity)
        facts["fingerprint"] = fingerprint
    return StageRun(run_id, fingerprint, versions, identity, forced)


def why_run(
    spark: SparkSession,
    config: AppConfig,
    stage: Stage,
    fingerprint: str,
    records: Sequence[dict],
    registry: Sequence[Stage] = STAGES,
) -> tuple[str | None, str | None]:
    """``(why the stage must run, None)``, or ``(None, run id)`` when its last successful run
    in ``records`` (the run log's successes, oldest first) has this fingerprint and left every
    output at the version it still has (or a later successful run of a ``registry`` stage
    writing the same table left it at), its ``extra_outputs`` included."""
    index = runlog.last_of(records, stage.name)
    if index is None:
        return "no successful run recorded", None
    last = records[index]
    if last["fingerprint"] != fingerprint:
        return f"changed since run {last['run_id']} (fingerprint {last['fingerprint']})", None
    expected = runlog.expected_outputs(records, index, writers(registry))
    for table in written(stage):
        now = table_version(spark, config.paths.lake, table)
        if table in expected and now != expected[table]:
            why = f"table {table} is at version {now}, not {expected[table]} as the run log left it"
            return why, None
    if stage.extra_outputs is not None:
        for name, now in stage.extra_outputs(spark, config, fingerprint).items():
            # a record without it (one written before the stage declared it) proves nothing
            if name not in expected:
                return f"run {last['run_id']} recorded no {name}", None
            if now != expected[name]:
                return f"{name} is {now}, not {expected[name]} as the run log left it", None
    return None, last["run_id"]


def run_stage(
    spark: SparkSession,
    config: AppConfig,
    stage: Stage,
    run_id: str,
    force: bool = False,
    registry: Sequence[Stage] = STAGES,
    records: list[dict] | None = None,
) -> tuple[str, float]:
    """Run the stage unless it is unchanged (:func:`why_run`); record the run. Returns what
    happened (``ran``/``unchanged``) and the wall seconds of the run. ``records``: the run
    log's successes as read earlier in this process (this run's success is added to them);
    None reads them."""
    lake = config.paths.lake
    forced = force or stage.forced(config)
    run = prepare(spark, config, stage, run_id, forced)
    fp = run.fingerprint
    if records is None:
        records = runlog.succeeded_runs(spark, lake)
    if forced:
        reason, last_id = "forced", None
    else:
        reason, last_id = why_run(spark, config, stage, fp, records, registry)
    if reason is None:
        log.info(
            "stage %s: unchanged since run %s (fingerprint %s), skipped", stage.name, last_id, fp
        )
        return "unchanged", 0.0

    log.info("stage %s: running (fingerprint %s): %s", stage.name, fp, reason)
    recorded_inputs = {**run.inputs, **run.versions}  # tables by version, extra inputs as hashed
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    start = time.perf_counter()
    try:
        stage.run(spark, config, run)
    except BaseException as exc:
        wall = time.perf_counter() - start
        failure = faults.failure_record(exc)  # the failed step and the one-line reason
        record = (run_id, stage.name, fp, runlog.FAILED, recorded_inputs, failure, started, wall)
        try:
            runlog.record(spark, lake, *record)
        except Exception as record_error:  # noqa: BLE001 - e.g. the same full disk
            log.warning("could not record the failure: %s", faults.one_line(record_error))
        log.error(
            "stage %s failed in step %s: %s; rerun to resume from it",
            stage.name,
            failure["failed_step"],
            failure["error"],
        )
        raise
    wall = time.perf_counter() - start
    outputs: dict[str, Any] = {t: table_version(spark, lake, t) for t in written(stage)}
    if stage.extra_outputs is not None:
        outputs.update(stage.extra_outputs(spark, config, fp))
    record = (run_id, stage.name, fp, runlog.SUCCEEDED, recorded_inputs, outputs, started, wall)
    records.append(runlog.record(spark, lake, *record))
    log.info("stage %s: done in %.1fs", stage.name, wall)
    return "ran", wall


def run_stages(
    spark: SparkSession,
    config: AppConfig,
    stages: Sequence[Stage],
    force: bool = False,
    registry: Sequence[Stage] = STAGES,
) -> list[Timing]:
    """Run ``stages`` (of ``registry``) in order under one run id (what ``jobs/<job>.py``
    does)."""
    run_id, records = runlog.new_run_id(), runlog.succeeded_runs(spark, config.paths.lake)
    return [
        (stage.name, *run_stage(spark, config, stage, run_id, force, registry, records))
        for stage in stages
    ]


def run_pipeline(
    spark: SparkSession,
    config: AppConfig,
    only: list[str] | None = None,
    skip: list[str] | None = None,
    force: bool = False,
) -> list[Timing]:
    """Run the planned stages; return ``(stage, what happened, wall seconds)`` per stage."""
    skip = skip or []
    run_id, records = runlog.new_run_id(), runlog.succeeded_runs(spark, config.paths.lake)
    timings: list[Timing] = []
    for stage in plan(config):
        if stage.name in skip or (only and stage.name not in only):
            timings.append((stage.name, "skipped (asked)", 0.0))
            continue
        timings.append(
            (stage.name, *run_stage(spark, config, stage, run_id, force, records=records))
        )
    return timings


def timings_table(timings: list[tuple[str, str, float]], total: float) -> str:
    lines = ["Stage wall times (s):"]
    lines += [f"  {name:<16} {status:<16} {wall:8.1f}" for name, status, wall in timings]
    lines.append(f"  {'total':<16} {'':<16} {total:8.1f}")
    return "\n".join(lines)


def report_summary(spark: SparkSession, config: AppConfig) -> str | None:
    """Two lines: where the report page is and its verdict (from the ``evaluation`` table), or
    None before the first recommend run."""
    lake = config.paths.lake
    if not table_exists(spark, lake, tables.EVALUATION):
        return None
    evaluation = read_table(spark, lake, tables.EVALUATION).toPandas()
    index = Path(config.paths.reports).absolute() / PAGE
    return f"Report: {index}\n{verdict(evaluation, config.recommend.hybrid.content)}"
