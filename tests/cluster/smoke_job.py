"""Self-contained spark-submit job for the cluster tests (not a test module).

Writes a Delta table ``<lake>/smoke`` whose rows are computed on the executors, each row
recording where the executor imported ``anime_recs`` from (must be the shipped zip) and the
executor's working directory. Usage::

    spark-submit --master spark://... --py-files anime_recs-*.whl tests/cluster/smoke_job.py LAKE N
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pyspark.sql.types import IntegerType, LongType, StringType, StructField, StructType

from anime_recs.config import load_config
from anime_recs.lakehouse import read_table, write_table
from anime_recs.spark import get_spark

SCHEMA = StructType(
    [
        StructField("id", LongType(), False),
        StructField("square", LongType(), False),
        StructField("partition", IntegerType(), False),
        StructField("anime_recs_file", StringType(), False),
        StructField("executor_cwd", StringType(), False),
    ]
)


def rows(index, iterator):
    import anime_recs  # imported on the executor: from the --py-files zip

    for i in iterator:
        yield (i, i * i, index, anime_recs.__file__, os.getcwd())


def main(lake: str, n: int) -> int:
    conf = str(Path(__file__).resolve().parents[2] / "conf" / "cluster.yaml")
    spark = get_spark(load_config(conf).spark, "ERROR", "cluster-smoke")
    data = spark.sparkContext.range(0, n, numSlices=4).mapPartitionsWithIndex(rows)
    df = spark.createDataFrame(data, SCHEMA)
    version = write_table(df, lake, "smoke", SCHEMA)
    count = read_table(spark, lake, "smoke").count()
    print(f"smoke: master={spark.sparkContext.master} version={version} rows={count}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
