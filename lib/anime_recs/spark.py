"""The one SparkSession builder used by every job and by the tests.

Delta Lake is set up the standard way for delta-spark: the SQL extension and catalog, and the
Delta jars resolved from Maven by Ivy (``configure_spark_with_delta_pip``), cached in
``~/.ivy2*`` after the first run. Under ``spark-submit`` the JVM already exists, so the jars must
come from ``--packages`` (see :data:`DELTA_PACKAGE`) or the image, and the master from the
command line; the builder then only adds the SQL settings.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

DELTA_PACKAGE = "io.delta:delta-spark_2.13:4.0.0"

DELTA_SQL_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


def running_under_spark_submit() -> bool:
    """True when the JVM was started by ``spark-submit`` (it hands Python a gateway port)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def get_spark(
    app_name: str = "anime-recs",
    master: str | None = "local[*]",
    shuffle_partitions: int = 8,
    driver_memory: str | None = "6g",
    log_level: str = "WARN",
    arrow_batch_size: int = 10000,
    extra_conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """Build (or get) the SparkSession with Delta configured.

    ``master=None`` leaves the master to ``spark-submit``/the environment.
    """
    conf: dict[str, str] = {
        **DELTA_SQL_CONF,
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(arrow_batch_size),
        "spark.sql.session.timeZone": "UTC",
        # Delta: keep reruns cheap and the history readable
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
        "spark.sql.ansi.enabled": "false",
        # Delta rebuilds a table's file list from its log with this many shuffle partitions on
        # first access (default 50, sized for huge logs); our logs hold at most a few hundred
        # files, so one partition makes the first scan of a table cheaper (measured with
        # python -m benchmarks.bench_jaccard_write --cold-scan: docs/results-generated.md)
        "spark.databricks.delta.snapshotPartitions": "1",
    }
    if not running_under_spark_submit():
        conf.update(
            {
                "spark.ui.enabled": "false",
                "spark.ui.showConsoleProgress": "false",
                # executors' Python must be the project's interpreter (the venv)
                "spark.pyspark.python": sys.executable,
                "spark.pyspark.driver.python": sys.executable,
            }
        )
        # pyspark's SparkContext takes the workers' interpreter from PYSPARK_PYTHON only
        # (default "python3" on PATH, i.e. not the venv); the conf above is not read for it
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        if driver_memory:
            conf["spark.driver.memory"] = driver_memory
    conf.update(extra_conf or {})

    builder = SparkSession.builder.appName(app_name)
    if master and not running_under_spark_submit():
        builder = builder.master(master)
    for key, value in conf.items():
        builder = builder.config(key, value)
    if not running_under_spark_submit():
        from delta import configure_spark_with_delta_pip

        builder = configure_spark_with_delta_pip(builder)

    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(log_level)
    log.info("spark session: master=%s version=%s", spark.sparkContext.master, spark.version)
    return spark
