"""Reading and validating ``animelist.csv`` (optional) into the ``watch_status`` table.

The 2020 dataset's ``animelist.csv`` (``user_id,anime_id,rating,watching_status,
watched_episodes``; ~109M rows, rating 0 = not rated) lists every title a user has in a
watching status; serving excludes them all. The status codes come from
``watching_status.csv`` (``status, description``; the official file has 1-4 and 6), or
:data:`DEFAULT_STATUS_CODES` when that file is absent.

The file is streamed by Spark like ``rating_complete.csv`` (text lines parsed with built-in
SQL functions, see :mod:`anime_recs.data.rating_lines`): the same fail-fast header checks, the
same line rules (``empty_line``, ``unparseable``, ``wrong_field_count``), the same id rules, and
``unknown_anime_id`` and ``duplicate_key`` (first valid row in file order kept). Own rules:

- ``rating``: an integer 0..10 (``7.0`` and ``+7`` are 7): ``missing_rating``,
  ``non_numeric_rating``, ``non_integer_rating``, ``rating_out_of_range``;
- ``watching_status``: ``missing_value`` (empty), ``invalid_value`` (not an integer),
  ``unknown_watching_status`` (an integer that is not a status code);
- ``watched_episodes``: ``missing_value`` (empty), ``invalid_value`` (not a non-negative
  integer that fits an INT).

Rejected rows go to ``rejected_rows`` with ``source = animelist.csv``.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from pathlib import Path

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from anime_recs.data.files import input_path, parse_header, read_head, read_text
from anime_recs.data.rating_lines import (
    id_reason_column,
    read_rating_lines,
    reject_duplicates,
    reject_unknown_anime,
    split_fields,
)
from anime_recs.data.rules import (
    INVALID_VALUE,
    MISSING_RATING,
    NON_INTEGER_RATING,
    NON_NUMERIC_RATING,
    RATING_OUT_OF_RANGE,
    FileCounts,
)
from anime_recs.errors import JobError
from anime_recs.paths import is_uri
from anime_recs.tables import ANIMELIST_FILE, STATUS_FILE

log = logging.getLogger(__name__)

ANIMELIST_COLUMNS = ("user_id", "anime_id", "rating", "watching_status", "watched_episodes")
DEFAULT_STATUS_CODES = (1, 2, 3, 4, 6)
MISSING_VALUE = "missing_value"
UNKNOWN_WATCHING_STATUS = "unknown_watching_status"
VALUES = ("rating", "watching_status", "watched_episodes")


@dataclass
class WatchStatusResult:
    """The ``watch_status`` rows and the rejected rows (both read a persisted frame: call
    :meth:`unpersist` when written) and the file's counts."""

    rows: DataFrame
    rejected: DataFrame
    counts: FileCounts
    cached: DataFrame | None = None

    def unpersist(self) -> None:
        if self.cached is not None:
            self.cached.unpersist()
            self.cached = None


def animelist_present(raw_dir: str | Path, spark: SparkSession | None = None) -> bool:
    """Whether ``raw_dir`` holds an ``animelist.csv`` (a URI is asked through Spark)."""
    path = input_path(raw_dir, ANIMELIST_FILE)
    if not is_uri(path):
        return Path(path).is_file()
    try:
        read_head(path, spark, max_lines=1)
    except JobError:
        return False
    return True


def parse_status_codes(text: str) -> tuple[int, ...]:
    """Status codes of a ``watching_status.csv`` text (first column; header ``status, ...``
    with optional blanks; blank lines ignored). :class:`JobError` on a non-integer code."""
    rows = [r for r in csv.reader(io.StringIO(text)) if r and any(f.strip() for f in r)]
    if not rows or rows[0][0].strip() != "status":
        raise JobError(f"{STATUS_FILE}: expected a header starting with 'status'")
    codes = []
    for row in rows[1:]:
        field = row[0].strip()
        if not field.lstrip("-").isdigit():
            raise JobError(f"{STATUS_FILE}: status code {field!r} is not an integer")
        codes.append(int(field))
    if not codes:
        raise JobError(f"{STATUS_FILE}: header only, no status codes")
    return tuple(sorted(set(codes)))


def status_codes(raw_dir: str | Path, spark: SparkSession | None = None) -> tuple[int, ...]:
    """The codes of ``watching_status.csv`` in ``raw_dir``, else :data:`DEFAULT_STATUS_CODES`."""
    path = input_path(raw_dir, STATUS_FILE)
    if not is_uri(path) and not Path(path).is_file():
        log.info("%s absent: status codes %s", STATUS_FILE, DEFAULT_STATUS_CODES)
        return DEFAULT_STATUS_CODES
    try:
        return parse_status_codes(read_text(path, spark))
    except JobError as exc:
        if is_uri(path) and "not found" in str(exc):
            return DEFAULT_STATUS_CODES
        raise


