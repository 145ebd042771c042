"""Print one user's promoted titles and recommendations from the Delta tables alone.

Reads ``ratings``, ``watch_status`` (when present) and ``anime`` for the user, and per
recommender (default: every one the lake can serve: those with rows in ``anime_neighbors``, the
peers, ``hybrid``, ``popularity``) what it lists from; serves the one user with the serve
stage's rules. Writes nothing. Unknown
user or recommender: exit status 2 and one line naming it. Code: ``anime_recs.serve.lookup``.

    python jobs/lookup.py --user 42 [--recommender jaccard_cf ...] [--n 10] [--conf conf/local.yaml]
"""

from __future__ import annotations

from anime_recs.cli import job_parser, run_main, session, start_job
from anime_recs.serve import lookup


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(__doc__)
    parser.add_argument("--user", type=int, required=True, help="user_id")
    parser.add_argument("--recommender", nargs="+", default=[], metavar="NAME")
    parser.add_argument("--n", type=int, default=None, help="titles per list (default serve.n)")
    args = parser.parse_args(argv)
    config = start_job("lookup", args)
    n = lookup.list_length(args.n, config.serve.n)  # before paying for the JVM
    spark = session(config, args.log_level, "lookup")
    lines = lookup.lookup_lines(spark, config, args.user, args.recommender, n)
    print("\n".join(lines))  # noqa: T201 - the job's output
    return 0


if __name__ == "__main__":
    run_main(main)
