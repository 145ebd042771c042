"""The runner's skip rule on real Delta tables and a real run log, with a registry of three
small stages (:mod:`anime_recs.pipeline`): a stage is skipped only when its fingerprint matches
its last successful run and its outputs are still at the versions the run log expects.

``source`` writes ``t_source`` (one row: ``recommend.k``); ``double`` reads it by version and
writes ``t_out`` (the value x 2); ``last`` reads ``t_source`` by content and writes ``t_out``
too, after ``double`` (as ``embed_finetuned`` rewrites rows of the table ``embed_base``
writes).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import pytest
from pyspark.sql.types import IntegerType, StructField, StructType

from anime_recs import pipeline, runlog, tables
from anime_recs.config import load_config
from anime_recs.lakehouse import read_table, table_version, write_table
from anime_recs.stages import Stage

CONF = str(Path(__file__).resolve().parents[1] / "conf" / "local.yaml")
SCHEMA = StructType([StructField("value", IntegerType(), False)])
SOURCE, OUT = "t_source", "t_out"


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


def last(spark, config, run) -> None:
    write(spark, config.paths.lake, OUT, -1)


REGISTRY = (
    Stage("source", "unused", (), (SOURCE,), ("recommend.k",), source),
    Stage("double", "unused", (SOURCE,), (OUT,), (), double),
    Stage("last", "unused", (SOURCE,), (OUT,), (), last, by_content=True),
)


@pytest.fixture()
def run(spark, tmp_path):
    lake = str(tmp_path / "lake")

    def run_some(*sets: str, only: tuple[str, ...] = (), force: bool = False) -> dict[str, str]:
        """Run the stages of the registry named in ``only`` (default all), in order."""
        config = load_config(CONF, [f"paths.lake={lake}", *sets])
        chosen = [s for s in REGISTRY if not only or s.name in only]
        timings = pipeline.run_stages(spark, config, chosen, force, registry=REGISTRY)
        return {name: status for name, status, _ in timings}

    run_some.lake = lake
    return run_some


def versions(spark, lake: str) -> dict[str, int | None]:
    names = (SOURCE, OUT, tables.PIPELINE_RUNS)
    return {name: table_version(spark, lake, name) for name in names}


@pytest.mark.e2e  # a whole job
def test_a_stage_is_skipped_only_while_settings_inputs_and_outputs_are_as_recorded(spark, run):
    assert run() == {"source": "ran", "double": "ran", "last": "ran"}
    lake = run.lake
    logged = read_table(spark, lake, tables.PIPELINE_RUNS).orderBy("finished_at").collect()
    assert [(r.stage, r.status) for r in logged] == [(s.name, runlog.SUCCEEDED) for s in REGISTRY]
    assert json.loads(logged[1].outputs) == {OUT: 0}
    assert json.loads(logged[1].inputs) == {SOURCE: 0}
    before = versions(spark, lake)
    assert before[OUT] == 1  # last rewrote it after double: double's record is moved on

    assert run() == {"source": "unchanged", "double": "unchanged", "last": "unchanged"}
    assert versions(spark, lake) == before  # not a commit, not even in the run log

    # the stale-results case: a run with k = 5 (alone or in the pipeline: recorded either
    # way), then the default settings again recompute with the default
    both = ("source", "double")
    assert run("recommend.k=5", only=both) == {"source": "ran", "double": "ran"}
    assert value(spark, lake, OUT) == 10
    assert run(only=both) == {"source": "ran", "double": "ran"}
    assert value(spark, lake, OUT) == 6

    # an output rewritten by hand: a version no run recorded
    write(spark, lake, OUT, 99)
    assert run(only=both) == {"source": "unchanged", "double": "ran"}
    assert value(spark, lake, OUT) == 6

    # an input rewritten with the same rows: a new version, the same contents
    write(spark, lake, SOURCE, 3)
    assert run(only=("double", "last")) == {"double": "ran", "last": "unchanged"}


def record(stage: str, finished: int, outputs: dict) -> dict:
    return {"stage": stage, "finished_at": finished, "outputs": json.dumps(outputs)}


def test_expected_outputs_follow_later_writers_of_the_registry_only():
    writers = {OUT: {"double"}, SOURCE: {"double", "last"}}
    records = [
        record("double", 1, {OUT: 0, SOURCE: 0}),
        record("last", 2, {SOURCE: 1}),
        record("restore", 3, {OUT: 5}),  # jobs/check.py --restore: no writer of the registry
        record("other", 4, {SOURCE: 9}),
    ]
    assert runlog.last_of(records, "double") == 0 and runlog.last_of(records, "x") is None
    assert runlog.expected_outputs(records, 0, writers) == {OUT: 0, SOURCE: 1}
    assert runlog.expected_outputs(records, 1, writers) == {SOURCE: 1}


def test_the_stage_is_told_when_the_runner_forces_it(spark, tmp_path):
    """``run.forced``: the runner's ``force`` (``--force``) or the stage's own ``forced``
    setting; a stage with a skip rule of its own (the fine-tune's "registered already") must
    not apply it then."""
    told: list[bool] = []

    def note(spark, config, run) -> None:
        told.append(run.forced)
        write(spark, config.paths.lake, SOURCE, config.recommend.k)

    registry = (
        Stage("note", "unused", (), (SOURCE,), ("recommend.k",), note,
              forced=lambda config: config.recommend.k == 5),
    )  # fmt: skip
    sets = [f"paths.lake={tmp_path / 'lake'}"]

    def run(*more: str, force: bool = False) -> str:
        config = load_config(CONF, [*sets, *more])
        return pipeline.run_stages(spark, config, registry, force, registry=registry)[0][1]

    assert (run(), told) == ("ran", [False])
    assert (run(), told) == ("unchanged", [False])
    assert (run(force=True), told) == ("ran", [False, True])
    assert (run("recommend.k=5"), told) == ("ran", [False, True, True])


def test_an_output_outside_the_lake_is_recorded_and_checked_like_a_table(spark, tmp_path):
    """``extra_outputs`` (the fine-tune's registered model version): recorded in the run log
    after a run; a skip needs it to be still what was recorded, so a version gone from the
    registry (or another in its place) runs the stage again."""
    registry: dict[str, str] = {}  # fingerprint -> the version a run registered
    versions = itertools.count(1)

    def register(spark, config, run) -> None:
        registry[run.fingerprint] = f"v{next(versions)}"

    def registered(spark, config, fingerprint: str) -> dict[str, str | None]:
        return {"model": registry.get(fingerprint)}

    stage = Stage("register", "unused", (), (), ("recommend.k",), register)
    stage = dataclasses.replace(stage, extra_outputs=registered)
    lake = tmp_path / "lake"
    config = load_config(CONF, [f"paths.lake={lake}"])

    def run() -> str:
        return pipeline.run_stages(spark, config, [stage], registry=(stage,))[0][1]

    def recorded() -> list[dict]:
        rows = read_table(spark, str(lake), tables.PIPELINE_RUNS).orderBy("finished_at")
        return [json.loads(r.outputs) for r in rows.collect()]

    assert (run(), run()) == ("ran", "unchanged")
    (fingerprint,) = registry
    registry.clear()  # the registry lost
    assert (run(), registry) == ("ran", {fingerprint: "v2"})
    registry[fingerprint] = "v7"  # another version in its place
    assert (run(), run(), registry) == ("ran", "unchanged", {fingerprint: "v3"})
    assert recorded() == [{"model": "v1"}, {"model": "v2"}, {"model": "v3"}]
    # a record from before the stage declared it proves nothing about it
    old = {"stage": "register", "run_id": "r0", "fingerprint": fingerprint, "outputs": "{}"}
    why = pipeline.why_run(spark, config, stage, fingerprint, [old], registry=(stage,))
    assert why == ("run r0 recorded no model", None)


def test_the_pipeline_ends_with_the_report_page_and_its_verdict(spark, tmp_path):
    lake, reports = tmp_path / "lake", tmp_path / "reports"
    sets = [
        f"paths.lake={lake}",
        f"paths.reports={reports}",
        "recommend.hybrid.content=base_minilm_128",
    ]
    config = load_config(CONF, sets)
    assert pipeline.report_summary(spark, config) is None  # before the first recommend run
    metrics = {name: 0.0 for name in tables.EVALUATION_SCHEMA.fieldNames()[3:]}
    rows = [
        (name, view, 10, {**metrics, "precision": p, "cold_share": c})
        for name, view, p, c in [
            ("hybrid", "warm", 0.12, 0.0),
            ("ease", "warm", 0.125, 0.0),
            ("hybrid", "cold", 0.099, 1.0),
            ("base_minilm_128", "cold", 0.08, 1.0),
            ("hybrid", "all", 0.11, 0.098),
        ]
    ]
    frame = spark.createDataFrame(
        [
            {"recommender": name, "view": view, "n": n, **values}
            | {k: 0 for k in ("hits", "users_scored", "users_total", "unique_anime")}
            for name, view, n, values in rows
        ],
        schema=tables.EVALUATION_SCHEMA,
    )
    write_table(frame, str(lake), tables.EVALUATION, tables.EVALUATION_SCHEMA)
    assert pipeline.report_summary(spark, config) == (
        f"Report: {reports.absolute() / 'index.html'}\n"
        "hybrid: warm P@10 0.120 (best other: ease 0.125); cold P@10 0.099 (base_minilm_128 "
        "0.080); 9.8% of its top-10 slots hold new titles"
    )
