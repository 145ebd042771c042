"""Ingest the MAL 2020 files into the Delta tables ``anime``, ``ratings`` and ``rejected_rows``.

Reads ``<paths.raw>/anime.csv``, ``anime_with_synopsis.csv``, ``rating_complete.csv`` and, when
present, ``animelist.csv`` with ``watching_status.csv``; writes ``anime``, ``ratings`` (split
train/test by a hash of (user_id, anime_id, ingest.split_seed)), ``rejected_rows`` (source file,
raw record, reason code) and, from ``animelist.csv``, ``watch_status``, each overwritten. Exit
status 2 and one line on stderr when a file or required column is missing, a file is empty, or
a file's rejected fraction exceeds ``ingest.max_rejected_fraction`` (then no table is written).
Runs the registry's ``ingest`` stage: recorded in ``pipeline_runs``, skipped when unchanged
(``--force`` runs it anyway). Stage code: ``anime_recs.data.stage``.

Local:   python jobs/ingest.py --conf conf/local.yaml [--set paths.raw=data/raw/sample]
Cluster: spark-submit --master spark://HOST:7077 --packages io.delta:delta-spark_2.13:4.0.0 \\
           jobs/ingest.py --conf conf/cluster.yaml
"""

from __future__ import annotations

from anime_recs.cli import run_job, run_main


def main(argv: list[str] | None = None) -> int:
    return run_job("ingest", argv, __doc__)


if __name__ == "__main__":
    run_main(main)
