"""The one SparkSession builder used by every job and by the tests.

Delta Lake is set up the standard way for delta-spark: the SQL extension and catalog, and the
Delta jars (:data:`DELTA_PACKAGE`) resolved from Maven by Ivy, cached in ``~/.ivy2*`` after the
first run. Under ``spark-submit`` the JVM already exists, so the jars must come from
``--packages`` or the image, and the master from the command line; the builder then only adds
the SQL settings.

The JVM's log levels come from a ``log4j2.properties`` file the JVM is started with
(:func:`log4j2_properties`), derived from the job's ``--log-level``: at DEBUG Spark's warnings
show, above it only its errors. In local mode the executor runs in the driver's process, and a
failed task's Java trace would reach the screen several times (the executor's ERROR, the
scheduler's "Lost task", the writers' "Aborting job"); a local task is not retried, so the same
trace is in the job's error, which ``cli.run_main`` logs at DEBUG: above DEBUG those loggers
are raised (:data:`LOCAL_TASK_FAILURE_LOGGERS`). On a cluster they stay (executor logs are
elsewhere, and a "Lost task" there may be retried).

What the JVM prints before its logging exists (the JVM's own warnings, Ivy's resolution report
of the Delta jars) is no log4j output and obeys no level: the JVM's stderr is a pipe read by
:class:`JvmStderr`, which logs those start-up lines at DEBUG (and shows them all when the start
fails) and passes everything after the start to stderr unchanged.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
import threading
from pathlib import Path

from pyspark import SparkConf, SparkContext
from pyspark.java_gateway import launch_gateway
from pyspark.sql import SparkSession

from anime_recs.config import SparkConfig

log = logging.getLogger(__name__)

DELTA_PACKAGE = "io.delta:delta-spark_2.13:4.0.0"

DELTA_SQL_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}

#: Loggers that print a failed local task's whole Java trace, and the level that hides it (the
#: scheduler keeps its one-line ERROR "aborting job", its "Lost task" WARN goes).
LOCAL_TASK_FAILURE_LOGGERS = {
    "org.apache.spark.executor.Executor": "FATAL",
    "org.apache.spark.scheduler.TaskSetManager": "ERROR",
    "org.apache.spark.sql.delta.files.DeltaFileFormatWriter": "FATAL",
    "org.apache.spark.sql.execution.datasources.FileFormatWriter": "FATAL",
}

JAVA_OPTIONS = "spark.driver.extraJavaOptions"


def running_under_spark_submit() -> bool:
    """True when the JVM was started by ``spark-submit`` (it hands Python a gateway port)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def jvm_log_levels(log_level: str, local: bool) -> tuple[str, dict[str, str]]:
    """``(root level, {logger: level})`` of the JVM for the job's ``log_level`` (a Python
    level name): WARN at DEBUG, else ERROR with the local task-failure loggers raised."""
    if logging.getLevelName(log_level.upper()) <= logging.DEBUG:
        return "WARN", {}
    return "ERROR", dict(LOCAL_TASK_FAILURE_LOGGERS) if local else {}


def log4j2_properties(root: str, loggers: dict[str, str]) -> str:
    """A log4j2 configuration: everything to stderr at ``root``, ``loggers`` at their level."""
    lines = [
        "status = error",
        "appender.console.type = Console",
        "appender.console.name = console",
        "appender.console.target = SYSTEM_ERR",
        "appender.console.layout.type = PatternLayout",
        "appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex",
        f"rootLogger.level = {root.lower()}",
        "rootLogger.appenderRef.console.ref = console",
    ]
    for i, (name, level) in enumerate(sorted(loggers.items())):
        lines += [f"logger.l{i}.name = {name}", f"logger.l{i}.level = {level.lower()}"]
    return "\n".join(lines) + "\n"


