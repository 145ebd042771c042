"""Reading and validating the three MAL 2020 files into the ``anime``, ``ratings`` and
``rejected_rows`` tables (this module is the ingest's I/O edge).

Files (in ``paths.raw``)
    ``anime.csv`` and ``anime_with_synopsis.csv`` are small (~7 MB): they are read on the driver
    with Python's :mod:`csv` module (quoting, embedded newlines, ``utf-8-sig`` for a BOM, CRLF).
    ``rating_complete.csv`` (57.6M rows, ~800 MB) is read by Spark as text lines and parsed with
    built-in SQL functions only (no Python UDF); it is never collected: one scan, one shuffle
    (the duplicate window), the anime id set broadcast, the parsed result persisted once so
    that the counts and both output tables reuse it.
    A local ``paths.raw`` is read with Python file I/O (and checked before Spark starts); a URI
    (``s3a://``, ``file://``) is read through Spark (``wholetext`` for the anime files).

Fail fast (:class:`JobError`, one line naming the file/column; ``run_main`` exits 2)
    a missing file; an empty file (no header line); invalid UTF-8 in a local anime file or in
    the ratings header (undecodable bytes in ratings lines become U+FFFD and fail the row
    rules instead); a required
    column missing from the header (a renamed column counts as missing); a column name repeated
    in the header; a header-only file (no data rows) - for all three files, because no later
    stage can work with zero titles or zero ratings, and an empty download is an error.
    Extra columns are allowed: they are ignored and logged. Columns are found by name, so their
    order does not matter. Required columns are the ones the ingest uses
    (:data:`REQUIRED_COLUMNS`); the other ``anime.csv`` columns (Watching ... Score-1) are optional.

Row rules (a rejected row goes to ``rejected_rows`` with ``source`` = file name, ``record`` = the
raw record text without its line terminator, ``reason`` = the first failing check below)
    all files: ``empty_line`` (blank record), ``unparseable`` (bad CSV quoting),
    ``wrong_field_count`` (not as many fields as the header: truncated line, wrong delimiter),
    ids (``MAL_ID``, ``user_id``, ``anime_id``; surrounding blanks are trimmed):
    ``missing_id`` (empty), ``negative_id`` (``-5``), ``non_numeric_id`` (anything but digits,
    ``1.0`` included), ``id_out_of_range`` (> 2147483647).
    ``anime.csv``: ``missing_name`` (empty Name); ``invalid_value`` (a typed column - Score,
    Episodes, Ranked, Popularity, Members, Favorites - that is neither ``Unknown``/empty nor a
    number; integral floats such as ``28.0`` are accepted as integers); ``duplicate_id``
    (the first valid row of a MAL_ID is kept, later ones rejected).
    ``anime_with_synopsis.csv``: ``unknown_anime_id`` (MAL_ID not among the accepted
    ``anime.csv`` titles); ``duplicate_id`` (first kept).
    ``rating_complete.csv``: ``missing_rating``; ``non_numeric_rating`` (``abc``, ``1e1``);
    ``non_integer_rating`` (``7.5``; ``7.0`` and ``+7`` are the integer 7); ``rating_out_of_range``
    (outside 1..10: ``0``, ``11``, ``-3``); ``unknown_anime_id`` (anime_id not among the accepted
    ``anime.csv`` titles); ``duplicate_key`` (a later row for a (user_id, anime_id) that already
    has a valid row: the FIRST valid row in file order is kept). Fields may be wrapped in double
    quotes (``"1","2","3"``); any other use of ``"`` is ``unparseable``.

File order of the ratings in Spark
    Each line is tagged at scan time with ``input_file_block_start()`` (byte offset of the file
    split it was read from) and ``monotonically_increasing_id()`` (increasing within a Spark
    partition, in read order). Splits of one file are read front to back, so ordering by
    (block_start, row_pos) is file order whatever the number of splits or partitions. The header
    is the first line of the split starting at byte 0 (row number 0 in the lower 33 bits of
    ``monotonically_increasing_id``, as documented by Spark).

Rejected-fraction limit
    Checked per file (:func:`check_rejections`): rejected / data records of that file. Per file
    and not overall, because an overall fraction is dominated by the 57.6M ratings and would
    let a half-broken ``anime.csv`` pass. The job checks it before writing anything, so a
    failed check leaves every table at its previous version.

The ``anime`` table: one row per accepted ``anime.csv`` title, typed per ``ANIME_SCHEMA``
(``Unknown`` or empty -> NULL in typed columns, the ``Rating`` column -> ``age_rating``), the
synopsis (see :func:`anime_records`) and the case-study ``description``
(:mod:`anime_recs.data.description`).
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from anime_recs.data.description import (
    FROM_METADATA,
    FROM_SYNOPSIS,
    describe,
    describe_metadata,
    usable_synopsis,
)
from anime_recs.data.split import assign_split, newest_titles, start_month
from anime_recs.errors import JobError
from anime_recs.paths import is_uri
from anime_recs.tables import (
    ANIME_FILE,
    ANIME_SCHEMA,
    RATINGS_FILE,
    RAW_FILES,
    REJECTED_ROWS_SCHEMA,
    SYNOPSIS_FILE,
    require_columns,
)

log = logging.getLogger(__name__)


# anime table column -> anime.csv column
ANIME_ID_COLUMN = "MAL_ID"
ANIME_NAME_COLUMN = "Name"
ANIME_STRING_COLUMNS = {
    "english_name": "English name",
    "japanese_name": "Japanese name",
    "type": "Type",
    "aired": "Aired",
    "premiered": "Premiered",
    "producers": "Producers",
    "licensors": "Licensors",
    "studios": "Studios",
    "source": "Source",
    "duration": "Duration",
    "age_rating": "Rating",
    "genres": "Genres",
}
ANIME_INT_COLUMNS = {
    "episodes": "Episodes",
    "ranked": "Ranked",
    "popularity": "Popularity",
    "members": "Members",
    "favorites": "Favorites",
}
ANIME_DOUBLE_COLUMNS = {"score": "Score"}
SYNOPSIS_COLUMN = "sypnopsis"  # sic, as in the Kaggle file

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    ANIME_FILE: (
        ANIME_ID_COLUMN,
        ANIME_NAME_COLUMN,
        *ANIME_STRING_COLUMNS.values(),
        *ANIME_INT_COLUMNS.values(),
        *ANIME_DOUBLE_COLUMNS.values(),
    ),
    SYNOPSIS_FILE: (ANIME_ID_COLUMN, SYNOPSIS_COLUMN),
    RATINGS_FILE: ("user_id", "anime_id", "rating"),
}

UNKNOWN = "Unknown"
MAX_INT = 2**31 - 1

# rejection reasons (stable codes)
EMPTY_LINE = "empty_line"
UNPARSEABLE = "unparseable"
WRONG_FIELD_COUNT = "wrong_field_count"
MISSING_ID = "missing_id"
NON_NUMERIC_ID = "non_numeric_id"
NEGATIVE_ID = "negative_id"
ID_OUT_OF_RANGE = "id_out_of_range"
MISSING_NAME = "missing_name"
INVALID_VALUE = "invalid_value"
DUPLICATE_ID = "duplicate_id"
UNKNOWN_ANIME_ID = "unknown_anime_id"
MISSING_RATING = "missing_rating"
NON_NUMERIC_RATING = "non_numeric_rating"
NON_INTEGER_RATING = "non_integer_rating"
RATING_OUT_OF_RANGE = "rating_out_of_range"
DUPLICATE_KEY = "duplicate_key"

_DIGITS = re.compile(r"[0-9]+")
_NEGATIVE = re.compile(r"-[0-9]+")
_INTEGRAL = re.compile(r"[+-]?[0-9]+(?:\.0*)?")


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass
class FileCounts:
    """Data records of one file (header excluded), accepted and rejected per reason."""

    total: int = 0
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


@dataclass
class IngestResult:
    """The three output frames (``ratings`` and ``rejected`` read a persisted frame: call
    :meth:`unpersist` when written) and the counts per file."""

    anime: DataFrame
    ratings: DataFrame
    rejected: DataFrame
    counts: dict[str, FileCounts]
    cached: DataFrame | None = None

    def unpersist(self) -> None:
        if self.cached is not None:
            self.cached.unpersist()
            self.cached = None


@dataclass
class CsvRecord:
    """One data record of a driver-side CSV: raw text, fields (None when unparseable), reason."""

    text: str
    fields: list[str] | None
    reason: str | None = None


# --------------------------------------------------------------------------------------------
# File access and fail-fast checks
# --------------------------------------------------------------------------------------------


def input_path(raw_dir: str | Path, name: str) -> str:
    """``<raw_dir>/<name>`` for a local folder or a URI."""
    if is_uri(raw_dir):
        return f"{str(raw_dir).rstrip('/')}/{name}"
    return str(Path(raw_dir) / name)


def _file_name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _spark_required(path: str, spark: SparkSession | None) -> SparkSession:
    if spark is None:
        raise ValueError(f"{path}: a SparkSession is needed to read a URI")
    return spark


def _spark_read_text(spark: SparkSession, path: str, **options: object) -> DataFrame:
    from pyspark.errors import AnalysisException

    try:
        return spark.read.text(path, **options)
    except AnalysisException as exc:
        raise JobError(f"{_file_name(path)}: input file not found at {path}") from exc


def read_text(path: str, spark: SparkSession | None = None) -> str:
    """The whole text of a small file (BOM removed, line terminators kept).

    Local paths are read with Python (strict UTF-8); URIs with Spark (``wholetext``).
    Raises :class:`JobError` for a missing file or invalid UTF-8.
    """
    name = _file_name(path)
    if is_uri(path):
        rows = _spark_read_text(_spark_required(path, spark), path, wholetext=True).collect()
        text = rows[0][0] if rows else ""
        return text[1:] if text.startswith("\ufeff") else text
    if not Path(path).is_file():
        raise JobError(f"{name}: input file not found at {path}")
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            return f.read()
    except UnicodeDecodeError as exc:
        raise JobError(f"{name}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc


def read_head(path: str, spark: SparkSession | None = None, max_lines: int = 100) -> str:
    """The beginning of a (large) file: lines up to the first non-blank line after the first
    one (at most ``max_lines``), BOM removed. Raises :class:`JobError` when missing."""
    name = _file_name(path)
    if is_uri(path):
        rows = _spark_read_text(_spark_required(path, spark), path).limit(max_lines).collect()
        lines = [r[0] + "\n" for r in rows]
    else:
        if not Path(path).is_file():
            raise JobError(f"{name}: input file not found at {path}")
        lines = []
        try:
            with open(path, encoding="utf-8-sig", newline="") as f:
                for line in f:
                    lines.append(line)
                    if (len(lines) > 1 and line.strip()) or len(lines) >= max_lines:
                        break
        except UnicodeDecodeError as exc:
            raise JobError(f"{name}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
    text = "".join(lines)
    return text[1:] if text.startswith("\ufeff") else text


def parse_header(name: str, text: str, required: tuple[str, ...]) -> list[str]:
    """The header columns (blanks stripped) of a CSV ``text`` after the fail-fast checks.

    Raises :class:`JobError` naming the file (and column) for: an empty file, an invalid
    header, a column repeated in the header, a missing required column, no data rows.
    """
    lines = iter(io.StringIO(text, newline=""))
    try:
        header = next(csv.reader(lines, strict=True), None)
    except csv.Error as exc:
        raise JobError(f"{name}: header line is not valid CSV ({exc})") from exc
    if header is None or not any(h.strip() for h in header):
        raise JobError(f"{name}: empty file (no header line)")
    columns = [h.strip() for h in header]
    repeated = sorted(c for c, n in Counter(columns).items() if n > 1)
    if repeated:
        raise JobError(f"{name}: column {repeated[0]!r} appears more than once in the header")
    missing = [c for c in required if c not in columns]
    if missing:
        shown = ",".join(columns)
        shown = shown if len(shown) <= 120 else shown[:117] + "..."
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise JobError(f"{name}: missing required column {missing[0]!r}{more}; header: {shown}")
    if not any(line.strip() for line in lines):
        raise JobError(f"{name}: header only, no data rows")
    return columns


def check_inputs(raw_dir: str | Path, spark: SparkSession | None = None) -> dict[str, list[str]]:
    """Fail fast on the three files of ``raw_dir``; return each file's header columns.

    A local ``raw_dir`` needs no Spark (the job checks before starting its session); a URI
    needs ``spark``. Raises :class:`JobError` (see :func:`parse_header`, :func:`read_text`).
    Logs the extra columns that will be ignored.
    """
    headers = {}
    for name in RAW_FILES:
        path = input_path(raw_dir, name)
        text = read_head(path, spark) if name == RATINGS_FILE else read_text(path, spark)
        headers[name] = parse_header(name, text, REQUIRED_COLUMNS[name])
        extra = [c for c in headers[name] if c not in REQUIRED_COLUMNS[name]]
        if extra:
            log.info("%s: ignoring %d extra column(s): %s", name, len(extra), extra)
    return headers


# --------------------------------------------------------------------------------------------
# Driver-side CSV (anime files)
# --------------------------------------------------------------------------------------------


def read_csv_records(name: str, text: str) -> tuple[list[str], Iterator[CsvRecord]]:
    """Header columns and an iterator over the data records of a small CSV text, in file order.

    Each record keeps its raw text (all physical lines it spans, last terminator removed).
    Blank records get ``empty_line``, CSV errors (bad quoting) ``unparseable`` and records with
    another number of fields than the header ``wrong_field_count``.
    """
    header = parse_header(name, text, ())

    def records() -> Iterator[CsvRecord]:
        buffer: list[str] = []

        def lines() -> Iterator[str]:
            for line in io.StringIO(text, newline=""):
                buffer.append(line)
                yield line

        reader = csv.reader(lines(), strict=True)
        next(reader)  # header
        buffer.clear()
        while True:
            try:
                fields = next(reader)
                reason = None
            except StopIteration:
                break
            except csv.Error:
                fields, reason = None, UNPARSEABLE
            record = "".join(buffer)
            buffer.clear()
            record = record[:-2] if record.endswith("\r\n") else record.rstrip("\r\n")
            if reason is None and not record.strip():
                reason = EMPTY_LINE
            elif reason is None and len(fields) != len(header):
                reason = WRONG_FIELD_COUNT
            yield CsvRecord(record, fields, reason)

    return header, records()


def id_reason(text: str) -> str | None:
    """Why an id field is invalid (``missing_id``, ``negative_id``, ``non_numeric_id``,
    ``id_out_of_range``), or None when it is a valid non-negative INT (blanks trimmed)."""
    t = text.strip()
    if not t:
        return MISSING_ID
    if _NEGATIVE.fullmatch(t):
        return NEGATIVE_ID
    if not _DIGITS.fullmatch(t):
        return NON_NUMERIC_ID
    if int(t) > MAX_INT:
        return ID_OUT_OF_RANGE
    return None


def parse_int(text: str) -> int | None:
    """A typed INT cell: ``Unknown``/empty -> None; ``12``, ``28.0`` -> int; else ValueError."""
    t = text.strip()
    if t in ("", UNKNOWN):
        return None
    if not _INTEGRAL.fullmatch(t):
        raise ValueError(f"not an integer: {text!r}")
    value = int(t.split(".")[0])
    if abs(value) > MAX_INT:
        raise ValueError(f"integer out of range: {text!r}")
    return value


def parse_double(text: str) -> float | None:
    """A typed DOUBLE cell: ``Unknown``/empty -> None; a finite number -> float; else ValueError."""
    t = text.strip()
    if t in ("", UNKNOWN):
        return None
    value = float(t)
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {text!r}")
    return value


def parse_string(text: str) -> str | None:
    """A typed STRING cell: ``Unknown`` or empty -> None, anything else unchanged."""
    return None if text.strip() in ("", UNKNOWN) else text


@dataclass
class ParsedFile:
    """Accepted records by id (file order), rejected (source, record, reason), counts."""

    accepted: dict[int, dict[str, str]]
    rejected: list[tuple[str, str, str]]
    counts: FileCounts


def parse_anime_csv(text: str, name: str = ANIME_FILE) -> ParsedFile:
    """Validate ``anime.csv`` text: accepted raw rows (column name -> text) keyed by MAL_ID."""
    header, records = read_csv_records(name, text)
    index = {c: i for i, c in enumerate(header)}
    accepted: dict[int, dict[str, str]] = {}
    rejected: list[tuple[str, str, str]] = []
    counts = FileCounts()
    for rec in records:
        counts.total += 1
        reason = rec.reason
        row: dict[str, str] = {}
        if reason is None:
            row = {c: rec.fields[i] for c, i in index.items()}
            reason = _anime_row_reason(row)
        if reason is None and int(row[ANIME_ID_COLUMN].strip()) in accepted:
            reason = DUPLICATE_ID
        if reason is None:
            accepted[int(row[ANIME_ID_COLUMN].strip())] = row
        else:
            rejected.append((name, rec.text, reason))
    _finish_counts(counts, len(accepted), rejected)
    return ParsedFile(accepted, rejected, counts)


def _anime_row_reason(row: dict[str, str]) -> str | None:
    reason = id_reason(row[ANIME_ID_COLUMN])
    if reason is not None:
        return reason
    if not row[ANIME_NAME_COLUMN].strip():
        return MISSING_NAME
    try:
        for column in ANIME_INT_COLUMNS.values():
            parse_int(row[column])
        for column in ANIME_DOUBLE_COLUMNS.values():
            parse_double(row[column])
    except ValueError:
        return INVALID_VALUE
    return None


def parse_synopsis_csv(
    text: str, known_ids: set[int] | dict[int, object], name: str = SYNOPSIS_FILE
) -> ParsedFile:
    """Validate ``anime_with_synopsis.csv`` text against the accepted ``anime.csv`` ids."""
    header, records = read_csv_records(name, text)
    index = {c: i for i, c in enumerate(header)}
    accepted: dict[int, dict[str, str]] = {}
    rejected: list[tuple[str, str, str]] = []
    counts = FileCounts()
    for rec in records:
        counts.total += 1
        reason = rec.reason
        row: dict[str, str] = {}
        if reason is None:
            row = {c: rec.fields[i] for c, i in index.items()}
            reason = id_reason(row[ANIME_ID_COLUMN])
        if reason is None:
            anime_id = int(row[ANIME_ID_COLUMN].strip())
            if anime_id not in known_ids:
                reason = UNKNOWN_ANIME_ID
            elif anime_id in accepted:
                reason = DUPLICATE_ID
        if reason is None:
            accepted[anime_id] = row
        else:
            rejected.append((name, rec.text, reason))
    _finish_counts(counts, len(accepted), rejected)
    return ParsedFile(accepted, rejected, counts)


def _finish_counts(counts: FileCounts, accepted: int, rejected: list[tuple[str, str, str]]) -> None:
    counts.accepted = accepted
    counts.rejected = dict(Counter(reason for _, _, reason in rejected))


def anime_records(
    anime: dict[int, dict[str, str]], synopses: dict[int, dict[str, str]]
) -> list[tuple]:
    """Rows of the ``anime`` table (``ANIME_SCHEMA`` order), one per accepted title.

    * typed columns: ``Unknown``/empty -> NULL; ``Rating`` -> ``age_rating``;
    * ``synopsis``: the raw ``sypnopsis`` text when usable
      (:func:`~anime_recs.data.description.usable_synopsis`), NULL when the title is absent from
      the synopsis file or its synopsis is empty, non-ASCII-only or a "No synopsis" placeholder;
    * ``description``: for every title present in the synopsis file, the cleaned case-study
      template over the raw fields and the raw synopsis (placeholders included);
      for a title absent from it, the metadata-only text of
      :func:`~anime_recs.data.description.describe_metadata`;
    * ``has_description``: ``description IS NOT NULL`` (every accepted title has one);
    * ``description_source``: ``synopsis`` or ``metadata``.
    """
    rows = []
    for anime_id, row in anime.items():
        syn_row = synopses.get(anime_id)
        raw_synopsis = syn_row[SYNOPSIS_COLUMN] if syn_row is not None else None
        if syn_row is None:
            description = describe_metadata(
                row[ANIME_NAME_COLUMN],
                row["Type"],
                row["Producers"],
                row["Studios"],
                row["Source"],
                row["Premiered"],
                row["Genres"],
            )
        else:
            description = describe(
                row[ANIME_NAME_COLUMN],
                row["Type"],
                raw_synopsis,
                row["Producers"],
                row["Studios"],
                row["Source"],
                row["Premiered"],
                row["Genres"],
            )
        values = {
            "anime_id": anime_id,
            "name": row[ANIME_NAME_COLUMN],
            **{k: parse_string(row[c]) for k, c in ANIME_STRING_COLUMNS.items()},
            **{k: parse_int(row[c]) for k, c in ANIME_INT_COLUMNS.items()},
            **{k: parse_double(row[c]) for k, c in ANIME_DOUBLE_COLUMNS.items()},
            "synopsis": usable_synopsis(raw_synopsis),
            "description": description,
            "has_description": description is not None,
            "description_source": FROM_METADATA if syn_row is None else FROM_SYNOPSIS,
        }
        rows.append(tuple(values[f.name] for f in ANIME_SCHEMA.fields))
    return rows


# --------------------------------------------------------------------------------------------
# Ratings (Spark, built-in functions only)
# --------------------------------------------------------------------------------------------


def read_rating_lines(spark: SparkSession, path: str | Path) -> DataFrame:
    """The data lines of the ratings file as ``line, block_start, row_pos`` (header dropped).

    ``(block_start, row_pos)`` orders the lines in file order (see the module docstring).
    """
    low_33_bits = (1 << 33) - 1
    lines = spark.read.text(str(path)).select(
        F.col("value").alias("line"),
        F.input_file_block_start().alias("block_start"),
        F.monotonically_increasing_id().alias("row_pos"),
    )
    is_header = (F.col("block_start") == 0) & (F.col("row_pos").bitwiseAND(F.lit(low_33_bits)) == 0)
    return lines.filter(~is_header)


def _id_reason(t: Column) -> Column:
    """Spark twin of :func:`id_reason` on a trimmed field (fast path first: one regex)."""
    return (
        F.when(t.rlike(r"^[0-9]{1,9}$"), F.lit(None).cast("string"))
        .when(t == "", F.lit(MISSING_ID))
        .when(t.rlike(r"^-[0-9]+$"), F.lit(NEGATIVE_ID))
        .when(~t.rlike(r"^[0-9]+$"), F.lit(NON_NUMERIC_ID))
        .when(t.cast("double") > MAX_INT, F.lit(ID_OUT_OF_RANGE))
    )


def _rating_reason(t: Column) -> Column:
    """Why a trimmed rating field is invalid, or NULL for an integer (``7``, ``+7``, ``7.0``)
    in 1..10 (fast path first: one regex)."""
    integral = t.rlike(r"^[+-]?[0-9]+(\.0*)?$")
    decimal = t.rlike(r"^[+-]?([0-9]+\.[0-9]*|\.[0-9]+)$")
    value = t.cast("double")
    return (
        F.when(t.rlike(r"^([1-9]|10)$"), F.lit(None).cast("string"))
        .when(t == "", F.lit(MISSING_RATING))
        .when(integral & ((value < 1) | (value > 10)), F.lit(RATING_OUT_OF_RANGE))
        .when(integral, F.lit(None).cast("string"))
        .when(decimal, F.lit(NON_INTEGER_RATING))
        .otherwise(F.lit(NON_NUMERIC_RATING))
    )


def split_fields(lines: DataFrame, n_columns: int) -> DataFrame:
    """Split CSV data lines (``line, block_start, row_pos``) of a file with ``n_columns``
    columns into trimmed fields, unquoted when wrapped in double quotes.

    Output ``record`` (the line without a stray final ``\\r``), ``block_start, row_pos``,
    ``_line_reason`` (``empty_line``, ``unparseable``, ``wrong_field_count`` or NULL) and
    ``_clean`` (the fields).
    """
    require_columns(lines.columns, ("line", "block_start", "row_pos"), "split_fields")
    quoted = r'^\s*"([^"]*)"\s*$'

    line = F.col("line")
    step1 = lines.select(
        # the text reader already splits on \n, \r\n and \r; drop a stray final \r
        F.when(line.endswith("\r"), F.expr("substring(line, 1, length(line) - 1)"))
        .otherwise(line)
        .alias("record"),
        "block_start",
        "row_pos",
    ).select("*", F.split("record", ",", -1).alias("_fields"))
    fields = F.col("_fields")
    has_quote = F.col("record").contains('"')
    bad_quoting = has_quote & ~F.forall(fields, lambda f: f.rlike(quoted) | ~f.contains('"'))
    clean = F.when(
        has_quote, F.transform(fields, lambda f: F.trim(F.regexp_replace(f, quoted, "$1")))
    ).otherwise(F.transform(fields, lambda f: F.trim(f)))
    step2 = step1.select(
        "record",
        "block_start",
        "row_pos",
        F.when(F.trim("record") == "", F.lit(EMPTY_LINE))
        .when(bad_quoting, F.lit(UNPARSEABLE))
        .when(F.size(fields) != n_columns, F.lit(WRONG_FIELD_COUNT))
        .alias("_line_reason"),
        clean.alias("_clean"),
    )
    return step2


def parse_rating_lines(lines: DataFrame, columns: list[str]) -> DataFrame:
    """Parse ratings lines with the header ``columns`` (fields found by name).

    Input ``line, block_start, row_pos``; output ``user_id, anime_id, rating`` (INT, NULL when
    rejected), ``record`` (the line), ``reason`` (NULL when valid; row-level rules of the module
    docstring, first failing check wins), ``block_start, row_pos``. Built-in functions only;
    a well-formed line costs one regular expression per field.
    """
    idx = {c: columns.index(c) for c in REQUIRED_COLUMNS[RATINGS_FILE]}
    step2 = split_fields(lines, len(columns))
    u = F.col("_clean")[idx["user_id"]]
    a = F.col("_clean")[idx["anime_id"]]
    r = F.col("_clean")[idx["rating"]]
    step3 = step2.select(
        "record",
        "block_start",
        "row_pos",
        u.alias("_u"),
        a.alias("_a"),
        r.alias("_r"),
        F.coalesce(F.col("_line_reason"), _id_reason(u), _id_reason(a), _rating_reason(r)).alias(
            "reason"
        ),
    )
    ok = F.col("reason").isNull()
    return step3.select(
        F.when(ok, F.col("_u").cast("int")).alias("user_id"),
        F.when(ok, F.col("_a").cast("int")).alias("anime_id"),
        F.when(ok, F.col("_r").cast("double").cast("int")).alias("rating"),
        "record",
        "reason",
        "block_start",
        "row_pos",
    )


def reject_unknown_anime(df: DataFrame, anime_ids: DataFrame) -> DataFrame:
    """Set ``reason = 'unknown_anime_id'`` on valid rows whose ``anime_id`` is not in
    ``anime_ids`` (one INT column ``anime_id``, small: broadcast)."""
    for frame, cols in ((df, ("anime_id", "reason")), (anime_ids, ("anime_id",))):
        require_columns(frame.columns, cols, "reject_unknown_anime")
    known = F.broadcast(
        anime_ids.select(F.col("anime_id").alias("_known_id")).distinct()
    ).withColumn("_known", F.lit(True))
    joined = df.join(known, df["anime_id"] == known["_known_id"], "left")
    reason = F.when(
        F.col("reason").isNull() & F.col("_known").isNull(), F.lit(UNKNOWN_ANIME_ID)
    ).otherwise(F.col("reason"))
    return joined.select(*[reason.alias(c) if c == "reason" else F.col(c) for c in df.columns])


def reject_duplicates(df: DataFrame, values: tuple[str, ...] = ("rating",)) -> DataFrame:
    """Set ``reason = 'duplicate_key'`` on every valid row but the first, in file order
    ``(block_start, row_pos)``, of each (user_id, anime_id); drop the order columns and
    the record of accepted rows.

    One shuffle: a window partitioned by the key of valid rows; rejected rows get their own
    unique partition key (``row_pos``) so they do not pile up in one NULL-key partition.
    Output ``user_id, anime_id, <values>, record, reason`` (``values``: the value columns
    kept, NULL on rejected rows).
    """
    needed = ("user_id", "anime_id", *values, "record", "reason", "block_start", "row_pos")
    require_columns(df.columns, needed, "reject_duplicates")
    valid = F.col("reason").isNull()
    window = Window.partitionBy(
        F.when(valid, F.col("user_id")),
        F.when(valid, F.col("anime_id")),
        F.when(~valid, F.col("row_pos")),
    ).orderBy("block_start", "row_pos")
    ranked = df.select("*", F.row_number().over(window).alias("_rank"))
    reason = F.when(valid & (F.col("_rank") > 1), F.lit(DUPLICATE_KEY)).otherwise(F.col("reason"))
    ok = reason.isNull()
    return ranked.select(
        F.when(ok, F.col("user_id")).alias("user_id"),
        F.when(ok, F.col("anime_id")).alias("anime_id"),
        *[F.when(ok, F.col(v)).alias(v) for v in values],
        F.when(~ok, F.col("record")).alias("record"),
        reason.alias("reason"),
    )


# --------------------------------------------------------------------------------------------
# The whole ingest
# --------------------------------------------------------------------------------------------


def parse_ratings(
    spark: SparkSession, raw_dir: str | Path, columns: list[str], anime_ids: DataFrame
) -> DataFrame:
    """The ratings file judged line by line (lazy): ``user_id, anime_id, rating`` (NULL when
    rejected), ``record`` (NULL when accepted) and ``reason`` (NULL when accepted): the row
    rules (:func:`parse_rating_lines`, header ``columns``), titles missing from ``anime_ids``
    (:func:`reject_unknown_anime`) and duplicates, the first in file order kept
    (:func:`reject_duplicates`)."""
    lines = read_rating_lines(spark, input_path(raw_dir, RATINGS_FILE))
    return (
        parse_rating_lines(lines, columns)
        .transform(reject_unknown_anime, anime_ids)
        .transform(reject_duplicates)
    )


def cold_titles(
    anime_rows: dict[int, dict[str, str]], ratings: DataFrame, fraction: float
) -> list[int]:
    """The cold-title holdout of these ratings: :func:`~anime_recs.data.split.newest_titles` of
    the rated titles by the start of airing in ``anime.csv`` (``Aired``, else ``Premiered``)."""
    if fraction == 0:
        return []
    rated = [r[0] for r in ratings.select("anime_id").distinct().collect()]
    starts = {i: start_month(row["Aired"], row["Premiered"]) for i, row in anime_rows.items()}
    return newest_titles(starts, rated, fraction)


def ingest(
    spark: SparkSession,
    raw_dir: str | Path,
    test_fraction: float,
    split_seed: int,
    cold_title_fraction: float,
) -> IngestResult:
    """Read and validate the three files of ``raw_dir``; build the three output frames.

    Runs the fail-fast checks, parses the anime files on the driver, parses the ratings with
    Spark, persists the parsed ratings (one scan, one shuffle) and counts them per reason.
    Does not check the rejected-fraction limit (:func:`check_rejections`) and writes nothing.
    """
    headers = check_inputs(raw_dir, spark)
    anime_file = parse_anime_csv(read_text(input_path(raw_dir, ANIME_FILE), spark))
    synopsis_text = read_text(input_path(raw_dir, SYNOPSIS_FILE), spark)
    synopsis_file = parse_synopsis_csv(synopsis_text, anime_file.accepted)
    anime = spark.createDataFrame(
        anime_records(anime_file.accepted, synopsis_file.accepted), ANIME_SCHEMA
    )
    anime_ids = spark.createDataFrame([(i,) for i in anime_file.accepted], "anime_id INT")

    parsed = parse_ratings(spark, raw_dir, headers[RATINGS_FILE], anime_ids).persist(
        StorageLevel.MEMORY_AND_DISK
    )
    by_reason = {row["reason"]: row["count"] for row in parsed.groupBy("reason").count().collect()}
    accepted = by_reason.pop(None, 0)
    ratings_counts = FileCounts(accepted + sum(by_reason.values()), accepted, by_reason)

    accepted_ratings = parsed.filter(F.col("reason").isNull()).select(
        "user_id", "anime_id", "rating"
    )
    cold = cold_titles(anime_file.accepted, accepted_ratings, cold_title_fraction)
    ratings = accepted_ratings.transform(assign_split, test_fraction, split_seed, cold)
    driver_rejects = anime_file.rejected + synopsis_file.rejected
    rejected = parsed.filter(F.col("reason").isNotNull()).select(
        F.lit(RATINGS_FILE).alias("source"), "record", "reason"
    )
    if driver_rejects:
        rejected = spark.createDataFrame(driver_rejects, REJECTED_ROWS_SCHEMA).unionByName(rejected)
    counts = {
        ANIME_FILE: anime_file.counts,
        SYNOPSIS_FILE: synopsis_file.counts,
        RATINGS_FILE: ratings_counts,
    }
    return IngestResult(anime, ratings, rejected, counts, cached=parsed)


def log_counts(counts: dict[str, FileCounts]) -> None:
    """Log, per file, the data records, accepted and rejected counts per reason."""
    for name, c in counts.items():
        log.info(
            "%s: %d records, %d accepted, %d rejected %s",
            name,
            c.total,
            c.accepted,
            c.rejected_total,
            dict(sorted(c.rejected.items())),
        )


def rejected_fraction(counts: FileCounts) -> float:
    """``rejected / total`` data records of one file (0 for a file without data records)."""
    return counts.rejected_total / counts.total if counts.total else 0.0


def check_rejections(counts: dict[str, FileCounts], max_rejected_fraction: float) -> None:
    """Raise :class:`JobError` (one line, with the counts) when any file's
    :func:`rejected_fraction` exceeds ``max_rejected_fraction``."""
    failures = []
    for name, c in counts.items():
        fraction = rejected_fraction(c)
        if fraction > max_rejected_fraction:
            reasons = ", ".join(f"{r}={n}" for r, n in sorted(c.rejected.items()))
            failures.append(
                f"{name} {c.rejected_total}/{c.total} rejected ({fraction:.2%}: {reasons})"
            )
    if failures:
        raise JobError(
            f"rejected fraction above ingest.max_rejected_fraction={max_rejected_fraction}: "
            + "; ".join(failures)
        )
