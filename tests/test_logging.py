"""``--log-level`` and the quiet start: the Python log level, the JVM's log4j2 file derived from
it, and the relay of what the JVM prints before its logging exists. (The whole job's screen,
in a real process: ``tests/reliability/test_quiet_start.py``, e2e.)"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from anime_recs import cli, spark
from anime_recs.config import ConfigError, load_config

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
    # on a cluster the executors' and scheduler's lines stay (a lost task may be retried)
    assert spark.jvm_log_levels("WARNING", local=False) == ("ERROR", {})


def test_java_options_of_the_config_are_kept():
    extra = "spark.extra={spark.driver.extraJavaOptions: -Dmine=1}"
    options = spark.session_conf(settings(extra), "INFO")[spark.JAVA_OPTIONS]
    assert options.startswith("-Dmine=1 -Dlog4j2.configurationFile=file:")


def test_what_the_jvm_prints_before_it_is_up_goes_to_debug_then_lines_pass(caplog, capfd):
    read_fd, write_fd = os.pipe()
    relay = spark.JvmStderr(read_fd)
    relay.start()
    os.write(write_fd, b":: resolution report :: resolve 3ms\nWARNING: Using incubator modules\n")
    time.sleep(0.2)
    with caplog.at_level(logging.DEBUG, logger="anime_recs.spark"):
        relay.started()
    os.write(write_fd, b"26/01/01 00:00:00 ERROR Executor: boom\n")
    os.close(write_fd)
    relay.join(timeout=5)
    assert capfd.readouterr().err == "26/01/01 00:00:00 ERROR Executor: boom\n"
    assert [r.getMessage() for r in caplog.records] == [
        "jvm: :: resolution report :: resolve 3ms",
        "jvm: WARNING: Using incubator modules",
    ]


def test_a_failed_start_shows_everything_the_jvm_printed(capfd):
    read_fd, write_fd = os.pipe()
    relay = spark.JvmStderr(read_fd)
    relay.start()
    os.write(write_fd, b"unresolved dependency: io.delta#delta-spark_2.13;4.0.0: not found\n")
    time.sleep(0.2)
    relay.failed()
    os.close(write_fd)
    relay.join(timeout=5)
    assert "unresolved dependency" in capfd.readouterr().err


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
