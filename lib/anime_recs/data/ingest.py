"""Reading and validating the three MAL 2020 files into the ``anime``, ``ratings`` and
``rejected_rows`` tables (this module is the ingest's I/O edge): the checks, the parsers and
the counts put together.

The jobs
    the files and their fail-fast checks: :mod:`anime_recs.data.files`; the columns read and
    the row rules with their reason codes: :mod:`anime_recs.data.rules`; ``anime.csv`` and
    ``anime_with_synopsis.csv`` (small, ~7 MB) parsed on the driver into the ``anime`` rows:
    :mod:`anime_recs.data.anime_files`; ``rating_complete.csv`` (57.6M rows, ~800 MB) parsed
    by Spark with built-in SQL functions only: :mod:`anime_recs.data.rating_lines`. The parsed
    ratings are persisted once so that the counts and both output tables reuse them.

Fail fast (:class:`JobError`, one line naming the file/column; ``run_main`` exits 2)
    a missing file; an empty file (no header line); invalid UTF-8 in a local anime file or in
    the ratings header (undecodable bytes in ratings lines become U+FFFD and fail the row
    rules instead); a required
    column missing from the header (a renamed column counts as missing); a column name repeated
    in the header; a header-only file (no data rows) - for all three files, because no later
    stage can work with zero titles or zero ratings, and an empty download is an error.
    Extra columns are allowed: they are ignored and logged. Columns are found by name, so their
    order does not matter. Required columns are the ones the ingest uses
    (:data:`~anime_recs.data.rules.REQUIRED_COLUMNS`); the other ``anime.csv`` columns
    (Watching ... Score-1) are optional.

Rejected-fraction limit
    Checked per file (:func:`check_rejections`): rejected / data records of that file. Per file
    and not overall, because an overall fraction is dominated by the 57.6M ratings and would
    let a half-broken ``anime.csv`` pass. The job checks it before writing anything, so a
    failed check leaves every table at its previous version.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from anime_recs.data.anime_files import anime_records, parse_anime_csv, parse_synopsis_csv
from anime_recs.data.files import check_inputs, input_path, read_text
from anime_recs.data.rating_lines import parse_ratings
from anime_recs.data.rules import FileCounts
from anime_recs.data.split import assign_split, newest_titles, start_month
from anime_recs.errors import JobError
from anime_recs.tables import (
    ANIME_FILE,
    ANIME_SCHEMA,
    RATINGS_FILE,
    REJECTED_ROWS_SCHEMA,
    SYNOPSIS_FILE,
)

log = logging.getLogger(__name__)


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
