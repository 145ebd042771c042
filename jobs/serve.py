"""Serve: the top ``serve.n`` titles of ``serve.recommender`` for every user with a rating.

Reads ``ratings`` (all splits), ``anime``, ``anime_neighbors`` and, when present,
``watch_status``; writes ``user_recommendations`` (overwrite; older versions stay readable by
Delta time travel) and, with ``--export PATH`` (or ``serve.export``), Parquet + JSON Lines
under PATH, published atomically. Stage code: ``anime_recs.serve.stage``.

Local:   python jobs/serve.py --conf conf/local.yaml [--set serve.recommender=popularity]
             [--export exports/latest]
Cluster: spark-submit --master spark://HOST:7077 --packages io.delta:delta-spark_2.13:4.0.0 \\
           jobs/serve.py --conf conf/cluster.yaml --export /shared/exports/recs
"""

from __future__ import annotations

import json

from anime_recs.cli import job_parser, run_main, session, start_job
from anime_recs.serve import stage


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(__doc__)
    parser.add_argument("--export", metavar="PATH", help="also export to PATH (serve.export)")
    args = parser.parse_args(argv)
    if args.export:  # a JSON string is a YAML string: the path is never read as a number
        args.overrides.append(f"serve.export={json.dumps(args.export)}")
    config = start_job("serve", args)
    stage.run(session(config, "serve"), config)
    return 0


if __name__ == "__main__":
    run_main(main)
