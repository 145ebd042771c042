"""Serve: the top ``serve.n`` titles of ``serve.recommender`` for every user with a rating.

Reads ``ratings`` (all splits), ``anime``, ``anime_neighbors`` and, when present,
``watch_status`` and ``anime_embeddings`` (an embedding recommender's model version), each at
the version the runner pinned; writes ``user_recommendations`` (overwrite; older versions stay
readable by Delta time travel) and, with ``--export PATH`` (or ``serve.export``), Parquet +
JSON Lines under PATH, published atomically. Runs the registry's ``serve`` stage: recorded in
``pipeline_runs``, skipped when unchanged (``--force`` runs it anyway). Stage code:
``anime_recs.serve.stage``.

Local:   python jobs/serve.py --conf conf/local.yaml [--set serve.recommender=popularity]
             [--export exports/latest]
Cluster: spark-submit --master spark://HOST:7077 --packages io.delta:delta-spark_2.13:4.0.0 \\
           jobs/serve.py --conf conf/cluster.yaml --export /shared/exports/recs
"""

from __future__ import annotations

from anime_recs.cli import run_job, run_main


def main(argv: list[str] | None = None) -> int:
    return run_job("serve", argv, __doc__)


if __name__ == "__main__":
    run_main(main)
