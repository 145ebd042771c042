"""Helper process for the killed-export test: export slowly, to be killed.

usage: python slow_export.py TARGET ROWS SLEEP_PER_ROW_S
Exports ROWS user_recommendations rows through anime_recs.serve.export (the path the serve job
uses) from a frame whose Python UDF sleeps, so the export is still writing when the test kills
the process.
"""

import sys
import time

from pyspark.sql import functions as F

from anime_recs.serve.export import export_recommendations
from anime_recs.spark import get_spark


def main() -> None:
    target, rows, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    spark = get_spark(
        master="local[2]", shuffle_partitions=2, driver_memory="1g", log_level="ERROR"
    )

    @F.udf("int")
    def slow(x):
        time.sleep(pause)
        return x

    df = spark.range(rows, numPartitions=4).select(
        slow(F.col("id").cast("int")).alias("user_id"),
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
    print("exporting", flush=True)
    export_recommendations(df, target)
    print("done", flush=True)


if __name__ == "__main__":
    main()
