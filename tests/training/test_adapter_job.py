"""The ``adapter`` recipe end to end: jobs/finetune.py trains and registers a vector adapter on
an embedder's stored vectors, jobs/embed.py writes the adapted embedder's rows."""

from __future__ import annotations

from pathlib import Path

import mlflow  # noqa: E402 - after the SQLAlchemy shim
import numpy as np
import pandas as pd
import pytest

from anime_recs import tables
from anime_recs.embeddings.adapted import adapt, load_adapter
from anime_recs.embeddings.text import titles_to_embed
from anime_recs.errors import JobError
from anime_recs.lakehouse import read_table, write_table
from anime_recs.models import download_model
from anime_recs.training.registry import FINGERPRINT_TAG
from tests.helpers import load_job
from tests.training.training_data import hidden_world

pytestmark = pytest.mark.e2e  # jobs in their own runs (the map and its rows: fast unit tests)

REPO = Path(__file__).resolve().parents[2]
MODEL = "anime_adapter_test"
DIM = 16


def write_world(spark, lake: str) -> np.ndarray:
    """A lake of the hidden world (``training_data.hidden_world``: 400 titles, co-promotion
    following a hidden view of their 16-dim vectors, titles 300-399 held out): ``anime`` with a
    description per title, ``copromoted_pairs`` (train: the strongest fifth of the pairs of two
    train titles, as the jaccard stage keeps each title's top partners; val: every valued pair
    of two held-out titles) and ``src``'s rows of ``anime_embeddings``, with the current text
    hashes but title 5's under a stale one (its description changed since). Returns the
    vectors."""
    from pyspark.sql import functions as F

    vectors, a, b, value, train, val = hidden_world()
    pairs = pd.DataFrame({"anime_a": np.minimum(a, b), "anime_b": np.maximum(a, b), "j": value})
    pairs = pairs.drop_duplicates(["anime_a", "anime_b"])
    pairs = pairs[pairs["j"] > 0]
    inside = pairs[train[pairs["anime_a"]] & train[pairs["anime_b"]]]
    strong = inside[inside["j"] > inside["j"].quantile(0.8)].assign(split=tables.TRAIN)
    held = pairs[val[pairs["anime_a"]] & val[pairs["anime_b"]]].assign(split=tables.VAL)
    rows = [
        (int(r.anime_a), int(r.anime_b), float(r.j), 5, r.split)
        for r in pd.concat([strong, held]).itertuples()
    ]
    write_table(
        spark.createDataFrame(rows, tables.COPROMOTED_PAIRS_SCHEMA),
        lake,
        tables.COPROMOTED_PAIRS,
        tables.COPROMOTED_PAIRS_SCHEMA,
    )
    anime = spark.createDataFrame(
        [(t, f"title {t}", f"the story of title {t}", True) for t in range(len(vectors))],
        "anime_id int, name string, description string, has_description boolean",
    )
    for field in tables.ANIME_SCHEMA.fields:
        if field.name not in anime.columns:
            anime = anime.withColumn(field.name, F.lit(None).cast(field.dataType))
    write_table(anime, lake, tables.ANIME, tables.ANIME_SCHEMA)
    write_table(
        spark.createDataFrame([], tables.TRAINING_PAIRS_SCHEMA),
        lake,
        tables.TRAINING_PAIRS,
        tables.TRAINING_PAIRS_SCHEMA,
    )
    hashes = {
        r.anime_id: r.text_hash
        for r in titles_to_embed(read_table(spark, lake, tables.ANIME)).collect()
    }
    source = [
        ("src", t, [float(x) for x in v], DIM, "m", "src-v1", "stale" if t == 5 else hashes[t])
        for t, v in enumerate(vectors)
    ]
    write_table(
        spark.createDataFrame(source, tables.ANIME_EMBEDDINGS_SCHEMA),
        lake,
        tables.ANIME_EMBEDDINGS,
        tables.ANIME_EMBEDDINGS_SCHEMA,
        replace_where="embedder = 'src'",
        partition_by=["embedder"],
    )
    return vectors


def job_args(lake: str, tmp_path: Path, model_dir: str, *extra: str) -> list[str]:
    settings = {
        "spark.shuffle_partitions": 2,
        "paths.lake": lake,
        "paths.checkpoints": tmp_path / "checkpoints",
        "mlflow.tracking_uri": f"sqlite:///{tmp_path / 'mlruns.db'}",
        "mlflow.artifact_location": tmp_path / "artifacts",
        "mlflow.experiment": "adapter-job-test",
        "embed.embedders.src": f"{{kind: sentence-transformers, model: {model_dir}}}",
        "embed.embedders.adapted": (
            f'{{kind: adapter, model: "models:/{MODEL}/latest", source: src}}'
        ),
        "embed.run": "[adapted]",
        "finetune.recipe": "adapter",
        "finetune.adapter.source": "src",
        "finetune.adapter.registered_model": MODEL,
        "finetune.adapter.rank": 8,
        "finetune.adapter.epochs": 15,
        "finetune.adapter.batch_size": 32,
        "finetune.adapter.learning_rate": 0.01,
        "finetune.adapter.l2": 0.01,
        "finetune.adapter.scale": 10.0,
        "finetune.adapter.candidates": 10,
    }
    argv = ["--conf", str(REPO / "conf" / "local.yaml")]
    for key, value in {**settings, **dict(item.split("=", 1) for item in extra)}.items():
        argv += ["--set", f"{key}={value}"]
    return argv


