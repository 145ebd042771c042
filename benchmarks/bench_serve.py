"""Benchmark: the serve job (``jobs/serve.py``) on a lake, as a scheduled run starts it.

Runs the job in a fresh process (Spark start included) ``--repeats`` times, each with the
RSS of the whole process tree (Python driver, JVM, Python workers) sampled every 50 ms, and
reads the step's own figures from its log: the input digests' time and the rows and users
written. After the runs it compares the contents of the last two ``user_recommendations``
versions (``lakehouse.table_digest``): a rerun on the same inputs writes the same rows.

    .venv/bin/python -m benchmarks.bench_serve --repeats 2 -- --conf conf/local.yaml \\
        --set paths.lake=$FULL/lake ... --set serve.recommender=jaccard_cf

Everything after ``--`` is passed to ``jobs/serve.py``. Writes JSON into ``bench/``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.bench_jaccard import PeakRss
from benchmarks.bench_output import write_results

REPO_ROOT = Path(__file__).resolve().parents[1]
DONE = re.compile(r"step serve: done in ([\d.]+)s version=(\d+) rows=(\d+) users=(\d+)")


def run_once(job_args: list[str], log: Path) -> dict:
    start = time.perf_counter()
    with PeakRss() as rss, log.open("w") as out:
        code = subprocess.call(
            # --force: each repeat serves (an unchanged serve stage is otherwise skipped)
            [sys.executable, str(REPO_ROOT / "jobs" / "serve.py"), "--force", *job_args],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wall = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"jobs/serve.py exited {code}; see {log}")
    step = DONE.search(log.read_text())
    return {
        "wall_s": round(wall, 1),
        "step_s": float(step[1]),
        "version": int(step[2]),
        "rows": int(step[3]),
        "users": int(step[4]),
        "peak_tree_rss_gib": round(rss.peak / 2**30, 2),
    }


def lake_of(job_args: list[str]) -> str:
    for arg in job_args:
        if arg.startswith("paths.lake="):
            return arg.split("=", 1)[1]
    raise SystemExit("pass --set paths.lake=LAKE to the job")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    own, job_args = (
        (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    )
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default="bench/serve")
    args = parser.parse_args(own)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    runs = []
    for i in range(args.repeats):
        runs.append(run_once(job_args, Path(args.out) / f"serve-{i}.log"))
        print(f"run {i + 1}: {runs[-1]}", flush=True)
    same = None
    if len(runs) >= 2:
        from anime_recs.config import load_config
        from anime_recs.lakehouse import table_digest
        from anime_recs.spark import get_spark
        from anime_recs.tables import USER_RECOMMENDATIONS

        sets = ["spark.master=local[2]", "spark.shuffle_partitions=2"]
        conf = str(REPO_ROOT / "conf" / "local.yaml")
        spark = get_spark(load_config(conf, sets).spark, "ERROR", "bench-serve")
        lake = lake_of(job_args)
        last, previous = runs[-1]["version"], runs[-2]["version"]
        same = table_digest(spark, lake, USER_RECOMMENDATIONS, last) == table_digest(
            spark, lake, USER_RECOMMENDATIONS, previous
        )
        spark.stop()
        print(f"user_recommendations versions {previous} and {last} equal: {same}")
    write_results(args.out, "serve", {"job_args": job_args, "runs": runs, "rerun_equal": same})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
