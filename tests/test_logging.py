"""``--log-level`` and the quiet start: the Python log level, the JVM's log4j2 file derived from
it, and the Delta packages resolved in a child whose output goes to DEBUG. (The whole job's
screen, in a real process: ``tests/reliability/test_quiet_start.py``, e2e.)"""

from __future__ import annotations

import logging
import subprocess
import tempfile
from pathlib import Path

import pytest

from anime_recs import cli, spark
from anime_recs.config import ConfigError, load_config
from anime_recs.errors import JobError

CONF = str(Path(__file__).resolve().parents[1] / "conf" / "local.yaml")


def settings(*sets: str):
    return load_config(CONF, ["spark.master=local[2]", *sets]).spark


def log4j2_file(conf: dict[str, str]) -> str:
    options = conf[spark.JAVA_OPTIONS].split()
    path = [o for o in options if o.startswith("-Dlog4j2.configurationFile=file:")]
    assert len(path) == 1, options
    return Path(path[0].split("=file:", 1)[1]).read_text()


def test_the_jvm_log4j2_file_follows_the_log_level():
    info = log4j2_file(spark.session_conf(settings(), "INFO"))
    assert "rootLogger.level = error" in info
    # a failed local task's trace is in the job's error already: raised, each to its level
    for i, (logger, level) in enumerate(sorted(spark.LOCAL_TASK_FAILURE_LOGGERS.items())):
        assert f"logger.l{i}.name = {logger}\nlogger.l{i}.level = {level.lower()}\n" in info
    debug = log4j2_file(spark.session_conf(settings(), "DEBUG"))
    assert "rootLogger.level = warn" in debug and "Executor" not in debug
    # the shell's logger at the root's level: Spark prints no "Setting default log level"
    for text, root in ((info, "error"), (debug, "warn")):
        assert f"logger.shell.name = {spark.SHELL_LOGGER}\nlogger.shell.level = {root}\n" in text
    # on a cluster the executors' and scheduler's lines stay (a lost task may be retried)
    assert spark.jvm_log_levels("WARNING", local=False) == ("ERROR", {})


def test_java_options_of_the_config_are_kept():
    extra = "spark.extra={spark.driver.extraJavaOptions: -Dmine=1}"
    options = spark.session_conf(settings(extra), "INFO")[spark.JAVA_OPTIONS]
    assert options.startswith("-Dmine=1 -Dlog4j2.configurationFile=file:")


def fake_resolution(monkeypatch, jars: list[str], rc: int = 0) -> list[dict[str, str]]:
    """Replace the child that resolves the packages; returns the confs it was started with."""
    started: list[dict[str, str]] = []

    def run(conf: dict[str, str]) -> subprocess.CompletedProcess[str]:
        started.append(conf)
        out = spark.JARS_LINE + ",".join(jars) + "\n" if rc == 0 else ""
        err = ":: resolution report :: resolve 3ms\nunresolved dependency: io.delta#x\n"
        return subprocess.CompletedProcess([], rc, out, err)

    monkeypatch.setattr(spark, "run_resolution", run)
    return started


def test_packages_are_resolved_once_in_a_child_then_handed_over_as_jars(
    monkeypatch, tmp_path, caplog
):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    jars = [tmp_path / "a.jar", tmp_path / "b.jar"]
    for jar in jars:
        jar.write_bytes(b"")
    uris = [f"file://{jars[0]}", str(jars[1])]
    started = fake_resolution(monkeypatch, uris)
    conf = spark.session_conf(settings("spark.extra={spark.jars: /x/mine.jar}"), "INFO")
    with caplog.at_level(logging.DEBUG, logger="anime_recs.spark"):
        resolved = spark.with_resolved_packages(conf)
    assert spark.PACKAGES not in resolved
    assert resolved[spark.JARS] == ",".join(["/x/mine.jar", *uris])
    assert started[0][spark.PACKAGES] == spark.DELTA_PACKAGE
    assert started[0][spark.JAVA_OPTIONS] == conf[spark.JAVA_OPTIONS]  # the job's log4j2 file
    # what the child printed is kept at DEBUG, never on the screen
    assert "jvm: :: resolution report :: resolve 3ms" in caplog.messages
    # remembered: the next start resolves nothing, until a jar is gone
    assert spark.with_resolved_packages(conf) == resolved and len(started) == 1
    jars[1].unlink()
    spark.with_resolved_packages(conf)
    assert len(started) == 2


def test_a_failed_resolution_shows_what_the_jvm_printed(monkeypatch, tmp_path, caplog):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    fake_resolution(monkeypatch, [], rc=1)
    conf = spark.session_conf(settings(), "INFO")
    with pytest.raises(JobError, match=r"^could not resolve io\.delta:delta-spark"):
        spark.with_resolved_packages(conf)
    shown = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(shown) == 1 and "unresolved dependency: io.delta#x" in shown[0].getMessage()
    assert list(tmp_path.glob("anime-recs-jars-*")) == []  # nothing remembered


def test_a_conf_without_packages_is_left_alone():
    conf = {"spark.app.name": "x", spark.JARS: "/x/mine.jar"}
    assert spark.with_resolved_packages(conf) is conf


def test_log_level_flag_and_environment(monkeypatch):
    monkeypatch.delenv(cli.LOG_LEVEL_ENV, raising=False)
    assert cli.job_parser("x").parse_args([]).log_level == "INFO"
    assert cli.job_parser("x").parse_args(["--log-level", "debug"]).log_level == "DEBUG"
    monkeypatch.setenv(cli.LOG_LEVEL_ENV, "warning")
    assert cli.job_parser("x").parse_args([]).log_level == "WARNING"
    monkeypatch.setenv(cli.LOG_LEVEL_ENV, "chatty")
    with pytest.raises(ConfigError, match="ANIME_RECS_LOG_LEVEL: must be one of"):
        cli.job_parser("x")


def test_the_config_is_logged_at_debug_only(caplog):
    caplog.set_level(logging.DEBUG, logger="anime_recs")
    for level, shown in (("INFO", False), ("DEBUG", True)):
        caplog.clear()
        args = cli.job_parser("x").parse_args(["--conf", CONF, "--log-level", level])
        cli.start_job("lookup", args)
        config_lines = [r for r in caplog.records if "job lookup: config {" in r.getMessage()]
        assert [r.levelname for r in config_lines] == ["DEBUG"]
        assert logging.getLogger().isEnabledFor(logging.DEBUG) is shown
    cli.setup_logging(logging.INFO)