def runs_and_versions(tmp_path: Path):
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns.db'}")
    experiment = client.get_experiment_by_name("adapter-job-test")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    versions = client.search_model_versions(f"name = '{MODEL}'")
    return client, runs, sorted(int(v.version) for v in versions)


@pytest.mark.parametrize("objective", ["listwise", pytest.param("in_batch", marks=pytest.mark.e2e)])
def test_adapter_recipe_trains_registers_skips_embeds_and_trains_again_when_forced(
    spark, tiny_model_dir, tmp_path, objective
):
    lake = str(tmp_path / "lake")
    vectors = write_world(spark, lake)
    argv = job_args(lake, tmp_path, tiny_model_dir, f"finetune.adapter.objective={objective}")
    finetune = load_job("finetune")
    assert finetune.main(argv) == 0

    client, runs, registered = runs_and_versions(tmp_path)
    assert registered == [1] and len(runs) == 1
    run = runs[0]
    params, metrics = run.data.params, run.data.metrics
    assert params["finetune.recipe"] == "adapter"
    assert params["finetune.adapter.objective"] == objective
    assert params["data.train_pairs"] == "423" and params["data.val_pairs"] == "187"
    assert params["data.val_titles"] == "99"  # one held-out title has no valued pair
    chosen = "spearman" if objective == "in_batch" else "ndcg"
    assert params["validation_measure"] == chosen
    # the held-out titles' measure rose: the group directions transfer to unseen titles
    assert metrics[f"val_{chosen}_after"] > metrics[f"val_{chosen}_before"] + 0.02
    assert metrics["best_epoch"] > 0
    for name in ("val_spearman_before", "val_spearman_after", "val_ndcg_before", "train_s"):
        assert name in metrics, name
    assert len(client.get_metric_history(run.info.run_id, "train_loss")) == 15
    version = client.get_model_version(MODEL, "1")
    assert version.tags[FINGERPRINT_TAG] == run.data.tags[FINGERPRINT_TAG]

    assert finetune.main(argv) == 0  # unchanged: no new run, no new version
    _, runs, registered = runs_and_versions(tmp_path)
    assert registered == [1] and len(runs) == 1

    assert load_job("embed").main(argv) == 0
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlruns.db'}")
    folder = download_model(f"models:/{MODEL}/1")
    adapter = load_adapter(folder)
    assert adapter.meta["source"] == "src"
    rows = (
        read_table(spark, lake, tables.ANIME_EMBEDDINGS)
        .where("embedder = 'adapted'")
        .orderBy("anime_id")
        .collect()
    )
    # title 5's source vector is of an old description: not adapted (embed_base redoes it)
    assert [r.anime_id for r in rows] == [t for t in range(len(vectors)) if t != 5]
    expected = adapt(np.stack([vectors[r.anime_id] for r in rows]), adapter.a, adapter.b)
    np.testing.assert_allclose(np.array([r.embedding for r in rows]), expected, atol=1e-6)
    assert {r.model_version for r in rows} == {f"{adapter.identity}+src-v1"}
    assert {r.model for r in rows} == {f"models:/{MODEL}/latest"}
    # the registered pyfunc model maps vectors the same way
    loaded = mlflow.pyfunc.load_model(f"models:/{MODEL}/1")
    source = np.stack([vectors[t] for t in (0, 1, 2)]).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(source), adapt(source, adapter.a, adapter.b))

    assert finetune.main([*argv, "--force"]) == 0  # forced by the runner: trained again
    _, runs, registered = runs_and_versions(tmp_path)
    assert registered == [1, 2] and len(runs) == 2


def test_adapter_without_source_vectors_or_of_another_source_fails_with_one_line(
    spark, tiny_model_dir, tmp_path
):
    lake = str(tmp_path / "lake")
    write_world(spark, lake)
    other = f"embed.embedders.other={{kind: sentence-transformers, model: {tiny_model_dir}}}"
    argv = job_args(lake, tmp_path, tiny_model_dir, other, "finetune.adapter.source=other")
    with pytest.raises(
        JobError,
        match=r"anime_embeddings has no vectors of other \(finetune.adapter.source\) under .*: "
        r"run the embed_base stage with it first",
    ):
        load_job("finetune").main(argv)

    assert load_job("finetune").main(job_args(lake, tmp_path, tiny_model_dir)) == 0
    wrong = job_args(
        lake,
        tmp_path,
        tiny_model_dir,
        other,
        f'embed.embedders.adapted={{kind: adapter, model: "models:/{MODEL}/1", source: other}}',
    )
    with pytest.raises(JobError, match=r"was trained on the vectors of 'src', not of its source"):
        load_job("embed").main(wrong)
