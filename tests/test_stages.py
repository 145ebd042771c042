"""The stage registry: what the pipeline plans and fingerprints, which model version a
fine-tuned embedder's fingerprint names (through the resolver the embedding uses), and the
facts derived from it (``tables.WRITTEN_BY``, the README's stage table, the jobs) checked
against it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import mlflow
import pytest

from anime_recs import pipeline, runlog, stages, tables
from anime_recs.config import load_config
from anime_recs.tracking import keep_logging
from tests.helpers import mlflow_store

REPO = Path(__file__).resolve().parents[1]
CONF = str(REPO / "conf" / "local.yaml")
FINETUNED = "finetuned_minilm"


def config_with(tmp_path: Path, *sets: str):
    return load_config(CONF, [f"mlflow.tracking_uri={mlflow_store(tmp_path)}", *sets])


def test_stage_order_tables_and_run_functions():
    names = [s.name for s in stages.STAGES]
    assert names == [
        "ingest", "jaccard", "embed_base", "finetune", "embed_finetuned", "recommend", "serve"
    ]  # fmt: skip
    known = {v for k, v in vars(tables).items() if k.isupper() and isinstance(v, str)}
    written, maybe_written = set(), set()
    for stage in stages.STAGES:
        every = {*stage.inputs, *stage.outputs, *stage.optional_inputs, *stage.optional_outputs}
        assert every <= known, stage.name
        # a stage reads only tables an earlier stage writes (optional ones: may write)
        assert set(stage.inputs) <= written, stage.name
        assert set(stage.optional_inputs) <= written | maybe_written, stage.name
        written |= set(stage.outputs)
        maybe_written |= set(stage.optional_outputs)
        assert stage.run.__module__.endswith(".stage"), stage.name
    assert stages.by_name("embed_base").optional_outputs == (tables.EMBEDDING_CACHE,)
    assert stages.by_name("recommend").outputs == (
        tables.ANIME_NEIGHBORS,
        tables.USER_SCORES,
        tables.RECOMMENDATIONS,
        tables.EVALUATION,
    )
    # watch_status: written by ingest only when animelist.csv is present, read when there;
    # anime_embeddings: the model version of an embedding recommender's served rows
    assert stages.by_name("ingest").optional_outputs == (tables.WATCH_STATUS,)
    assert stages.by_name("serve").optional_inputs == (tables.WATCH_STATUS, tables.ANIME_EMBEDDINGS)
    assert stages.by_name("serve").outputs == (tables.USER_RECOMMENDATIONS,)


def test_plan_leaves_out_embed_stages_without_embedders(tmp_path):
    every = [s.name for s in stages.plan(config_with(tmp_path))]
    assert every == [s.name for s in stages.STAGES]
    base_only = config_with(tmp_path, "embed.run=[base_minilm_128]")
    assert "embed_finetuned" not in [s.name for s in stages.plan(base_only)]
    finetuned_only = config_with(tmp_path, f"embed.run=[{FINETUNED}]")
    assert "embed_base" not in [s.name for s in stages.plan(finetuned_only)]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """The folder of this module's SQLite registry (creating one costs seconds)."""
    return tmp_path_factory.mktemp("registry")


@pytest.fixture(scope="module")
def registry(store):
    """Three versions of ``enc`` in a fresh SQLite registry, alias ``champion`` on 1 (tests
    that move it put it back)."""
    uri = mlflow_store(store)
    with keep_logging():
        client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.create_registered_model("enc")
        for _ in range(3):
            client.create_model_version("enc", source=str(store / "model"))
        client.set_registered_model_alias("enc", "champion", "1")
    return client


