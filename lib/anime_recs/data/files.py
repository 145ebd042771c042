"""The raw files: where they are, their text, and the fail-fast checks of their headers.

``anime.csv`` and ``anime_with_synopsis.csv`` are small (~7 MB) and read whole
(:func:`read_text`); of ``rating_complete.csv`` only the head is read here (:func:`read_head`),
its lines are Spark's (:mod:`anime_recs.data.rating_lines`). A local ``paths.raw`` is read with
Python file I/O (strict UTF-8, ``utf-8-sig`` for a BOM), so it is checked before Spark starts;
a URI (``s3a://``, ``file://``) is read through Spark (``wholetext`` for the whole text).

Fail fast (:class:`JobError`, one line naming the file/column; ``run_main`` exits 2)
    a missing file; an empty file (no header line); invalid UTF-8 in a local anime file or in
    the ratings header; a required column missing from the header (a renamed column counts as
    missing); a column name repeated in the header; a header-only file (no data rows). Extra
    columns are allowed: they are ignored and logged. Columns are found by name, so their order
    does not matter (:data:`~anime_recs.data.rules.REQUIRED_COLUMNS`).
"""

from __future__ import annotations

import csv
import io
import logging
from collections import Counter
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from anime_recs.data.rules import REQUIRED_COLUMNS
from anime_recs.errors import JobError
from anime_recs.paths import is_uri
from anime_recs.tables import RATINGS_FILE, RAW_FILES

log = logging.getLogger(__name__)


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
