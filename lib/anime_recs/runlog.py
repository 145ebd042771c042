"""The pipeline run log: which stage ran on which inputs (Delta table ``pipeline_runs``).

A stage's *fingerprint* is a hash of its name, the config sections it reads and the versions of
its inputs (Delta table versions, raw file sizes and modification times, registered model
versions). A rerun skips a stage whose last successful run has the same fingerprint and whose
output tables exist; any change upstream (a new Delta version of an input) or in its config
changes the fingerprint, so the stage and everything after it run again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from anime_recs.hashing import stable_hash
from anime_recs.lakehouse import read_table, table_exists, write_table
from anime_recs.paths import is_uri
from anime_recs.tables import PIPELINE_RUNS, PIPELINE_RUNS_SCHEMA

log = logging.getLogger(__name__)

SUCCEEDED = "succeeded"
FAILED = "failed"


def fingerprint(stage: str, config_parts: Mapping[str, Any], inputs: Mapping[str, Any]) -> str:
    """``hashing.stable_hash`` of the stage name, its config sections and its input versions."""
    return stable_hash({"stage": stage, "config": config_parts, "inputs": inputs})


def file_versions(folder: str, names: list[str]) -> dict[str, str]:
    """Size and mtime of raw input files: cheap change detection without reading them."""
    out = {}
    for name in names:
        path = Path(folder) / name
        if is_uri(folder):
            out[name] = folder.rstrip("/") + "/" + name  # object stores: by path only
        elif path.is_file():
            stat = path.stat()
            out[name] = f"{stat.st_size}:{stat.st_mtime_ns}"
        else:
            out[name] = "missing"
    return out


def last_success(spark: SparkSession, lake: str, stage: str) -> dict | None:
    """The newest successful run record of ``stage``, or None."""
    if not table_exists(spark, lake, PIPELINE_RUNS):
        return None
    rows = (
        read_table(spark, lake, PIPELINE_RUNS)
        .where((F.col("stage") == stage) & (F.col("status") == SUCCEEDED))
        .orderBy(F.col("finished_at").desc())
        .limit(1)
        .collect()
    )
    return rows[0].asDict() if rows else None


def record(
    spark: SparkSession,
    lake: str,
    run_id: str,
    stage: str,
    stage_fingerprint: str,
    status: str,
    inputs: Mapping[str, Any],
    outputs: Mapping[str, Any],
    started_at: dt.datetime,
    wall_s: float,
) -> None:
    """Append one run record (the log is append-only by design: it is history)."""
    row = (
        run_id,
        stage,
        stage_fingerprint,
        status,
        json.dumps(dict(inputs), sort_keys=True, default=str),
        json.dumps(dict(outputs), sort_keys=True, default=str),
        started_at,
        dt.datetime.now(dt.UTC).replace(tzinfo=None),
        float(wall_s),
    )
    df = spark.createDataFrame([row], PIPELINE_RUNS_SCHEMA)
    write_table(df, lake, PIPELINE_RUNS, PIPELINE_RUNS_SCHEMA, mode="append")


def new_run_id() -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{os.getpid()}"
