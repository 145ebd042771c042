"""Check the tables of a lake, and restore one to an earlier version.

For each table (:func:`check_table`):

- its Delta log replays: every JSON commit parses and matches its Hadoop checksum
  (``faults.damaged_commits``), Delta reads the history and the current snapshot;
- every data file of the current version exists (``quick``: a stat of each) and reads whole
  (full: one pass over every column, so Hadoop verifies each file's checksums and Parquet
  decodes every page);
- its columns equal the contract (``tables.SCHEMAS``);
- (full) its key is unique, where it has one (``tables.TABLE_KEYS``).

For the lake (:func:`check_run_log`): the table versions recorded by the latest successful run
of each stage in ``pipeline_runs`` exist (older records are history: Delta may have cleaned up
their versions' commits after the log retention period).

:func:`restore` runs Delta's ``RESTORE`` and records it in ``pipeline_runs``. When commits
newer than the target are damaged (Delta cannot load the table then, so ``RESTORE`` cannot run),
each is first replaced by an empty commit (the damaged file, its version checksum and any later
checkpoint are kept under ``<table>/_damaged_log/``): versions stay monotonic, so a stage that
recorded the damaged version as its input sees a new version and runs again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from anime_recs import faults, runlog
from anime_recs.lakehouse import table_exists, table_path
from anime_recs.tables import PIPELINE_RUNS, SCHEMAS, TABLE_KEYS

log = logging.getLogger(__name__)

RESTORE_STAGE = "restore"
DAMAGED_FOLDER = "_damaged_log"


class RestoreError(RuntimeError):
    """The restore cannot be done; the message is one line that says why."""


@dataclass
class TableCheck:
    """The outcome for one table: its version, some facts and the findings (none: ok)."""

    table: str
    version: int | None = None
    facts: dict[str, object] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def line(self) -> str:
        """``ok <table> version N: k=v ...`` or ``FAIL <table>: finding; finding``."""
        at = f" version {self.version}" if self.version is not None else ""
        if self.ok:
            facts = " ".join(f"{k}={v}" for k, v in self.facts.items())
            return f"ok   {self.table}{at}: {facts}".rstrip(": ")
        return f"FAIL {self.table}{at}: {'; '.join(self.findings)}"


def lake_tables(lake: str) -> list[str]:
    """The Delta tables of a local lake: its folders holding a ``_delta_log``, sorted."""
    root = Path(lake)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / faults.DELTA_LOG).is_dir())


def check_table(spark: SparkSession, lake: str, name: str, quick: bool = False) -> TableCheck:
    """Check one table (see the module docstring); never raises for a damaged table."""
    result = TableCheck(name)
    path = table_path(lake, name)
    table_dir = None if "://" in lake else Path(path)
    if not table_exists(spark, lake, name):
        result.findings.append(f"missing: no Delta table at {path}")
        return result
    if table_dir is not None:
        for version, problem in faults.damaged_commits(table_dir):
            commit = str(faults.commit_path(table_dir, version))
            result.findings.append(faults.diagnose_commit(table_dir, commit, version, problem))
        if result.findings:
            result.version = faults.commit_versions(table_dir)[-1]
            return result
    try:
        table = DeltaTable.forPath(spark, path)
        result.version = int(table.history().agg(F.max("version")).first()[0])
        df = spark.read.format("delta").load(path)
        files = df.inputFiles()
    except Exception as exc:  # noqa: BLE001 - every failure is a finding of this table
        result.findings.append(faults.one_line(exc))
        return result
    result.facts["files"] = len(files)

    difference = faults.contract_fault(name, path, df.schema)
    if difference:
        result.findings.append(difference)

    missing = [f for f in files if not _exists(spark, f)]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        result.findings.append(faults.diagnose_data_file(missing[0], f"is missing{more}"))
        return result
    if quick:
        return result

    try:
        # a sum of every row's hash: every column of every row is decoded (a plain count
        # would read no column at all)
        row_hash = F.xxhash64(*[F.col(c) for c in df.columns]).cast("decimal(38,0)")
        rows, _ = df.select(row_hash.alias("h")).agg(F.count("*"), F.sum("h")).first()
        result.facts["rows"] = rows
        keys = TABLE_KEYS.get(name)
        if keys and not difference:
            duplicates = df.groupBy(*keys).count().where(F.col("count") > 1)
            found = duplicates.limit(3).collect()
            if found:
                examples = ", ".join(str(tuple(r[k] for k in keys)) for r in found)
                result.findings.append(
                    f"key ({', '.join(keys)}) is not unique: {duplicates.count()} duplicated "
                    f"key(s), e.g. {examples}"
                )
            else:
                result.facts["key"] = "unique"
    except Exception as exc:  # noqa: BLE001 - a read failure is a finding of this table
        result.findings.append(faults.one_line(exc))
    return result


def _exists(spark: SparkSession, uri: str) -> bool:
    """A stat of one file, through Hadoop (any file system Spark reads)."""
    if uri.startswith("file:"):
        return os.path.isfile(faults.local_path(uri))
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(uri)
    fs = hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return bool(fs.exists(hadoop_path))


def check_run_log(spark: SparkSession, lake: str) -> list[str]:
    """Findings about ``pipeline_runs``: versions its latest successful runs recorded that do
    not exist (a table missing, or behind the recorded version)."""
    if not table_exists(spark, lake, PIPELINE_RUNS):
        return []
    records = (
        spark.read.format("delta")
        .load(table_path(lake, PIPELINE_RUNS))
        .where(F.col("status") == runlog.SUCCEEDED)
        .orderBy("finished_at")
        .collect()
    )
    latest = {r["stage"]: r for r in records}  # the newest success per stage
    findings = []
    versions: dict[str, set[int] | None] = {}
    for stage, record in sorted(latest.items()):
        recorded = {}
        for column in ("inputs", "outputs"):
            values = json.loads(record[column] or "{}")
            recorded.update(
                {t: v for t, v in values.items() if t in SCHEMAS and isinstance(v, int)}
            )
        for name, version in sorted(recorded.items()):
            if name not in versions:
                versions[name] = _versions(spark, lake, name)
            have = versions[name]
            if have is None:
                findings.append(
                    f"run {record['run_id']} ({stage}) recorded {name} version {version}, "
                    "but the table is missing"
                )
            elif version not in have:
                findings.append(
                    f"run {record['run_id']} ({stage}) recorded {name} version {version}, "
                    f"which does not exist (latest {max(have) if have else None})"
                )
    return findings


def _versions(spark: SparkSession, lake: str, name: str) -> set[int] | None:
    if not table_exists(spark, lake, name):
        return None
    try:
        history = DeltaTable.forPath(spark, table_path(lake, name)).history()
        return {int(r[0]) for r in history.select("version").collect()}
    except Exception:  # noqa: BLE001 - the table's own line reports why
        return set()


def check_lake(
    spark: SparkSession, lake: str, names: list[str] | None = None, quick: bool = False
) -> list[TableCheck]:
    """Check the named tables (default: every table of the lake) and the run log."""
    checks = [check_table(spark, lake, name, quick) for name in (names or lake_tables(lake))]
    runs = next((c for c in checks if c.table == PIPELINE_RUNS), None)
    if runs is not None and runs.ok:
        runs.findings.extend(check_run_log(spark, lake))
    return checks


# --------------------------------------------------------------------------------------------
# Restore
# --------------------------------------------------------------------------------------------


def restore(spark: SparkSession, lake: str, name: str, to_version: int, run_id: str) -> int:
    """Bring table ``name`` back to the contents of ``to_version`` (a new version; see the
    module docstring for damaged commits); record it in ``pipeline_runs``; return the new
    version."""
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    start = time.perf_counter()
    path = table_path(lake, name)
    if not table_exists(spark, lake, name):
        raise RestoreError(f"no Delta table {name!r} at {path}")
    repaired: list[int] = []
    if "://" not in lake:
        table_dir = Path(path)
        versions = faults.commit_versions(table_dir)
        if to_version < 0 or to_version > versions[-1]:
            raise RestoreError(
                f"table {name} has versions {versions[0]}..{versions[-1]}, not {to_version}"
            )
        damaged = faults.damaged_commits(table_dir)
        if any(v <= to_version for v, _ in damaged):
            bad = [v for v, _ in damaged if v <= to_version]
            raise RestoreError(
                f"table {name}: version(s) {bad} up to {to_version} are damaged themselves; "
                "restore an earlier version or rerun the table's stage"
            )
        for version, problem in damaged:
            replace_damaged_commit(table_dir, version, problem)
            repaired.append(version)
    table = DeltaTable.forPath(spark, path)
    before = int(table.history(1).select("version").first()[0])
    table.restoreToVersion(to_version)
    after = int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])
    log.info(
        "%s: restored to version %s (now version %s; damaged commits replaced: %s)",
        name,
        to_version,
        after,
        repaired,
    )
    runlog.record(
        spark,
        lake,
        run_id,
        RESTORE_STAGE,
        runlog.fingerprint(RESTORE_STAGE, {"to_version": to_version}, {name: before}),
        runlog.SUCCEEDED,
        {name: before, "to_version": to_version, "replaced_damaged_commits": repaired},
        {name: after},
        started,
        time.perf_counter() - start,
    )
    return after


def replace_damaged_commit(table_dir: Path, version: int, problem: str) -> None:
    """Replace commit ``version`` by an empty commit (no actions: the version has the previous
    version's contents), keeping the damaged file, the version checksums of this and later
    versions (they describe the lost state) and later checkpoints in ``_damaged_log/``."""
    log_dir = table_dir / faults.DELTA_LOG
    keep = table_dir / DAMAGED_FOLDER / dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    keep.mkdir(parents=True, exist_ok=True)
    commit = faults.commit_path(table_dir, version)
    stale = [commit, commit.with_name(f".{commit.name}.crc")]
    for p in log_dir.iterdir():
        number = p.name.lstrip(".").split(".", 1)[0]
        if number.isdigit() and int(number) >= version and ".checkpoint." in p.name:
            stale.append(p)
        if number.isdigit() and int(number) >= version and p.name.endswith((".crc.crc", ".crc")):
            if not p.name.endswith(".json.crc"):
                stale.append(p)
    last_checkpoint = log_dir / "_last_checkpoint"
    if last_checkpoint.is_file():
        stale.append(last_checkpoint)  # Delta finds the newest remaining checkpoint by listing
    for p in stale:
        if p.exists():
            shutil.move(str(p), keep / p.name)
    empty = {
        "commitInfo": {
            "timestamp": int(time.time() * 1000),
            "operation": "REPLACE DAMAGED COMMIT",
            "operationParameters": {"problem": problem, "kept_in": str(keep)},
            "isBlindAppend": True,
            "engineInfo": "anime_recs.lakecheck",
        }
    }
    tmp = log_dir / f".{commit.name}.tmp"
    tmp.write_text(json.dumps(empty) + "\n")
    os.replace(tmp, commit)
    log.warning(
        "%s: commit %s was damaged (%s): replaced by an empty commit, kept in %s",
        table_dir.name,
        version,
        problem,
        keep,
    )
