"""Run the registered stages in order with one config and session, resuming after a failure.

Every stage's run is recorded in the Delta table ``pipeline_runs`` with a fingerprint of the
config sections it reads and the versions of its inputs (:mod:`anime_recs.stages`); a rerun
skips a stage whose fingerprint did not change and whose outputs exist (``force`` runs it
anyway), so after a failure the pipeline resumes from the failed stage. A failed run is recorded
with the step it failed in and the one-line reason (in ``outputs``).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from anime_recs import faults, runlog, tables
from anime_recs.config import AppConfig
from anime_recs.errors import JobError
from anime_recs.lakehouse import read_table, table_exists, table_version
from anime_recs.paths import is_uri
from anime_recs.stages import Stage, plan

log = logging.getLogger(__name__)

SUMMARY_OMITS = ("users_total", "nps_user_mean")  # of the evaluation table, in the printout

# (out folder, scale name, seed) -> writes the raw files; the generator lives outside the package
Generate = Callable[[str, str, int], None]


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


def config_parts(config: AppConfig, sections: tuple[str, ...]) -> dict[str, Any]:
    """``{dotted section: its values}`` for the fingerprint."""
    full = config.to_dict()
    out = {}
    for dotted in sections:
        node = full
        for part in dotted.split("."):
            node = node[part]
        out[dotted] = node
    return out


def stage_inputs(spark: SparkSession, config: AppConfig, stage: Stage) -> dict[str, Any]:
    """The versions of everything the stage reads: Delta tables, then its extra inputs."""
    lake = config.paths.lake
    tables_read = (*stage.inputs, *stage.optional_inputs)  # an absent optional one: None
    inputs: dict[str, Any] = {t: table_version(spark, lake, t) for t in tables_read}
    if stage.extra_inputs is not None:
        inputs.update(stage.extra_inputs(spark, config))
    return inputs


def stage_fingerprint(config: AppConfig, stage: Stage, inputs: dict[str, Any]) -> str:
    return runlog.fingerprint(stage.name, config_parts(config, stage.config_sections), inputs)


def run_pipeline(
    spark: SparkSession,
    config: AppConfig,
    only: list[str] | None = None,
    skip: list[str] | None = None,
    force: bool = False,
) -> list[tuple[str, str, float]]:
    """Run the planned stages; return ``(stage, what happened, wall seconds)`` per stage."""
    lake, skip = config.paths.lake, skip or []
    run_id = runlog.new_run_id()
    timings: list[tuple[str, str, float]] = []
    for stage in plan(config):
        if stage.name in skip or (only and stage.name not in only):
            timings.append((stage.name, "skipped (asked)", 0.0))
            continue
        inputs = stage_inputs(spark, config, stage)
        fp = stage_fingerprint(config, stage, inputs)
        last = runlog.last_success(spark, lake, stage.name)
        outputs_exist = all(table_exists(spark, lake, t) for t in stage.outputs)
        if not force and last and last["fingerprint"] == fp and outputs_exist:
            log.info(
                "stage %s: unchanged since run %s (fingerprint %s), skipped",
                stage.name,
                last["run_id"],
                fp,
            )
            timings.append((stage.name, "unchanged", 0.0))
            continue

        log.info("stage %s: running (fingerprint %s)", stage.name, fp)
        started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        start = time.perf_counter()
        try:
            stage.run(spark, config)
        except BaseException as exc:
            wall = time.perf_counter() - start
            failure = faults.failure_record(exc)  # the failed step and the one-line reason
            record = (run_id, stage.name, fp, runlog.FAILED, inputs, failure, started, wall)
            try:
                runlog.record(spark, lake, *record)
            except Exception as record_error:  # noqa: BLE001 - e.g. the same full disk
                log.warning("could not record the failure: %s", faults.one_line(record_error))
            log.error(
                "stage %s failed in step %s: %s; rerun the pipeline to resume from it",
                stage.name,
                failure["failed_step"],
                failure["error"],
            )
            raise
        wall = time.perf_counter() - start
        written = (*stage.outputs, *stage.optional_outputs)
        outputs = {t: table_version(spark, lake, t) for t in written}
        record = (run_id, stage.name, fp, runlog.SUCCEEDED, inputs, outputs, started, wall)
        runlog.record(spark, lake, *record)
        timings.append((stage.name, "ran", wall))
        log.info("stage %s: done in %.1fs", stage.name, wall)
    return timings


def timings_table(timings: list[tuple[str, str, float]], total: float) -> str:
    lines = ["Stage wall times (s):"]
    lines += [f"  {name:<16} {status:<16} {wall:8.1f}" for name, status, wall in timings]
    lines.append(f"  {'total':<16} {'':<16} {total:8.1f}")
    return "\n".join(lines)


def evaluation_summary(spark: SparkSession, config: AppConfig) -> str | None:
    """The evaluation table as text and where the report is, or None before the first run."""
    lake = config.paths.lake
    if not table_exists(spark, lake, tables.EVALUATION):
        return None
    pdf = read_table(spark, lake, tables.EVALUATION).orderBy("recommender", "n").toPandas()
    shown = pdf[[c for c in pdf.columns if c not in SUMMARY_OMITS]]
    text = shown.to_string(index=False, float_format=lambda v: f"{v:.4f}")
    reports = Path(config.paths.reports).absolute()
    return f"Evaluation (table `{tables.EVALUATION}`):\n{text}\n\nReport and charts: {reports}"
