"""jobs/finetune.py end to end on Delta inputs: trains, tracks, registers, skips, resumes."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow  # noqa: E402 - after the SQLAlchemy shim
import numpy as np
import pytest
import torch
from pyspark.sql import functions as F

from anime_recs import tables
from anime_recs.errors import JobError
from anime_recs.lakehouse import read_table, table_version, write_table
from anime_recs.training import stage as finetune_stage
from anime_recs.training.registry import FINGERPRINT_TAG
from tests.helpers import load_job, mlflow_store
from tests.training.training_data import make_copromoted_rows, make_descriptions, make_pair_rows

REPO = Path(__file__).resolve().parents[2]


def write_inputs(spark, lake: str) -> dict[str, int]:
    """Delta ``anime``, ``training_pairs`` and ``copromoted_pairs``: the generated titles, one
    title without a description, and a train pair that uses it (must be dropped)."""
    texts = make_descriptions()
    rows = [(i, f"title {i}", text, True) for i, text in texts.items()]
    rows.append((999, "no synopsis", None, False))
    anime = spark.createDataFrame(
        rows, "anime_id int, name string, description string, has_description boolean"
    )
    anime = anime.withColumn("description_source", F.lit("synopsis"))
    for field in tables.ANIME_SCHEMA.fields:
        if field.name not in anime.columns:
            anime = anime.withColumn(field.name, F.lit(None).cast(field.dataType))
    pairs = spark.createDataFrame(
        make_pair_rows() + [(0, 999, 0.5, 1.0, "train")],
        "anime_a int, anime_b int, jaccard double, label double, split string",
    )
    return {
        tables.ANIME: write_table(anime, lake, tables.ANIME, tables.ANIME_SCHEMA),
        tables.TRAINING_PAIRS: write_table(
            pairs, lake, tables.TRAINING_PAIRS, tables.TRAINING_PAIRS_SCHEMA
        ),
        tables.COPROMOTED_PAIRS: write_table(
            spark.createDataFrame(
                make_copromoted_rows() + [(0, 999, 0.5, 5, "train")],
                tables.COPROMOTED_PAIRS_SCHEMA,
            ),
            lake,
            tables.COPROMOTED_PAIRS,
            tables.COPROMOTED_PAIRS_SCHEMA,
        ),
    }


@pytest.fixture(scope="module")
def inputs(spark, tmp_path_factory):
    """The inputs of :func:`write_inputs` in a lake these tests only read."""
    lake = str(tmp_path_factory.mktemp("finetune_lake"))
    return lake, write_inputs(spark, lake)


def job_args(lake: str, tmp_path: Path, model_dir: str, *extra: str) -> list[str]:
    settings = {
        "spark.shuffle_partitions": 2,
        "paths.lake": lake,
        "paths.checkpoints": tmp_path / "checkpoints",
        "mlflow.tracking_uri": mlflow_store(tmp_path),
        "mlflow.artifact_location": tmp_path / "artifacts",
        "mlflow.experiment": "finetune-job-test",
        "finetune.base_model": model_dir,
        "finetune.max_seq_length": 64,
        "finetune.epochs": 1,
        "finetune.learning_rate": 0.003,
        "finetune.batch_size": 16,
        "finetune.max_train_pairs": 96,  # 6 steps
        "finetune.logging_steps": 2,
        "finetune.checkpoint_steps": 4,
        "finetune.registered_model": "anime_encoder_test",
        "finetune.content_neighbours": 0,  # every pair (the filter has its own unit test)
        # the full fine-tune: its checkpoints, resume and logging (lora: its own test)
        "finetune.recipe": "contrastive",
    }
    argv = ["--conf", str(REPO / "conf" / "local.yaml")]
    for key, value in settings.items():
        argv += ["--set", f"{key}={value}"]
    for item in extra:
        argv += ["--set", item]
    return argv


def runs_and_versions(tmp_path: Path):
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns.db'}")
    experiment = client.get_experiment_by_name("finetune-job-test")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    versions = client.search_model_versions("name = 'anime_encoder_test'")
    return client, runs, sorted(int(v.version) for v in versions)


@pytest.mark.e2e  # a whole job
def test_job_trains_tracks_registers_skips_an_unchanged_rerun_and_trains_again_when_forced(
    spark, inputs, tiny_model_dir, tmp_path
):
    lake, versions = inputs
    job = load_job("finetune")
    argv = job_args(lake, tmp_path, tiny_model_dir)
    assert job.main(argv) == 0

    client, runs, registered = runs_and_versions(tmp_path)
    assert registered == [1] and len(runs) == 1
    run = runs[0]
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    assert run.info.status == "FINISHED"
    assert params["data.training_pairs.version"] == str(versions[tables.TRAINING_PAIRS])
    assert params["data.anime.version"] == str(versions[tables.ANIME])
    assert params["data.copromoted_pairs.version"] == str(versions[tables.COPROMOTED_PAIRS])
    assert params["finetune.recipe"] == "contrastive"
    assert params["loss"] == "MultipleNegativesRankingLoss"
    assert params["data.train_pairs"] == "96"
    assert params["data.train_available"] == "144"  # the pair with title 999 was dropped
    # validation: every pair of the 12 held-out titles, graded (the same for both recipes)
    assert params["data.val_pairs"] == "66" and params["data.val_titles"] == "12"
    assert params["finetune.learning_rate"] == "0.003"
    assert tags["device"] == "cpu" and tags[FINGERPRINT_TAG] == params["fingerprint"]
    for name in ("val_spearman_before", "val_spearman_after", "val_ndcg_before", "train_s"):
        assert name in metrics, name
    assert metrics["train_steps"] == 6 and metrics["train_pairs_per_s"] > 0
    loss_steps = [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")]
    assert loss_steps == [2, 4, 6]
    assert len(client.get_metric_history(run.info.run_id, "val_spearman_epoch")) == 1
    version = client.get_model_version("anime_encoder_test", "1")
    assert version.run_id == run.info.run_id
    assert version.tags[FINGERPRINT_TAG] == params["fingerprint"]
    ckpt = tmp_path / "checkpoints" / "finetune" / params["fingerprint"]
    assert ckpt.is_dir() and not list(ckpt.iterdir())  # checkpoints removed once registered

    # writes no Delta table but its run record: same versions, no other new table folder
    assert {t: table_version(spark, lake, t) for t in versions} == versions
    assert sorted(p.name for p in Path(lake).iterdir()) == sorted([*versions, "pipeline_runs"])

    assert job.main(argv) == 0  # unchanged fingerprint: skipped (recorded in pipeline_runs)
    _, runs, registered = runs_and_versions(tmp_path)
    assert registered == [1] and len(runs) == 1
    log = read_table(spark, lake, tables.PIPELINE_RUNS).collect()
    mine = [(r.stage, r.status) for r in log if r.fingerprint == params["fingerprint"]]
    assert mine == [("finetune", "succeeded")]  # the run the registered version came from

    # forced by the runner (the job's --force, the pipeline's): trains and registers again
    assert job.main([*argv, "--force"]) == 0
    _, runs, registered = runs_and_versions(tmp_path)
    assert registered == [1, 2] and len(runs) == 2
    # or by its own setting
    assert job.main(argv + ["--set", "finetune.force=true"]) == 0
    _, runs, registered = runs_and_versions(tmp_path)
    assert registered == [1, 2, 3] and len(runs) == 3


@pytest.mark.e2e  # a whole job
def test_a_registered_version_gone_from_the_registry_is_trained_and_registered_again(
    spark, inputs, tiny_model_dir, tmp_path
):
    """The registered version is the stage's output: the run log records it, and a rerun
    whose version is no longer in the registry (deleted, or the registered model reset) runs
    the stage, which trains and registers again: skipped, ``embed_finetuned`` would drop the
    fine-tuned embedder (optional) without a word."""
    lake, _ = inputs
    job = load_job("finetune")
    argv = job_args(lake, tmp_path, tiny_model_dir)
    assert job.main(argv) == 0
    client, runs, registered = runs_and_versions(tmp_path)
    assert registered == [1]
    fingerprint = runs[0].data.params["fingerprint"]

    client.delete_model_version("anime_encoder_test", "1")
    assert job.main(argv) == 0
    _, runs, registered = runs_and_versions(tmp_path)
    assert registered == [2] and len(runs) == 2

    client.delete_registered_model("anime_encoder_test")  # the registry reset
    assert job.main(argv) == 0
    _, runs, registered = runs_and_versions(tmp_path)
    assert registered == [1] and len(runs) == 3

    assert job.main(argv) == 0  # in the registry as recorded: skipped
    _, runs, registered = runs_and_versions(tmp_path)
    assert registered == [1] and len(runs) == 3
    log = read_table(spark, lake, tables.PIPELINE_RUNS).orderBy("finished_at").collect()
    mine = [json.loads(r.outputs) for r in log if r.fingerprint == fingerprint]
    assert mine == [
        {"registered_model": f"models:/anime_encoder_test/{version}"} for version in (1, 2, 1)
    ]


@pytest.mark.e2e
def test_case_study_recipe_trains_on_training_pairs_with_cosine_loss(
    inputs, tiny_model_dir, tmp_path
):
    lake, _ = inputs
    argv = job_args(lake, tmp_path, tiny_model_dir, "finetune.recipe=case_study")
    assert load_job("finetune").main(argv) == 0
    _, runs, registered = runs_and_versions(tmp_path)
    params = runs[0].data.params
    assert registered == [1] and params["loss"] == "CosineSimilarityLoss"
    assert params["data.train_available"] == "288"  # training_pairs' train rows, 999 dropped
    assert params["data.val_pairs"] == "66"


@pytest.mark.e2e
def test_lora_recipe_trains_adapters_and_registers_a_plain_merged_encoder(
    inputs, tiny_model_dir, tmp_path
):
    from sentence_transformers import SentenceTransformer

    lake, _ = inputs
    argv = job_args(
        lake,
        tmp_path,
        tiny_model_dir,
        "finetune.recipe=lora",
        "finetune.lora.rank=4",
        "finetune.lora.learning_rate=0.01",
    )
    assert load_job("finetune").main(argv) == 0
    _, runs, registered = runs_and_versions(tmp_path)
    params, metrics = runs[0].data.params, runs[0].data.metrics
    assert registered == [1] and params["loss"] == "MultipleNegativesRankingLoss"
    assert params["finetune.lora.rank"] == "4" and params["finetune.lora.learning_rate"] == "0.01"
    assert params["finetune.lora.target_modules"] == "['query', 'value']"
    assert params["data.train_pairs"] == "96" and metrics["train_steps"] == 6
    assert "val_spearman_after" in metrics and "val_ndcg_after" in metrics

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlruns.db'}")
    from anime_recs.models import download_encoder

    tuned = SentenceTransformer(download_encoder("models:/anime_encoder_test/1"), device="cpu")
    base = SentenceTransformer(tiny_model_dir, device="cpu")
    assert not any("lora" in key for key in tuned.state_dict())  # merged: no peft to load it
    changed = {
        key
        for key, value in tuned.state_dict().items()
        if not torch.equal(value, base.state_dict()[key])
    }
    # only the target projections moved (plus nothing else: every other weight was frozen)
    assert changed and all(key.endswith(("query.weight", "value.weight")) for key in changed)


@pytest.mark.e2e
@pytest.mark.parametrize("recipe", ["contrastive", "lora"])
def test_job_resumes_an_interrupted_run_in_the_same_mlflow_run(
    inputs, tiny_model_dir, tmp_path, monkeypatch, recipe
):
    lake, _ = inputs
    job = load_job("finetune")
    # lora: the checkpoint holds the wrapped model; the rerun wraps before loading it
    argv = job_args(lake, tmp_path, tiny_model_dir, f"finetune.recipe={recipe}")

    def crash(*args, **kwargs):
        raise RuntimeError("killed while logging the model")

    monkeypatch.setattr(finetune_stage, "log_and_register", crash)
    with pytest.raises(RuntimeError, match="killed"):
        job.main(argv)
    _, runs, registered = runs_and_versions(tmp_path)
    assert registered == [] and [r.info.status for r in runs] == ["FAILED"]
    fingerprint = runs[0].data.tags[FINGERPRINT_TAG]
    ckpt = tmp_path / "checkpoints" / "finetune" / fingerprint
    assert [p.name for p in ckpt.iterdir()] == ["checkpoint-6"]

    monkeypatch.undo()
    job = load_job("finetune")
    assert job.main(argv) == 0
    _, runs, registered = runs_and_versions(tmp_path)
    assert registered == [1] and len(runs) == 1  # the same run, finished now
    run = runs[0]
    assert run.info.status == "FINISHED" and run.data.tags["resumed_from_step"] == "6"
    assert run.data.metrics["train_steps"] == 6


def test_job_without_inputs_fails_with_a_clear_message(tmp_path, tiny_model_dir):
    empty_lake = tmp_path / "empty_lake"
    empty_lake.mkdir()
    expected = (
        r"Delta tables \['training_pairs', 'copromoted_pairs', 'anime'\] not found under .*: "
        r"run their stages first \(jobs/ingest.py, jobs/jaccard.py\)"
    )
    with pytest.raises(FileNotFoundError, match=expected):
        load_job("finetune").main(job_args(str(empty_lake), tmp_path, tiny_model_dir))


def write_circle_vectors(spark, lake: str, embedder: str, model: str, step_degrees: float):
    """``embedder``'s rows of ``anime_embeddings``: train title t (0..35) at angle
    ``step_degrees * t`` on the unit circle, each val title between two train titles."""
    rows = []
    for title in range(48):
        degrees = step_degrees * title if title < 36 else step_degrees * (3 * (title - 36)) + 5
        vector = [float(np.cos(np.radians(degrees))), float(np.sin(np.radians(degrees)))]
        rows.append((embedder, title, vector, 2, model, "v1", f"h{title}"))
    frame = spark.createDataFrame(rows, tables.ANIME_EMBEDDINGS_SCHEMA)
    write_table(
        frame,
        lake,
        tables.ANIME_EMBEDDINGS,
        tables.ANIME_EMBEDDINGS_SCHEMA,
        replace_where=f"embedder = '{embedder}'",
        partition_by=["embedder"],
    )


@pytest.mark.e2e
def test_contrastive_pairs_are_chosen_inside_the_base_vectors_neighbourhoods(
    spark, tiny_model_dir, tmp_path
):
    lake = str(tmp_path / "lake")
    write_inputs(spark, lake)
    # titles 10 degrees apart on a circle: a train title's 8 nearest train titles are the 4 on
    # each side; of the same-group (co-promoted) pairs, whose ids differ by a multiple of 4,
    # only the 36 at distance 4 (mod 36) are inside. The val titles in between are no train
    # title's neighbour: neighbours are looked for among the candidates' titles only.
    write_circle_vectors(spark, lake, "near", tiny_model_dir, 10.0)
    write_circle_vectors(spark, lake, "other", tiny_model_dir, 10.0)
    near = f"{{kind: sentence-transformers, model: {tiny_model_dir}}}"
    argv = job_args(
        lake,
        tmp_path,
        tiny_model_dir,
        f"embed.embedders.near={near}",
        "finetune.content_neighbours_embedder=near",
        "finetune.content_neighbours=8",
    )
    job = load_job("finetune")
    assert job.main(argv) == 0
    _, runs, registered = runs_and_versions(tmp_path)
    params = runs[0].data.params
    assert registered == [1]
    assert params["data.train_available"] == "36" and params["data.train_pairs"] == "36"
    assert runs[0].data.metrics["train_steps"] == 3  # 36 pairs in batches of 16

    # another embedder's rows rewritten (as embed_finetuned does): the same fingerprint
    write_circle_vectors(spark, lake, "other", tiny_model_dir, 7.0)
    assert job.main(argv) == 0
    _, runs, registered = runs_and_versions(tmp_path)
    assert registered == [1] and len(runs) == 1
    # the neighbourhood vectors changed: trained again, on the new neighbourhoods
    write_circle_vectors(spark, lake, "near", tiny_model_dir, 7.0)
    assert job.main(argv) == 0
    _, runs, registered = runs_and_versions(tmp_path)
    assert registered == [1, 2]


@pytest.mark.e2e  # a whole job
def test_missing_or_wrong_neighbourhood_vectors_fail_with_one_line(
    spark, inputs, tiny_model_dir, tmp_path
):
    lake, _ = inputs
    base = f"embed.embedders.base_minilm_128.model={tiny_model_dir}"
    argv = job_args(lake, tmp_path, tiny_model_dir, base, "finetune.content_neighbours=5")
    with pytest.raises(JobError, match=r"anime_embeddings has no vectors of base_minilm_128 "):
        load_job("finetune").main(argv)
    # the default embedder embeds the packaged MiniLM, not this fine-tune's base model
    argv = job_args(lake, tmp_path, tiny_model_dir, "finetune.content_neighbours=5")
    with pytest.raises(JobError, match=r"must be a sentence-transformers embedder of"):
        load_job("finetune").main(argv)
