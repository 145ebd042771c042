"""A Delta table's log as Delta itself reads it: versions, snapshots, data files, a damaged commit.

Versions come from ``DESCRIBE HISTORY`` (``DeltaTable.history``), a version's schema and data
files from time travel (``versionAsOf``, ``DataFrame.inputFiles``), the files present from a
listing by Spark's ``binaryFile`` source. Delta thereby handles checkpoints (Parquet,
multi-part, ``_last_checkpoint``) and commits removed after ``delta.logRetentionDuration``, and
every path goes through the session's Hadoop file systems (``file:``, ``s3a://``, ``abfss://``).
Nothing here writes to a table or to its log.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType
from pyspark.sql.utils import AnalysisException

from anime_recs.error_text import commit_version, read_error
from anime_recs.paths import join

DELTA_LOG = "_delta_log"


def log_folder(path: str) -> str:
    """The ``_delta_log`` folder of the table at ``path``."""
    return join(path, DELTA_LOG)


def commit_name(version: int) -> str:
    """The JSON commit of ``version``, relative to the table folder."""
    return f"{DELTA_LOG}/{version:020d}.json"


def normalized(uri: str) -> str:
    """One spelling per file: Spark names a local file ``file:/x`` in some places and
    ``file:///x`` in others."""
    return re.sub(r"^file:/+", "file:/", uri)


def history_versions(spark: SparkSession, path: str) -> list[int]:
    """The versions whose commit the log still keeps (``DESCRIBE HISTORY``), ascending."""
    rows = DeltaTable.forPath(spark, path).history().select("version").collect()
    return sorted(int(r[0]) for r in rows)


def latest_version(spark: SparkSession, path: str) -> int:
    """The table's latest version (Delta reads only the newest commit for it)."""
    return int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])


def snapshot(spark: SparkSession, path: str, version: int | None = None) -> DataFrame:
    """The table at ``version`` (default: the latest); Delta resolves it here, so a version
    it no longer keeps fails now (a damaged commit may fail only when the files are listed)."""
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    df = reader.load(path)
    df.schema  # noqa: B018 - resolves the snapshot
    return df


def oldest_version(spark: SparkSession, path: str, kept: list[int] | None = None) -> int:
    """The oldest version Delta can still read and restore: the oldest kept commit that a
    checkpoint (or the commits from version 0) can rebuild. ``kept``: :func:`history_versions`."""
    kept = kept if kept is not None else history_versions(spark, path)
    for version in kept:
        try:
            snapshot(spark, path, version)
            return version
        except AnalysisException:  # kept commit, but the checkpoint before it was cleaned up
            continue
    return kept[-1]


def data_files(spark: SparkSession, path: str) -> set[str]:
    """Every Parquet file present under the table folder (:func:`normalized` URIs). Spark's
    listing skips folders starting with ``_`` or ``.``, the log among them."""
    listing = (
        spark.read.format("binaryFile")
        .option("recursiveFileLookup", "true")
        .option("pathGlobFilter", "*.parquet")
        .load(path)
        .select("path")  # no content column: the files are listed, not read
    )
    return {normalized(r[0]) for r in listing.collect()}


def commit_versions(spark: SparkSession, path: str) -> list[int]:
    """The versions with a JSON commit in the log folder, from a listing (nothing is read):
    what there is when Delta itself cannot read the log."""
    try:
        listing = spark.read.format("binaryFile").load(f"{log_folder(path)}/*.json")
        names = [r[0] for r in listing.select("path").collect()]
    except AnalysisException:  # no commit at all
        return []
    return sorted(v for n in names if (v := commit_version(n)) is not None)


def damaged_commit(spark: SparkSession, path: str) -> tuple[str, int, str] | None:
    """The first kept JSON commit that cannot be read, as ``error_text.unreadable_commit``; None
    when all read.

    ``DESCRIBE HISTORY`` fails on a truncated commit with Jackson's message alone; Spark's JSON
    source failing fast names the file it cannot read (and Hadoop verifies each file's
    checksum on the way), so the commits are read once here, only to find the damaged one.
    """
    commits = (
        spark.read.schema("commitInfo STRING")
        .option("mode", "FAILFAST")
        .json(f"{log_folder(path)}/*.json")
    )
    try:
        commits.agg(F.count("commitInfo")).collect()
    except Exception as exc:  # noqa: BLE001 - the error text is the answer
        return read_error(exc).commit
    return None


def restorable_version(
    spark: SparkSession,
    path: str,
    below: int,
    bad_file: str | None = None,
    schema_ok: Callable[[StructType], bool] | None = None,
) -> int | None:
    """The newest version below ``below`` that Delta can read, whose data files all exist (and
    do not include ``bad_file``, a path relative to the table) and whose schema passes
    ``schema_ok``; None when there is none."""
    try:
        kept = history_versions(spark, path)
    except Exception:  # noqa: BLE001 - a damaged commit: the listing still has the versions
        kept = commit_versions(spark, path)
    present: set[str] | None = None
    for version in sorted((v for v in kept if v < below), reverse=True):
        try:
            df = snapshot(spark, path, version)
            files = [normalized(f) for f in df.inputFiles()]
        except Exception:  # noqa: BLE001 - expired or unreadable: not a way back
            continue
        if bad_file is not None and any(f.endswith("/" + bad_file.lstrip("/")) for f in files):
            continue
        if schema_ok is not None and not schema_ok(df.schema):
            continue
        present = present if present is not None else data_files(spark, path)
        if all(f in present for f in files):
            return version
    return None
