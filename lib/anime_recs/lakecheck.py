"""Check the tables of a lake, and restore one to an earlier version.

For each table (:func:`check_table`), through Delta's own log reader (``anime_recs.delta_log``,
so checkpoints, commits removed after ``delta.logRetentionDuration`` and object stores need
nothing of their own):

- Delta reads the current version and the history of the commits it keeps; a commit it cannot
  read is named (``faults``), with the way back;
- every data file of the current version exists (``quick``: one listing of the table folder)
  and reads whole (full: one pass over every column, so Hadoop verifies each file's checksums
  and Parquet decodes every page);
- its columns equal the contract (``tables.SCHEMAS``);
- (full) its key is unique, where it has one (``tables.TABLE_KEYS``).

The ``ok`` line gives the versions Delta can still restore (``versions=oldest..latest``).

For the lake (:func:`check_run_log`): the table versions recorded by the latest successful run
of each stage in ``pipeline_runs`` exist, unless they are older than the oldest commit Delta
keeps (cleaned up after the log retention period: history, not a fault).

:func:`restore` runs Delta's ``RESTORE TABLE ... TO VERSION AS OF`` and records it in
``pipeline_runs``; a version Delta no longer keeps is answered with the restorable ones.
Nothing here writes to a Delta log.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass, field

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.utils import AnalysisException

from anime_recs import delta_log, faults, runlog
from anime_recs.delta_log import DELTA_LOG
from anime_recs.lakehouse import table_exists, table_path
from anime_recs.tables import PIPELINE_RUNS, SCHEMAS, TABLE_KEYS

log = logging.getLogger(__name__)

RESTORE_STAGE = "restore"


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


def lake_tables(spark: SparkSession, lake: str) -> list[str]:
    """The Delta tables of a lake (local or any file system the session reads): its folders
    whose ``_delta_log`` holds a commit, sorted."""
    try:
        listing = spark.read.format("binaryFile").load(table_path(lake, f"*/{DELTA_LOG}/*.json"))
        paths = [r[0] for r in listing.select("path").collect()]
    except AnalysisException:  # no such folder, or no table in it
        return []
    return sorted({p.rsplit(f"/{DELTA_LOG}/", 1)[0].rsplit("/", 1)[-1] for p in paths})


def check_table(spark: SparkSession, lake: str, name: str, quick: bool = False) -> TableCheck:
    """Check one table (see the module docstring); never raises for a damaged table."""
    result = TableCheck(name)
    path = table_path(lake, name)
    if not table_exists(spark, lake, name):
        result.findings.append(f"missing: no Delta table at {path}")
        return result
    try:
        with faults.touching(name, path):
            df = delta_log.snapshot(spark, path)
            files = df.inputFiles()
            kept = delta_log.history_versions(spark, path)
    except Exception as exc:  # noqa: BLE001 - every failure is a finding of this table
        result.findings.append(faults.one_line(exc))
        versions = delta_log.commit_versions(spark, path)
        result.version = versions[-1] if versions else None
        return result
    result.version = kept[-1]
    result.facts["files"] = len(files)
    result.facts["versions"] = f"{delta_log.oldest_version(spark, path, kept)}..{kept[-1]}"

    difference = faults.contract_fault(name, path, df.schema)
    if difference:
        result.findings.append(difference)

    present = delta_log.data_files(spark, path)
    missing = [f for f in files if delta_log.normalized(f) not in present]
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


def check_run_log(spark: SparkSession, lake: str) -> list[str]:
    """Findings about ``pipeline_runs``: versions its latest successful runs recorded that do
    not exist (a table missing, or behind the recorded version); a version older than the
    oldest commit Delta keeps was cleaned up after the log retention period, which is fine."""
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
    versions: dict[str, list[int] | None] = {}
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
            elif version not in have and not (have and version < have[0]):
                findings.append(
                    f"run {record['run_id']} ({stage}) recorded {name} version {version}, "
                    f"which does not exist (latest {have[-1] if have else None})"
                )
    return findings


def _versions(spark: SparkSession, lake: str, name: str) -> list[int] | None:
    if not table_exists(spark, lake, name):
        return None
    try:
        return delta_log.history_versions(spark, table_path(lake, name))
    except Exception:  # noqa: BLE001 - the table's own line reports why
        return []


def check_lake(
    spark: SparkSession, lake: str, names: list[str] | None = None, quick: bool = False
) -> list[TableCheck]:
    """Check the named tables (default: every table of the lake) and the run log."""
    names = names or lake_tables(spark, lake)
    checks = [check_table(spark, lake, name, quick) for name in names]
    runs = next((c for c in checks if c.table == PIPELINE_RUNS), None)
    if runs is not None and runs.ok:
        runs.findings.extend(check_run_log(spark, lake))
    return checks


# --------------------------------------------------------------------------------------------
# Restore
# --------------------------------------------------------------------------------------------


def restore(spark: SparkSession, lake: str, name: str, to_version: int, run_id: str) -> int:
    """Bring table ``name`` back to the contents of ``to_version`` with Delta's RESTORE (a new
    version); record it in ``pipeline_runs``; return the new version."""
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    start = time.perf_counter()
    path = table_path(lake, name)
    if not table_exists(spark, lake, name):
        raise RestoreError(f"no Delta table {name!r} at {path}")
    try:
        with faults.touching(name, path):
            kept = delta_log.history_versions(spark, path)
    except Exception as exc:  # a commit Delta cannot read: RESTORE cannot run either
        raise RestoreError(faults.one_line(exc)) from exc
    before, oldest = kept[-1], delta_log.oldest_version(spark, path, kept)
    if not oldest <= to_version <= before:
        cleaned = (
            f" (the commits before version {oldest} were removed after the table's "
            "delta.logRetentionDuration)"
            if oldest > 0
            else ""
        )
        raise RestoreError(
            f"table {name} cannot be restored to version {to_version}: the oldest restorable "
            f"version is {oldest}, the latest {before}{cleaned}; pick one of {oldest}..{before}"
        )
    try:
        spark.sql(f"RESTORE TABLE delta.`{path}` TO VERSION AS OF {int(to_version)}")
    except Exception as exc:  # e.g. that version's data files are gone
        raise RestoreError(f"table {name}: {faults.one_line(exc)}") from exc
    after = delta_log.latest_version(spark, path)
    log.info("%s: restored to version %s (now version %s)", name, to_version, after)
    runlog.record(
        spark,
        lake,
        run_id,
        RESTORE_STAGE,
        runlog.fingerprint(RESTORE_STAGE, {"to_version": to_version}, {name: before}),
        runlog.SUCCEEDED,
        {name: before, "to_version": to_version},
        {name: after},
        started,
        time.perf_counter() - start,
    )
    return after
