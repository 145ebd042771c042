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

Ivy prints its resolution report of ``spark.jars.packages`` to the JVM's stderr, outside
log4j and at no level Spark lets one set. So the JVM of a job never resolves: the packages are
resolved once by Spark's own Ivy in a child process whose output is kept
(:func:`resolve_packages`: logged at DEBUG, shown when the resolution fails), and the local jars
they resolve to are remembered in the temp folder and handed to the JVM as ``spark.jars``
(:func:`with_resolved_packages`). The session itself is built with the public builder only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

from pyspark.sql import SparkSession

from anime_recs.config import SparkConfig
from anime_recs.errors import JobError

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

#: the logger of pyspark's JVM entry point: Spark treats that JVM as a shell, and a shell whose
#: logger has no level of its own gets WARN on the console with a "Setting default log level"
#: notice on stderr; at the root's level it keeps the root's and prints nothing
SHELL_LOGGER = "org.apache.spark.api.python.PythonGatewayServer"

JAVA_OPTIONS = "spark.driver.extraJavaOptions"
PACKAGES = "spark.jars.packages"
JARS = "spark.jars"

#: the settings that decide what Ivy resolves and from where (together: one resolution)
RESOLUTION_KEYS = (
    PACKAGES,
    "spark.jars.excludes",
    "spark.jars.repositories",
    "spark.jars.ivy",
    "spark.jars.ivySettings",
)

#: the child's line that carries the resolved jars (its other output is Spark's and Ivy's)
JARS_LINE = "resolved-jars: "

#: the child: a SparkContext started with the resolution's settings resolves the packages as a
#: job's would, and its ``spark.jars`` then names the local jars they resolved to
RESOLVE_SCRIPT = """
import json, sys
from pyspark import SparkConf, SparkContext
sc = SparkContext(conf=SparkConf().setAll(json.loads(sys.argv[1]).items()))
print(sys.argv[2] + sc.getConf().get("spark.jars", ""), flush=True)
sc.stop()
"""


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
    """A log4j2 configuration: everything to stderr at ``root`` (:data:`SHELL_LOGGER` too),
    ``loggers`` at their level."""
    lines = [
        "status = error",
        "appender.console.type = Console",
        "appender.console.name = console",
        "appender.console.target = SYSTEM_ERR",
        "appender.console.layout.type = PatternLayout",
        "appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex",
        f"rootLogger.level = {root.lower()}",
        "rootLogger.appenderRef.console.ref = console",
        f"logger.shell.name = {SHELL_LOGGER}",
        f"logger.shell.level = {root.lower()}",
    ]
    for i, (name, level) in enumerate(sorted(loggers.items())):
        lines += [f"logger.l{i}.name = {name}", f"logger.l{i}.level = {level.lower()}"]
    return "\n".join(lines) + "\n"


def digest_of(text: str) -> str:
    """A short hex digest of ``text``: names a temp file after what it stands for."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_atomically(path: Path, text: str) -> None:
    """``text`` into ``path`` through a rename: jobs started together never read half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_log4j2_file(text: str) -> Path:
    """``text`` in a file of the temp folder named by its content (written once, atomically:
    jobs started together share it)."""
    path = Path(tempfile.gettempdir()) / f"anime-recs-log4j2-{digest_of(text)}.properties"
    if not path.is_file():
        write_atomically(path, text)
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


def jars_list_file(resolution: dict[str, str]) -> Path:
    """The temp file that remembers the jars of ``resolution`` (named by its settings)."""
    key = json.dumps(resolution, sort_keys=True)
    return Path(tempfile.gettempdir()) / f"anime-recs-jars-{digest_of(key)}.txt"


def local_file(jar: str) -> Path:
    """The local file of a jar as ``spark.jars`` names it (a path or a ``file:`` URI)."""
    return Path(unquote(urlparse(jar).path)) if jar.startswith("file:") else Path(jar)


def remembered_jars(path: Path) -> list[str] | None:
    """The jars listed in ``path``, or None when the list or one of its jars is missing (a
    cleaned temp folder or Ivy cache: resolve again)."""
    if not path.is_file():
        return None
    jars = path.read_text().split()
    return jars if all(local_file(jar).is_file() for jar in jars) else None


def run_resolution(conf: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Start a SparkContext with ``conf`` in a child process, its output captured."""
    argv = [sys.executable, "-c", RESOLVE_SCRIPT, json.dumps(conf), JARS_LINE]
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def resolve_packages(resolution: dict[str, str], java_options: str) -> list[str]:
    """The local jars that ``resolution`` (``spark.jars.packages`` and Ivy's other settings)
    resolves to, transitive ones included, by Spark's own Ivy in a child process.

    What the child prints (Ivy's report above all) is logged at DEBUG; when the resolution
    fails it is the diagnosis, logged at ERROR before the :class:`JobError`.
    """
    conf = {
        **resolution,
        "spark.master": "local[1]",
        "spark.ui.enabled": "false",
        JAVA_OPTIONS: java_options,
    }
    done = run_resolution(conf)
    for line in done.stderr.splitlines():
        log.debug("jvm: %s", line)
    found = [line for line in done.stdout.splitlines() if line.startswith(JARS_LINE)]
    if done.returncode != 0 or not found:
        log.error("the JVM resolving %s printed:\n%s", resolution[PACKAGES], done.stderr.rstrip())
        raise JobError(
            f"could not resolve {resolution[PACKAGES]} (exit status {done.returncode}); "
            "the JVM's output is above"
        )
    return [jar for jar in found[-1][len(JARS_LINE) :].split(",") if jar]


def with_resolved_packages(conf: dict[str, str]) -> dict[str, str]:
    """``conf`` with ``spark.jars.packages`` replaced by the local jars it resolves to, added
    to ``spark.jars``: resolved once (:func:`resolve_packages`), remembered after."""
    if not conf.get(PACKAGES):
        return conf
    resolution = {key: conf[key] for key in RESOLUTION_KEYS if key in conf}
    path = jars_list_file(resolution)
    jars = remembered_jars(path)
    if jars is None:
        jars = resolve_packages(resolution, conf.get(JAVA_OPTIONS, ""))
        write_atomically(path, "\n".join(jars) + "\n")
    log.debug("spark: %s as the jars %s (listed in %s)", conf[PACKAGES], jars, path)
    resolved = {key: value for key, value in conf.items() if key != PACKAGES}
    resolved[JARS] = ",".join(filter(None, [conf.get(JARS), *jars]))
    return resolved


def get_spark(settings: SparkConfig, log_level: str, app_suffix: str = "") -> SparkSession:
    """Build (or get) the SparkSession with Delta configured, from ``config.spark`` and the
    job's log level (a Python level name: ``DEBUG``, ``INFO``, ...).

    ``settings.master`` None leaves the master to ``spark-submit``/the environment.
    """
    conf = session_conf(settings, log_level, app_suffix)
    if not running_under_spark_submit() and SparkSession.getActiveSession() is None:
        conf = with_resolved_packages(conf)  # this process starts the JVM: no Ivy in it
    spark = SparkSession.builder.config(map=conf).getOrCreate()
    if running_under_spark_submit():  # the JVM exists: the root level at least
        spark.sparkContext.setLogLevel(jvm_log_levels(log_level, local=False)[0])
    log.debug("spark session: master=%s version=%s", spark.sparkContext.master, spark.version)
    return spark
