"""Check the lake's tables (log, files, schema contract, keys, run log), or restore one.

Reads every Delta table under ``paths.lake`` (or the named ones) and ``pipeline_runs``; prints
one line per table (``ok ...`` or ``FAIL ...: finding``) and exits 1 on any finding
(``anime_recs.lakecheck``; the log is read by Delta, checkpoints and expired commits included).
``--quick`` lists the data files instead of reading them (and skips the key check).
``--restore TABLE --to-version N`` runs ``RESTORE TABLE ... TO VERSION AS OF N`` and appends the
restore to ``pipeline_runs``; a version Delta no longer keeps exits 2 naming the oldest it does.

Local:   python jobs/check.py --conf conf/local.yaml [--quick] [TABLE ...]
         python jobs/check.py --conf conf/local.yaml --restore ratings --to-version 2
Cluster: spark-submit --master spark://HOST:7077 --packages io.delta:delta-spark_2.13:4.0.0 \\
           --py-files dist/anime_recs-0.1.0-py3-none-any.zip jobs/check.py --conf conf/cluster.yaml
"""

from __future__ import annotations

from anime_recs import lakecheck, runlog
from anime_recs.cli import JobError, job_parser, run_main, session, start_job


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(__doc__)
    parser.add_argument("tables", nargs="*", metavar="TABLE", help="tables to check (all)")
    parser.add_argument("--quick", action="store_true", help="stat the files, do not read them")
    parser.add_argument("--restore", metavar="TABLE", help="restore this table")
    parser.add_argument("--to-version", type=int, metavar="N", help="version to restore")
    args = parser.parse_args(argv)
    if (args.restore is None) != (args.to_version is None):
        raise JobError("--restore TABLE and --to-version N go together")
    config = start_job("check", args)
    spark = session(config, args.log_level, "check")
    lake = config.paths.lake
    if args.restore:
        try:
            version = lakecheck.restore(
                spark, lake, args.restore, args.to_version, runlog.new_run_id()
            )
        except lakecheck.RestoreError as exc:
            raise JobError(str(exc)) from exc
        print(f"restored {args.restore} to version {args.to_version}: now version {version}")
        return 0
    checks = lakecheck.check_lake(spark, lake, args.tables or None, args.quick)
    if not checks:
        raise JobError(f"no Delta table under {lake}")
    for check in checks:
        print(check.line())
    return 0 if all(c.ok for c in checks) else 1


if __name__ == "__main__":
    run_main(main)
