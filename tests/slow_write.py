"""Kill tests: a helper process that writes slowly, and the kill in the middle of its write.

As a script (the process to kill)::

    python slow_write.py table LAKE ROWS SLEEP_PER_ROW_S   # ratings via lakehouse.write_table
    python slow_write.py export TARGET ROWS SLEEP_PER_ROW_S  # serve.export.export_recommendations

writes ROWS rows through the path the jobs use, from a Python UDF that sleeps, so the write is
still running when the test kills it; prints ``writing`` when it starts. :func:`kill_mid_write`
runs it and SIGKILLs it once the write is visibly under way.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

STARTED = b"writing"


def kill_mid_write(mode: str, target: str | Path, under_way: Callable[[], bool]) -> None:
    """Start this script on ``target`` (400 rows, 50 ms each) and SIGKILL its process group as
    soon as ``under_way()`` holds; fails when the write ends before that."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, __file__, mode, str(target), "400", "0.05"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=env,
    )
    try:
        assert proc.stdout.readline().strip() == STARTED
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None and not under_way():
            time.sleep(0.1)
        assert proc.poll() is None, f"{mode} write finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def main() -> None:
    from pyspark.sql import functions as F

    from anime_recs.config import load_config
    from anime_recs.spark import get_spark

    mode, target, rows, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    conf = str(Path(__file__).resolve().parents[1] / "conf" / "local.yaml")
    sets = ["spark.master=local[2]", "spark.shuffle_partitions=2", "spark.driver_memory=1g"]
    spark = get_spark(load_config(conf, sets).spark, "ERROR", "slow-write")

    @F.udf("int")
    def slow(x):
        time.sleep(pause)
        return x

    user_id = slow(F.col("id").cast("int")).alias("user_id")
    ids = spark.range(rows, numPartitions=4)
    print(STARTED.decode(), flush=True)
    if mode == "table":
        from anime_recs.lakehouse import write_table
        from anime_recs.tables import RATINGS, RATINGS_SCHEMA

        df = ids.select(
            user_id,
            F.lit(99).alias("anime_id"),
            F.lit(10).alias("rating"),
            F.lit("train").alias("split"),
        )
        write_table(df, target, RATINGS, RATINGS_SCHEMA)
    else:
        from anime_recs.serve.export import export_recommendations

        df = ids.select(
            user_id,
            F.lit(1).alias("rank"),
            F.lit(7).alias("anime_id"),
            F.lit("new").alias("name"),
            F.lit(1.0).alias("score"),
            F.lit("model").alias("source"),
            F.array(F.lit(3)).alias("because"),
            F.lit("jaccard_cf").alias("recommender"),
            F.lit("v").alias("model_version"),
            F.lit("r").alias("run_id"),
        )
        export_recommendations(df, target)
    print("done", flush=True)


if __name__ == "__main__":
    main()
