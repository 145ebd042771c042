"""The run log: which stage ran on which inputs (Delta table ``pipeline_runs``).

Every run of a stage, alone (``jobs/<stage>.py``) or in the pipeline, goes through the runner
(:mod:`anime_recs.pipeline`) and is appended here with its *fingerprint*: :func:`fingerprint`
of the stage name, the config sections it reads and the identities of its inputs (Delta table
versions, or content digests where the stage declares so; raw file sizes and modification
times; registered model versions). A stage is skipped only when its last successful run has
the same fingerprint and its output tables are still at the versions the run log recorded
(:func:`expected_outputs`), and its outputs outside the lake (the fine-tune's registered
model version) still what it recorded; any change upstream, in its settings or to its
outputs by hand makes it run again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
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
    """``hashing.stable_hash`` of the stage name, its config sections and its inputs'
    identities: the one fingerprint of every stage run (the fine-tune's MLflow runs and
    registered versions and the served rows' ``run_id`` carry it too)."""
    return stable_hash({"stage": stage, "config": config_parts, "inputs": inputs})


@dataclass(frozen=True)
class StageRun:
    """What the runner hands a stage's run function: this run's id, the stage's fingerprint,
    the Delta versions of the tables it reads (read them at these versions: the fingerprint
    is of them), the input identities the fingerprint hashed and whether the run is forced
    (the runner's ``force``, e.g. ``--force``, or the stage's own ``forced`` setting): a stage
    with a skip rule of its own (the fine-tune's "registered already") must not apply it
    then."""

    run_id: str
    fingerprint: str
    versions: Mapping[str, int | None]
    inputs: Mapping[str, Any]
    forced: bool = False


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


def succeeded_runs(spark: SparkSession, lake: str) -> list[dict]:
    """Every successful run record, oldest first (the log is small: a row per stage run)."""
    if not table_exists(spark, lake, PIPELINE_RUNS):
        return []
    rows = (
        read_table(spark, lake, PIPELINE_RUNS)
        .where(F.col("status") == SUCCEEDED)
        .orderBy("finished_at")
        .collect()
    )
    return [r.asDict() for r in rows]


def last_of(records: Sequence[Mapping[str, Any]], stage: str) -> int | None:
    """The index of ``stage``'s newest record in ``records`` (oldest first), or None."""
    for index in range(len(records) - 1, -1, -1):
        if records[index]["stage"] == stage:
            return index
    return None


def expected_outputs(
    records: Sequence[Mapping[str, Any]], index: int, writers: Mapping[str, Iterable[str]]
) -> dict[str, Any]:
    """``{table: version}`` each output of the successful run ``records[index]`` should be at
    now: the version recorded by the newest successful run from it on of a stage that writes
    the table (``writers``: table -> stage names). Another stage of the registry writing the
    same table afterwards (``embed_finetuned`` after ``embed_base``) moves it on the record; a
    write by anything else (a hand-made overwrite, ``RESTORE``) does not."""
    expected = json.loads(records[index]["outputs"] or "{}")
    for later in records[index + 1 :]:
        for table, version in json.loads(later["outputs"] or "{}").items():
            if table in expected and later["stage"] in writers.get(table, ()):
                expected[table] = version
    return expected


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
) -> dict[str, Any]:
    """Append one run record (the log is append-only by design: it is history); return it as
    :func:`succeeded_runs` would read it back."""
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
    return dict(zip(PIPELINE_RUNS_SCHEMA.fieldNames(), row, strict=True))


def new_run_id() -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{os.getpid()}"
