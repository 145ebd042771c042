"""Delta I/O at the edges: where tables live, reading, writing with a fixed schema, versions.

Every write states its mode. ``overwrite`` replaces the whole table atomically (a reader sees
the old or the new version, never a half-written one, also when the writer is killed), so a
rerun with the same inputs gives the same contents and no duplicate appends.
``replace_where`` rewrites only the rows matching a predicate (one embedder's vectors, one
recommender's neighbours) and leaves the others untouched.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from delta.tables import DeltaTable
from pyarrow import fs as pafs
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from anime_recs.delta_log import log_folder
from anime_recs.faults import check_contract, touching
from anime_recs.paths import is_uri, join
from anime_recs.tables import TABLE_PROPERTIES, WRITTEN_BY, require_columns

log = logging.getLogger(__name__)

# a commit (``<20 digits>.json``), a checkpoint or a staged commit: any file named by a version
COMMIT_FILE = re.compile(r"^\d{20}\.")

#: Hadoop's object-store schemes that pyarrow knows by another name
ARROW_SCHEMES = {"s3a": "s3", "s3n": "s3"}


def table_path(lake: str, name: str) -> str:
    """``<lake>/<name>``; ``lake`` may be a local folder or a URI (s3a://, abfss://, ...)."""
    return join(lake, name)


def table_exists(spark: SparkSession, lake: str, name: str) -> bool:
    return DeltaTable.isDeltaTable(spark, table_path(lake, name))


def missing_tables_message(lake: str, names: list[str]) -> str:
    """One line naming the missing tables and the jobs that write them."""
    jobs = sorted({WRITTEN_BY[n] for n in names if n in WRITTEN_BY})
    run = f" ({', '.join(f'jobs/{job}.py' for job in jobs)})" if jobs else ""
    if len(names) == 1:
        path = table_path(lake, names[0])
        return f"Delta table {names[0]!r} not found at {path}: run its stage first{run}"
    return f"Delta tables {names} not found under {lake}: run their stages first{run}"


def read_table(spark: SparkSession, lake: str, name: str, version: int | None = None) -> DataFrame:
    """Read a Delta table (optionally an older version); fails with a clear one-line message,
    also when the table's columns differ from its contract (``faults.check_contract``)."""
    path = table_path(lake, name)
    if not table_exists(spark, lake, name):
        raise FileNotFoundError(missing_tables_message(lake, [name]))
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    with touching(name, path):
        df = reader.load(path)
    check_contract(name, path, df.schema)
    return df


def table_version(spark: SparkSession, lake: str, name: str) -> int | None:
    """Latest Delta version of a table, or None when it does not exist."""
    if not table_exists(spark, lake, name):
        return None
    with touching(name, table_path(lake, name)):
        history = DeltaTable.forPath(spark, table_path(lake, name)).history(1)
        return int(history.select("version").first()[0])


def table_digest(spark: SparkSession, lake: str, name: str, version: int | None = None) -> str:
    """Order-independent digest of a table's contents: ``<rows>:<sum of xxhash64(row)>``.

    Equal contents give equal digests whatever the Delta version or file layout, so a stage
    can tell "same data rewritten" (e.g. a forced rerun of its upstream) from "new data".
    One aggregation over the table: meant for small inputs (pairs, titles).
    """
    return frame_digest(read_table(spark, lake, name, version))


def frame_digest(df: DataFrame) -> str:
    """:func:`table_digest` of any DataFrame (e.g. one embedder's rows of a table)."""
    row_hash = F.xxhash64(*[F.col(c) for c in sorted(df.columns)]).cast("decimal(38,0)")
    rows, total = df.select(row_hash.alias("h")).agg(F.count("*"), F.sum("h")).first()
    return f"{rows}:{total or 0}"


def ensure_properties(
    spark: SparkSession, lake: str, name: str, schema: StructType, properties: dict[str, str]
) -> None:
    """Make table ``name`` carry ``properties`` before data is written to it.

    A missing table is created empty with them (version 0: a Delta write cannot set
    properties that do not start with ``delta.``, such as the Parquet writer settings, which
    Delta hands to the Parquet writer of every write to the table); an existing table gets the
    ones that differ with one ``SET TBLPROPERTIES`` commit, and none when all match.
    """
    path = table_path(lake, name)
    if not table_exists(spark, lake, name):
        _drop_commitless_log(name, path)
        builder = DeltaTable.createIfNotExists(spark).location(path).addColumns(schema)
        for key, value in properties.items():
            builder = builder.property(key, value)
        builder.execute()
        log.info("%s: created with table properties %s", name, properties)
        return
    current = DeltaTable.forPath(spark, path).detail().first()["properties"] or {}
    stale = {k: v for k, v in properties.items() if current.get(k) != v}
    if stale:
        assignments = ", ".join(f"'{k}' = '{v}'" for k, v in sorted(stale.items()))
        spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ({assignments})")
        log.info("%s: set table properties %s", name, stale)


def arrow_filesystem(path: str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow file system of ``path`` and the path within it: a local folder, a ``file:``
    URI or an object store URI (``s3a://`` read as ``s3://``, with the same default AWS
    credentials chain)."""
    if not is_uri(path) and not path.startswith("file:"):
        return pafs.LocalFileSystem(), str(Path(path).absolute())
    scheme, rest = path.split(":", 1)
    return pafs.FileSystem.from_uri(f"{ARROW_SCHEMES.get(scheme, scheme)}:{rest}")


def _drop_commitless_log(name: str, path: str) -> None:
    """Remove a ``_delta_log`` that holds no commit: what a table creation killed before its
    first commit leaves. Delta refuses to create a table over it (``DELTA_TABLE_NOT_FOUND``),
    and with no commit there is no version to lose. A log with any commit is left alone."""
    fs, log_dir = arrow_filesystem(log_folder(path))
    if fs.get_file_info(log_dir).type == pafs.FileType.NotFound:
        return
    listing = fs.get_file_info(pafs.FileSelector(log_dir, recursive=True))
    names = [info.base_name for info in listing if info.type == pafs.FileType.File]
    if any(COMMIT_FILE.match(n) for n in names):
        return
    fs.delete_dir(log_dir)
    log.warning("%s: removed a _delta_log without commits (a killed creation): %s", name, names)


def conform(df: DataFrame, schema: StructType) -> DataFrame:
    """Select and cast ``df`` to exactly ``schema`` (column order and types); fail on missing."""
    require_columns(df.columns, schema.fieldNames(), "cannot write")
    return df.select([F.col(f.name).cast(f.dataType).alias(f.name) for f in schema.fields])


def write_table(
    df: DataFrame,
    lake: str,
    name: str,
    schema: StructType,
    mode: str = "overwrite",
    replace_where: str | None = None,
    partition_by: list[str] | None = None,
) -> int:
    """Write ``df`` conformed to ``schema`` as Delta table ``name``; return the new version.

    ``mode='overwrite'`` without ``replace_where`` replaces the table (schema included);
    with ``replace_where`` only the matching rows are replaced. A table with properties in
    ``tables.TABLE_PROPERTIES`` gets them before the write (:func:`ensure_properties`).
    """
    if mode not in ("overwrite", "append"):
        raise ValueError(f"unsupported write mode {mode!r}")
    path = table_path(lake, name)
    writer = conform(df, schema).write.format("delta").mode(mode)
    if replace_where is not None:
        writer = writer.option("replaceWhere", replace_where)
    elif mode == "overwrite":
        writer = writer.option("overwriteSchema", "true")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    with touching(name, path):
        properties = TABLE_PROPERTIES.get(name)
        if properties:
            ensure_properties(df.sparkSession, lake, name, schema, properties)
        writer.save(path)
    version = table_version(df.sparkSession, lake, name)
    log.info(
        "wrote %s (%s%s) -> version %s",
        name,
        mode,
        f", replaceWhere {replace_where}" if replace_where else "",
        version,
    )
    return version