def fingerprint(config) -> str:
    """embed_finetuned's fingerprint (as the runner computes it) with a fixed version of its
    one table input."""
    stage = stages.by_name("embed_finetuned")
    inputs = {tables.ANIME: 4, **stage.extra_inputs(None, config)}
    return runlog.fingerprint(stage.name, pipeline.config_parts(config, stage), inputs)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("models:/enc/2", "models:/enc/2"),  # pinned: not the highest version
        ("models:/enc@champion", "models:/enc/1"),
        ("models:/enc/latest", "models:/enc/3"),
        ("models:/nosuch/latest", "unavailable"),
    ],
)
def test_model_version_in_the_fingerprint_is_the_one_the_uri_names(
    registry, store, model, expected
):
    config = config_with(store, f"embed.embedders.{FINETUNED}.model={model}")
    extra = stages.by_name("embed_finetuned").extra_inputs(None, config)
    assert extra["models"][FINETUNED] == expected


def test_moving_the_alias_changes_the_embed_finetuned_fingerprint(registry, store):
    alias = config_with(store, f"embed.embedders.{FINETUNED}.model=models:/enc@champion")
    pinned = config_with(store, f"embed.embedders.{FINETUNED}.model=models:/enc/2")
    before = fingerprint(alias), fingerprint(pinned)
    assert fingerprint(alias) == before[0]  # stable while nothing moves
    registry.set_registered_model_alias("enc", "champion", "3")
    assert fingerprint(alias) != before[0]
    assert fingerprint(pinned) == before[1]
    registry.set_registered_model_alias("enc", "champion", "1")
    assert fingerprint(alias) == before[0]


def test_settings_that_change_no_model_are_not_in_the_finetune_fingerprint(tmp_path):
    stage = stages.by_name("finetune")

    def parts(*sets: str) -> dict:
        return pipeline.config_parts(config_with(tmp_path, *sets), stage)

    base = parts()
    assert "force" not in base["finetune"] and "epochs" in base["finetune"]
    same = ("finetune.force=true", "finetune.logging_steps=1", "finetune.checkpoint_steps=3")
    assert parts(*same) == base
    assert parts("finetune.epochs=2") != base
    assert stage.forced(config_with(tmp_path, "finetune.force=true"))


def test_written_by_is_the_registry():
    """``tables.WRITTEN_BY`` (the rerun a damage diagnosis proposes; the foundations cannot
    import the registry) says what the registry says: every table a stage may write, and
    the job that runs that stage."""
    assert tables.WRITTEN_BY == stages.written_by()
    for job in set(stages.written_by().values()):
        assert (REPO / "jobs" / f"{job}.py").is_file(), job


def test_the_readme_stage_table_is_the_registry():
    readme = (REPO / "README.md").read_text()
    table = re.search(r"^\| stage \| reads \|.*?(?=\n\n)", readme, re.M | re.S)
    assert table is not None, "README.md has no stage table"
    assert table.group(0) == stages.catalogue(), "regenerate it: python jobs/pipeline.py --list"


def test_every_stage_job_runs_its_stages_through_the_registry_and_names_their_tables():
    """``jobs/<job>.py`` calls ``cli.run_job`` with its own name (so each run is fingerprinted
    and recorded), and its docstring names every table its stages may read or write."""
    jobs = {stage.job for stage in stages.STAGES}
    for job in sorted(jobs):
        source = (REPO / "jobs" / f"{job}.py").read_text()
        tree = ast.parse(source)
        calls = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "run_job"
        ]
        assert [c.args[0].value for c in calls] == [job], job
        doc = ast.get_docstring(tree) or ""
        for stage in stages.of_job(job):
            for table in (*stages.read(stage), *stages.written(stage)):
                assert f"``{table}``" in doc, f"jobs/{job}.py docstring omits {table}"
    # the other jobs are tools, not stages: they never write a stage's table
    others = {p.stem for p in (REPO / "jobs").glob("*.py")} - jobs
    assert others == {"check", "generate", "lookup", "pipeline"}


def test_every_table_has_a_contract():
    names = {v for k, v in vars(tables).items() if k.isupper() and isinstance(v, str)}
    written = {t for stage in stages.STAGES for t in stages.written(stage)}
    assert written | {tables.PIPELINE_RUNS} <= set(tables.SCHEMAS) <= names
