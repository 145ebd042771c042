"""Helper process for the crash-safety test: overwrite a Delta table slowly, to be killed.

usage: python slow_writer.py LAKE ROWS SLEEP_PER_ROW_S
Writes ROWS ratings rows through anime_recs.lakehouse.write_table (the path every stage uses)
with a Python UDF that sleeps, so the write is still running when the test kills the process.
"""

import sys
import time

from pyspark.sql import functions as F

from anime_recs.lakehouse import write_table
from anime_recs.spark import get_spark
from anime_recs.tables import RATINGS, RATINGS_SCHEMA


def main() -> None:
    lake, rows, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    spark = get_spark(
        master="local[2]", shuffle_partitions=2, driver_memory="1g", log_level="ERROR"
    )

    @F.udf("int")
    def slow(x):
        time.sleep(pause)
        return x

    df = spark.range(rows, numPartitions=4).select(
        slow(F.col("id").cast("int")).alias("user_id"),
        F.lit(99).alias("anime_id"),
        F.lit(10).alias("rating"),
        F.lit("train").alias("split"),
    )
    print("writing", flush=True)
    write_table(df, lake, RATINGS, RATINGS_SCHEMA)
    print("done", flush=True)


if __name__ == "__main__":
    main()
