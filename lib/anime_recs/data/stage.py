"""The ingest stage: the three MAL files into the Delta tables ``anime``, ``ratings`` and
``rejected_rows`` (validation rules and reason codes: :mod:`anime_recs.data.ingest`)."""

from __future__ import annotations

import logging

from pyspark.sql import SparkSession

from anime_recs import tables
from anime_recs.config import AppConfig
from anime_recs.data.ingest import (
    ANIME_FILE,
    RATINGS_FILE,
    SYNOPSIS_FILE,
    check_inputs,
    check_rejections,
    ingest,
    log_counts,
)
from anime_recs.lakehouse import write_table
from anime_recs.paths import is_uri
from anime_recs.runlog import file_versions
from anime_recs.steps import step

log = logging.getLogger(__name__)


def check_local_inputs(config: AppConfig) -> None:
    """Fail fast on local raw files before a session is paid for (URIs need Spark: skipped)."""
    raw = config.paths.raw
    if not is_uri(raw):
        with step("check inputs") as facts:
            facts["raw"] = raw
            check_inputs(raw)


def raw_file_versions(config: AppConfig) -> dict[str, str]:
    """The raw files as inputs of the stage's fingerprint (size and mtime; URIs by path)."""
    return file_versions(config.paths.raw, list(tables.RAW_FILES))


def run(spark: SparkSession, config: AppConfig) -> None:
    """Read and validate the raw files, then overwrite the three tables (none when a file's
    rejected fraction exceeds ``ingest.max_rejected_fraction``)."""
    raw, lake, cfg = config.paths.raw, config.paths.lake, config.ingest
    with step("read and validate") as facts:
        result = ingest(spark, raw, cfg.test_fraction, cfg.split_seed, cfg.cold_title_fraction)
        for name, counts in result.counts.items():
            facts[name] = f"{counts.accepted}/{counts.total}"
    try:
        log_counts(result.counts)
        check_rejections(result.counts, cfg.max_rejected_fraction)

        outputs = (
            (tables.ANIME, result.anime, tables.ANIME_SCHEMA),
            (tables.RATINGS, result.ratings, tables.RATINGS_SCHEMA),
            (tables.REJECTED_ROWS, result.rejected, tables.REJECTED_ROWS_SCHEMA),
        )
        rows = {
            tables.ANIME: result.counts[ANIME_FILE].accepted,
            tables.RATINGS: result.counts[RATINGS_FILE].accepted,
            tables.REJECTED_ROWS: sum(c.rejected_total for c in result.counts.values()),
        }
        for name, df, schema in outputs:
            with step(f"write {name}") as facts:
                facts["rows"] = rows[name]
                if name == tables.ANIME:  # every accepted synopsis row gives a description
                    facts["descriptions"] = result.counts[SYNOPSIS_FILE].accepted
                facts["version"] = write_table(df, lake, name, schema)
            log.info("output table %s: version %s, %s rows", name, facts["version"], rows[name])
    finally:
        result.unpersist()
