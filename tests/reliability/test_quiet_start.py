"""The operator's screen of a real job process (the JVM's output included): at the default log
level a job prints its result only, also on the first start that resolves the Delta jars;
``--log-level DEBUG`` shows the config, Ivy's resolution report and Spark's warnings. And
``jobs/pipeline.py --generate`` runs the generator in its own process (the product never
imports it)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from anime_recs import tables
from anime_recs.cli import JobError
from anime_recs.config import load_config
from anime_recs.lakehouse import write_table
from tests.helpers import CONF, REPO, load_job

pytestmark = pytest.mark.e2e

UNKNOWN_USER = 424242


@pytest.fixture(scope="module")
def ratings_lake(spark, tmp_path_factory) -> str:
    lake = str(tmp_path_factory.mktemp("quiet") / "lake")
    rows = [(1, 10, 9, tables.TRAIN), (2, 10, 7, tables.TEST)]
    schema = tables.RATINGS_SCHEMA
    write_table(spark.createDataFrame(rows, schema), lake, tables.RATINGS, schema)
    return lake


def lookup(lake: str, tmp_path, *extra: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, str(REPO / "jobs" / "lookup.py"), "--conf", CONF]
    argv += ["--user", str(UNKNOWN_USER), "--set", f"paths.lake={lake}"]
    argv += ["--set", "spark.master=local[1]", "--set", "spark.driver_memory=1g", *extra]
    env = {k: v for k, v in os.environ.items() if k != "ANIME_RECS_LOG_LEVEL"}
    # a temp folder of its own: no remembered jar list, so this start resolves the packages
    env["TMPDIR"] = str(tmp_path)
    return subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


def test_a_lookup_of_an_unknown_user_prints_one_line_naming_the_user(ratings_lake, tmp_path):
    done = lookup(ratings_lake, tmp_path)
    assert done.returncode == 2
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) <= 3, lines  # no Ivy report, no Spark start-up warnings, no config
    assert ":: resolution report ::" not in done.stderr
    # above the error, at most the JVM's own warning (an incubator module Spark asks for)
    assert all(line.startswith("WARNING: ") for line in lines[:-1]), lines
    assert list(tmp_path.glob("anime-recs-jars-*.txt")), "the packages were not resolved"
    assert lines[-1] == f"error: unknown user {UNKNOWN_USER}: no ratings in table ratings"


def test_debug_shows_the_config_and_the_jvm_start(ratings_lake, tmp_path):
    done = lookup(ratings_lake, tmp_path, "--log-level", "DEBUG")
    assert done.returncode == 2
    assert "DEBUG anime_recs: job lookup: config {" in done.stderr
    assert ":: resolution report ::" in done.stderr  # Ivy's, from the child, at DEBUG
    assert done.stderr.strip().splitlines()[-1].startswith("error: unknown user")


def test_pipeline_generate_runs_the_generate_job(tiny_raw, tmp_path):
    from anime_recs import pipeline

    job = load_job("pipeline")
    raw = tmp_path / "raw"
    config = load_config(CONF, [f"paths.raw={raw}"])
    pipeline.ensure_raw_data(config, "tiny", 7, job.generate)
    for name in tables.RAW_FILES:  # the session's tiny data: the same seed, byte-identical
        assert (raw / name).read_bytes() == (tiny_raw / name).read_bytes(), name
    with pytest.raises(JobError, match=r"^generate failed: .*invalid choice: 'huge'"):
        config = load_config(CONF, [f"paths.raw={tmp_path / 'x'}"])
        pipeline.ensure_raw_data(config, "huge", 7, job.generate)