def write_log4j2_file(text: str) -> Path:
    """``text`` in a file of the temp folder named by its content (written once, atomically:
    jobs started together share it)."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"anime-recs-log4j2-{digest}.properties"
    if not path.is_file():
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    return path


def session_conf(settings: SparkConfig, log_level: str, app_suffix: str = "") -> dict[str, str]:
    """Every Spark setting of the session: ``settings`` (``config.spark``), Delta, and, when
    this process starts the JVM, the master, the Delta jars and the log4j2 file."""
    app_name = f"{settings.app_name}{'-' + app_suffix if app_suffix else ''}"
    conf: dict[str, str] = {
        "spark.app.name": app_name,
        **DELTA_SQL_CONF,
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(settings.arrow_batch_size),
        "spark.sql.session.timeZone": "UTC",
        # Delta: keep reruns cheap and the history readable
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
        "spark.sql.ansi.enabled": "false",
        # Delta rebuilds a table's file list from its log with this many shuffle partitions on
        # first access (default 50, sized for huge logs); our logs hold at most a few hundred
        # files, so one partition makes the first scan of a table cheaper (measured with
        # python -m benchmarks.bench_jaccard_write --cold-scan: docs/performance.md)
        "spark.databricks.delta.snapshotPartitions": "1",
    }
    if running_under_spark_submit():
        conf.update(settings.extra)
        return conf
    local = not settings.master or settings.master.startswith("local")  # None: spark's local[*]
    root, loggers = jvm_log_levels(log_level, local)
    log4j2 = write_log4j2_file(log4j2_properties(root, loggers))
    if settings.master:
        conf["spark.master"] = settings.master
    conf.update(
        {
            "spark.jars.packages": DELTA_PACKAGE,
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
    if settings.driver_memory:
        conf["spark.driver.memory"] = settings.driver_memory
    conf.update(settings.extra)
    java_options = f"-Dlog4j2.configurationFile=file:{log4j2}"
    conf[JAVA_OPTIONS] = (
        f"{conf[JAVA_OPTIONS]} {java_options}" if JAVA_OPTIONS in conf else java_options
    )
    return conf


class JvmStderr(threading.Thread):
    """Reads the JVM's stderr (a pipe): keeps the lines printed before :meth:`started`, then
    writes every line to this process's stderr as it comes."""

    def __init__(self, read_fd: int) -> None:
        super().__init__(name="jvm-stderr", daemon=True)
        self.read_fd = read_fd
        self.lock = threading.Lock()
        self.startup: list[bytes] | None = []

    def run(self) -> None:
        with os.fdopen(self.read_fd, "rb", buffering=0) as pipe:
            for line in iter(pipe.readline, b""):
                with self.lock:
                    if self.startup is not None:
                        self.startup.append(line)
                        continue
                os.write(2, line)

    def started(self) -> None:
        """The JVM is up: log what it printed so far at DEBUG, pass the rest through."""
        with self.lock:
            lines, self.startup = self.startup or [], None
        for line in lines:
            log.debug("jvm: %s", line.decode(errors="replace").rstrip())

    def failed(self) -> None:
        """The JVM did not start: what it printed is the diagnosis, show all of it."""
        with self.lock:
            lines, self.startup = self.startup or [], None
        for line in lines:
            os.write(2, line)


def start_jvm(conf: dict[str, str]) -> None:
    """Start the JVM and the SparkContext with ``conf``, its stderr read by :class:`JvmStderr`."""
    spark_conf = SparkConf().setAll(list(conf.items()))
    read_fd, write_fd = os.pipe()
    relay = JvmStderr(read_fd)
    relay.start()
    try:
        gateway = launch_gateway(spark_conf, popen_kwargs={"stderr": write_fd})
        SparkContext(conf=spark_conf, gateway=gateway)
    except BaseException:
        relay.failed()
        raise
    finally:
        os.close(write_fd)
    relay.started()


def get_spark(settings: SparkConfig, log_level: str, app_suffix: str = "") -> SparkSession:
    """Build (or get) the SparkSession with Delta configured, from ``config.spark`` and the
    job's log level (a Python level name: ``DEBUG``, ``INFO``, ...).

    ``settings.master`` None leaves the master to ``spark-submit``/the environment.
    """
    conf = session_conf(settings, log_level, app_suffix)
    if not running_under_spark_submit() and SparkSession.getActiveSession() is None:
        start_jvm(conf)
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    if running_under_spark_submit():  # the JVM exists: the root level at least
        spark.sparkContext.setLogLevel(jvm_log_levels(log_level, local=False)[0])
    log.debug("spark session: master=%s version=%s", spark.sparkContext.master, spark.version)
    return spark