def _list_rating_reason(t: Column) -> Column:
    """Why a trimmed animelist rating is invalid, or NULL for an integer 0..10."""
    integral = t.rlike(r"^[+-]?[0-9]+(\.0*)?$")
    decimal = t.rlike(r"^[+-]?([0-9]+\.[0-9]*|\.[0-9]+)$")
    value = t.cast("double")
    return (
        F.when(t.rlike(r"^([0-9]|10)$"), F.lit(None).cast("string"))
        .when(t == "", F.lit(MISSING_RATING))
        .when(integral & ((value < 0) | (value > 10)), F.lit(RATING_OUT_OF_RANGE))
        .when(integral, F.lit(None).cast("string"))
        .when(decimal, F.lit(NON_INTEGER_RATING))
        .otherwise(F.lit(NON_NUMERIC_RATING))
    )


def _status_reason(t: Column, codes: tuple[int, ...]) -> Column:
    return (
        F.when(t == "", F.lit(MISSING_VALUE))
        .when(~t.rlike(r"^[0-9]{1,9}$"), F.lit(INVALID_VALUE))
        .when(~t.cast("int").isin(list(codes)), F.lit(UNKNOWN_WATCHING_STATUS))
    )


def _episodes_reason(t: Column) -> Column:
    return F.when(t == "", F.lit(MISSING_VALUE)).when(
        ~t.rlike(r"^[0-9]{1,9}$"), F.lit(INVALID_VALUE)
    )


def parse_animelist_lines(
    lines: DataFrame, columns: list[str], codes: tuple[int, ...]
) -> DataFrame:
    """Parse ``animelist.csv`` lines with the header ``columns`` (fields found by name).

    Output ``user_id, anime_id, rating, watching_status, watched_episodes`` (INT, NULL when
    rejected), ``record``, ``reason`` (first failing check, in column order),
    ``block_start, row_pos``.
    """
    idx = {c: columns.index(c) for c in ANIMELIST_COLUMNS}
    fields = split_fields(lines, len(columns))
    f = {c: F.col("_clean")[i] for c, i in idx.items()}
    parsed = fields.select(
        "record",
        "block_start",
        "row_pos",
        *[f[c].alias(f"_{c}") for c in ANIMELIST_COLUMNS],
        F.coalesce(
            F.col("_line_reason"),
            id_reason_column(f["user_id"]),
            id_reason_column(f["anime_id"]),
            _list_rating_reason(f["rating"]),
            _status_reason(f["watching_status"], codes),
            _episodes_reason(f["watched_episodes"]),
        ).alias("reason"),
    )
    ok = F.col("reason").isNull()
    as_int = {c: F.col(f"_{c}").cast("int") for c in ANIMELIST_COLUMNS}
    as_int["rating"] = F.col("_rating").cast("double").cast("int")
    return parsed.select(
        *[F.when(ok, as_int[c]).alias(c) for c in ANIMELIST_COLUMNS],
        "record",
        "reason",
        "block_start",
        "row_pos",
    )


def ingest_watch_status(
    spark: SparkSession, raw_dir: str | Path, anime_ids: DataFrame
) -> WatchStatusResult:
    """Read and validate ``animelist.csv`` of ``raw_dir`` against the accepted ``anime_ids``.

    Fail-fast header checks (:func:`~anime_recs.data.files.parse_header`), one streamed scan,
    one shuffle (duplicates), the parsed rows persisted once for the counts and both outputs.
    Writes nothing.
    """
    path = input_path(raw_dir, ANIMELIST_FILE)
    columns = parse_header(ANIMELIST_FILE, read_head(path, spark), ANIMELIST_COLUMNS)
    extra = [c for c in columns if c not in ANIMELIST_COLUMNS]
    if extra:
        log.info("%s: ignoring %d extra column(s): %s", ANIMELIST_FILE, len(extra), extra)
    codes = status_codes(raw_dir, spark)
    parsed = (
        parse_animelist_lines(read_rating_lines(spark, path), columns, codes)
        .transform(reject_unknown_anime, anime_ids)
        .transform(reject_duplicates, VALUES)
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    by_reason = {r["reason"]: r["count"] for r in parsed.groupBy("reason").count().collect()}
    accepted = by_reason.pop(None, 0)
    counts = FileCounts(accepted + sum(by_reason.values()), accepted, by_reason)
    rows = parsed.filter(F.col("reason").isNull()).select("user_id", "anime_id", *VALUES)
    rejected = parsed.filter(F.col("reason").isNotNull()).select(
        F.lit(ANIMELIST_FILE).alias("source"), "record", "reason"
    )
    return WatchStatusResult(rows, rejected, counts, cached=parsed)
