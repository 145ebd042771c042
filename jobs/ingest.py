"""Ingest the MAL 2020 files into the Delta tables ``anime``, ``ratings`` and ``rejected_rows``.

Reads:  ``<paths.raw>/anime.csv``, ``anime_with_synopsis.csv``, ``rating_complete.csv``.
Writes: ``anime`` (one row per title, typed, with the case-study ``description``),
        ``ratings`` (user_id, anime_id, rating 1..10, split train/test by a hash of
        (user_id, anime_id, ingest.split_seed)) and ``rejected_rows`` (source file, raw record,
        reason code), each with mode overwrite, so a rerun gives the same contents.

Fails with exit status 2 and one line on stderr when a file or a required column is missing,
a file is empty or header-only, or a file's rejected fraction exceeds
``ingest.max_rejected_fraction`` (then no table is written). The validation rules and reason
codes are documented in ``anime_recs.data.ingest``.

Local:   python jobs/ingest.py --conf conf/local.yaml [--set paths.raw=data/raw/sample]
Cluster: spark-submit --master spark://HOST:7077 --packages io.delta:delta-spark_2.13:4.0.0 \\
           jobs/ingest.py --conf conf/cluster.yaml
"""

from __future__ import annotations

import logging

from anime_recs import tables
from anime_recs.cli import job_parser, run_main, session, start_job, step
from anime_recs.data.ingest import (
    ANIME_FILE,
    RATINGS_FILE,
    SYNOPSIS_FILE,
    check_inputs,
    check_rejections,
    ingest,
    is_uri,
    log_counts,
)
from anime_recs.lakehouse import write_table

log = logging.getLogger("anime_recs.jobs.ingest")


def main(argv: list[str] | None = None) -> int:
    args = job_parser(__doc__).parse_args(argv)
    config = start_job("ingest", args)
    raw, lake, cfg = config.paths.raw, config.paths.lake, config.ingest

    if not is_uri(raw):  # local files: fail fast before paying for the JVM
        with step("check inputs") as facts:
            facts["raw"] = raw
            check_inputs(raw)
    spark = session(config)

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
    return 0


if __name__ == "__main__":
    run_main(main)
