"""The runner's skip rule on real Delta tables and a real run log, with a registry of three
small stages (:mod:`anime_recs.pipeline`): a stage is skipped only when its fingerprint matches
its last successful run and its outputs are still at the versions the run log expects.

``source`` writes ``t_source`` (one row: ``recommend.k``); ``double`` reads it by version and
writes ``t_out`` (the value x 2) and ``t_shared``; ``last`` reads ``t_source`` by content and
writes ``t_shared`` again after ``double`` (as ``embed_finetuned`` rewrites rows of the table
``embed_base`` writes).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from delta.tables import DeltaTable
from pyspark.sql.types import IntegerType, StructField, StructType

from anime_recs import pipeline, runlog, tables
from anime_recs.config import load_config
from anime_recs.lakehouse import read_table, table_path, table_version, write_table
from anime_recs.stages import Stage

CONF = str(Path(__file__).resolve().parents[1] / "conf" / "local.yaml")
SCHEMA = StructType([StructField("value", IntegerType(), False)])
SOURCE, OUT, SHARED = "t_source", "t_out", "t_shared"


def write(spark, lake: str, name: str, value: int) -> int:
    return write_table(spark.createDataFrame([(value,)], SCHEMA), lake, name, SCHEMA)


def value(spark, lake: str, name: str) -> int:
    return read_table(spark, lake, name).first()["value"]


def source(spark, config, run) -> None:
    write(spark, config.paths.lake, SOURCE, config.recommend.k)


def double(spark, config, run) -> None:
    lake = config.paths.lake
    doubled = 2 * read_table(spark, lake, SOURCE, run.versions[SOURCE]).first()["value"]
    write(spark, lake, OUT, doubled)
    write(spark, lake, SHARED, doubled)
    if config.recommend.seed < 0:  # a failure after the first output is written
        raise RuntimeError("killed after writing t_out")


def last(spark, config, run) -> None:
    write(spark, config.paths.lake, SHARED, -1)


REGISTRY = (
    Stage("source", "unused", (), (SOURCE,), ("recommend.k",), source),
    Stage("double", "unused", (SOURCE,), (OUT, SHARED), ("recommend.seed",), double),
    Stage("last", "unused", (SOURCE,), (SHARED,), (), last, by_content=True),
)


@pytest.fixture()
def run(spark, tmp_path):
    lake = str(tmp_path / "lake")

    def run_all(*sets: str, force: bool = False) -> dict[str, str]:
        config = load_config(CONF, [f"paths.lake={lake}", *sets])
        timings = pipeline.run_stages(spark, config, REGISTRY, force, registry=REGISTRY)
        return {name: status for name, status, _ in timings}

    run_all.lake = lake
    return run_all


def versions(spark, lake: str) -> dict[str, int | None]:
    names = (SOURCE, OUT, SHARED, tables.PIPELINE_RUNS)
    return {name: table_version(spark, lake, name) for name in names}


def records(spark, lake: str) -> list[tuple[str, str]]:
    rows = read_table(spark, lake, tables.PIPELINE_RUNS).orderBy("finished_at").collect()
    return [(r.stage, r.status) for r in rows]


def test_a_stage_is_skipped_only_while_settings_inputs_and_outputs_are_as_recorded(spark, run):
    assert run() == {"source": "ran", "double": "ran", "last": "ran"}
    lake = run.lake
    assert records(spark, lake) == [(s.name, runlog.SUCCEEDED) for s in REGISTRY]
    logged = read_table(spark, lake, tables.PIPELINE_RUNS).orderBy("finished_at").collect()
    assert json.loads(logged[1].outputs) == {OUT: 0, SHARED: 0}
    assert json.loads(logged[1].inputs) == {SOURCE: 0}
    before = versions(spark, lake)
    assert before[SHARED] == 1  # last rewrote it after double: double's record is moved on

    assert run() == {"source": "unchanged", "double": "unchanged", "last": "unchanged"}
    assert versions(spark, lake) == before  # not a commit, not even in the run log

    # the stale-results case: a run with k = 5 (alone or in the pipeline: recorded either
    # way), then the default settings again recompute with the default
    assert run("recommend.k=5") == {"source": "ran", "double": "ran", "last": "ran"}
    assert value(spark, lake, OUT) == 10
    assert run() == {"source": "ran", "double": "ran", "last": "ran"}
    assert value(spark, lake, OUT) == 6

    # an output rewritten by hand (a version no run recorded), or restored to an old version
    write(spark, lake, OUT, 99)
    assert run() == {"source": "unchanged", "double": "ran", "last": "unchanged"}
    assert value(spark, lake, OUT) == 6
    DeltaTable.forPath(spark, table_path(lake, OUT)).restoreToVersion(3)  # the 99 again
    assert value(spark, lake, OUT) == 99
    assert run()["double"] == "ran" and value(spark, lake, OUT) == 6
    assert run(force=True) == {"source": "ran", "double": "ran", "last": "ran"}


def test_failed_runs_are_recorded_and_inputs_by_content_survive_a_same_rows_rewrite(spark, run):
    lake = run.lake
    run()
    with pytest.raises(RuntimeError, match="killed after writing t_out"):
        run("recommend.seed=-1")
    failed = read_table(spark, lake, tables.PIPELINE_RUNS).orderBy("finished_at").collect()[-1]
    assert (failed.stage, failed.status) == ("double", runlog.FAILED)
    assert json.loads(failed.outputs)["error"] == "RuntimeError: killed after writing t_out"
    # the settings of its last success again, but t_out holds the failed run's rows
    assert run() == {"source": "unchanged", "double": "ran", "last": "unchanged"}

    write(spark, lake, SOURCE, 3)  # the same row by hand, a new version: both rerun but
    # last, which identifies its input by content
    assert run() == {"source": "ran", "double": "ran", "last": "unchanged"}
