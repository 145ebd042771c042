"""Ingest the MAL 2020 files into the Delta tables ``anime``, ``ratings`` and ``rejected_rows``.

Reads ``<paths.raw>/anime.csv``, ``anime_with_synopsis.csv``, ``rating_complete.csv``; writes
``anime``, ``ratings`` (split train/test by a hash of (user_id, anime_id, ingest.split_seed))
and ``rejected_rows`` (source file, raw record, reason code), each overwritten. Exit status 2
and one line on stderr when a file or required column is missing, a file is empty, or a file's
rejected fraction exceeds ``ingest.max_rejected_fraction`` (then no table is written).
Stage code: ``anime_recs.data.stage``.

Local:   python jobs/ingest.py --conf conf/local.yaml [--set paths.raw=data/raw/sample]
Cluster: spark-submit --master spark://HOST:7077 --packages io.delta:delta-spark_2.13:4.0.0 \\
           jobs/ingest.py --conf conf/cluster.yaml
"""

from __future__ import annotations

from anime_recs.cli import job_parser, run_main, session, start_job
from anime_recs.data import stage


def main(argv: list[str] | None = None) -> int:
    config = start_job("ingest", job_parser(__doc__).parse_args(argv))
    stage.check_local_inputs(config)  # before paying for the JVM
    stage.run(session(config), config)
    return 0


if __name__ == "__main__":
    run_main(main)
