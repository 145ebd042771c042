"""The ingest stage: the three MAL files into the Delta tables ``anime``, ``ratings`` and
``rejected_rows`` (:mod:`anime_recs.data.ingest`; validation rules and reason codes:
:mod:`anime_recs.data.rules`), and the optional ``animelist.csv``, when present, into
``watch_status`` (:mod:`anime_recs.data.watch_status`)."""

from __future__ import annotations

import logging

from pyspark.sql import SparkSession

from anime_recs import tables
from anime_recs.config import AppConfig
from anime_recs.data.files import check_inputs
from anime_recs.data.ingest import check_rejections, ingest, log_counts
from anime_recs.data.watch_status import animelist_present, ingest_watch_status
from anime_recs.lakehouse import table_exists, write_table
from anime_recs.paths import is_uri
from anime_recs.runlog import StageRun, file_versions
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
    """The raw files, the optional ones too, as inputs of the stage's fingerprint (size and
    mtime, ``missing`` for an absent one; URIs by path)."""
    return file_versions(config.paths.raw, [*tables.RAW_FILES, *tables.OPTIONAL_RAW_FILES])


def run(spark: SparkSession, config: AppConfig, run: StageRun) -> None:
    """Read and validate the raw files, then overwrite the tables (none when a file's rejected
    fraction exceeds ``ingest.max_rejected_fraction``). ``watch_status`` is written only when
    ``animelist.csv`` is present; without it an existing ``watch_status`` is left as it is."""
    raw, lake, cfg = config.paths.raw, config.paths.lake, config.ingest
    watch = None
    with step("read and validate") as facts:
        result = ingest(spark, raw, cfg.test_fraction, cfg.split_seed, cfg.cold_title_fraction)
        if animelist_present(raw, spark):
            watch = ingest_watch_status(spark, raw, result.anime.select("anime_id"))
            result.counts[tables.ANIMELIST_FILE] = watch.counts
        elif table_exists(spark, lake, tables.WATCH_STATUS):
            log.warning(
                "no %s in %s: table %s left as it is",
                tables.ANIMELIST_FILE,
                raw,
                tables.WATCH_STATUS,
            )
        for name, counts in result.counts.items():
            facts[name] = f"{counts.accepted}/{counts.total}"
    try:
        log_counts(result.counts)
        check_rejections(result.counts, cfg.max_rejected_fraction)

        rejected = result.rejected
        outputs = [
            (tables.ANIME, result.anime, tables.ANIME_SCHEMA),
            (tables.RATINGS, result.ratings, tables.RATINGS_SCHEMA),
        ]
        rows = {
            tables.ANIME: result.counts[tables.ANIME_FILE].accepted,
            tables.RATINGS: result.counts[tables.RATINGS_FILE].accepted,
            tables.REJECTED_ROWS: sum(c.rejected_total for c in result.counts.values()),
        }
        if watch is not None:
            outputs.append((tables.WATCH_STATUS, watch.rows, tables.WATCH_STATUS_SCHEMA))
            rows[tables.WATCH_STATUS] = watch.counts.accepted
            rejected = rejected.unionByName(watch.rejected)
        outputs.append((tables.REJECTED_ROWS, rejected, tables.REJECTED_ROWS_SCHEMA))
        for name, df, schema in outputs:
            with step(f"write {name}") as facts:
                facts["rows"] = rows[name]
                if name == tables.ANIME:  # every accepted synopsis row gives a description
                    facts["descriptions"] = result.counts[tables.SYNOPSIS_FILE].accepted
                facts["version"] = write_table(df, lake, name, schema)
            log.info("output table %s: version %s, %s rows", name, facts["version"], rows[name])
    finally:
        result.unpersist()
        if watch is not None:
            watch.unpersist()
