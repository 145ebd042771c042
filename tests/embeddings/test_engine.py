"""Inference engines: ONNX (fp32, int8) exports of a SentenceTransformer stay close to torch
fp32, are made once per model content, and run in the Spark embedding job as their own
vector version."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
from benchmarks.bench_embed import synthetic_descriptions
from pyspark.sql import functions as F

from anime_recs.config import ConfigError, load_config
from anime_recs.embeddings import engine
from anime_recs.embeddings.sentence import encoder_version
from anime_recs.lakehouse import read_table
from anime_recs.models import load_sentence_transformer, resolve_model_path
from anime_recs.tables import ANIME_EMBEDDINGS
from tests.embeddings.embed_data import (
    DESCRIPTIONS,
    TINY_MAX_SEQ,
    counts_logged,
    run_job,
    tiny,
    write_anime,
)

# measured over all 16k titles of the real 2020 files, int8 vs torch fp32 has a median cosine
# of ~0.99 (docs/performance.md); a per-tensor or activation-quantized export falls far below
INT8_MIN_COSINE = 0.97
INT8_MEDIAN_COSINE = 0.985


def test_engine_tag_and_vector_version_pinned():
    assert engine.engine_tag("torch", "none") == ""
    assert engine.engine_tag("onnx", "none") == "-onnx"
    assert engine.engine_tag("onnx", "int8") == "-onnx-int8"
    assert encoder_version("abc", 128, engine.engine_tag("onnx", "int8")) == "abc-seq128-onnx-int8"
    assert encoder_version("abc", 128) == "abc-seq128"  # torch versions unchanged
    assert engine.onnx_file("int8") == engine.INT8_FILE
    assert engine.onnx_file("none") == engine.ONNX_FILE


def test_int8_without_onnx_is_a_one_line_config_error():
    with pytest.raises(ConfigError, match=r"base_minilm_128\.quantize: int8 needs backend onnx"):
        load_config(
            overrides=["embed.embedders.base_minilm_128.quantize=int8"],
        )


@pytest.fixture(scope="module")
def minilm_exports(tmp_path_factory):
    """The packaged MiniLM exported once to ONNX fp32 and int8 (a real model: the bound
    on cosine is only meaningful for trained weights)."""
    path = resolve_model_path("packaged:all-MiniLM-L6-v2")
    cache = tmp_path_factory.mktemp("model-cache")
    folder = engine.exported_folder(path, "minilm", "int8", cache)
    return path, folder


@pytest.mark.slow  # the real MiniLM, exported twice: the slow suite's kind of check
def test_onnx_engines_stay_close_to_torch_on_a_real_model(minilm_exports):
    path, folder = minilm_exports
    texts = synthetic_descriptions(48, seed=3)
    torch_vectors = load_sentence_transformer(path, 128, "cpu").encode(
        texts, normalize_embeddings=True
    )
    for quantize in ("none", "int8"):
        model = engine.load_onnx_model(folder, quantize, 128, num_threads=1)
        vectors = model.encode(texts, normalize_embeddings=True)
        assert vectors.shape == torch_vectors.shape
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        cosine = (vectors * torch_vectors).sum(axis=1)
        if quantize == "none":
            assert cosine.min() > 0.9999
        else:
            assert cosine.min() >= INT8_MIN_COSINE, cosine.min()
            assert np.median(cosine) >= INT8_MEDIAN_COSINE, np.median(cosine)
            assert cosine.min() < 0.99999  # the int8 graph really is another engine


def test_attention_products_stay_fp32_in_the_int8_graph(tiny_model_dir, tmp_path):
    import onnx

    # the tiny BERT has MiniLM's layer structure (2 layers instead of 6): a structural check
    folder = engine.exported_folder(tiny_model_dir, "tiny", "int8", tmp_path)
    excluded = engine.activation_matmuls(f"{folder}/{engine.ONNX_FILE}")
    assert len(excluded) == 4  # Q.K^T and weights.V in each of the 2 layers
    assert all("attention/self/MatMul" in name for name in excluded)
    quantized = onnx.load(f"{folder}/{engine.INT8_FILE}").graph
    ops = {node.op_type for node in quantized.node}
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops
    assert sum(node.op_type == "MatMul" for node in quantized.node) == 4


def test_an_export_is_made_once_and_an_interrupted_one_is_replaced(tmp_path, monkeypatch):
    calls = []

    def fake_export(model_folder, quantize, target):
        calls.append(quantize)
        (target / "onnx").mkdir(parents=True)
        (target / engine.ONNX_FILE).write_text("graph")

    monkeypatch.setattr(engine, "export_onnx", fake_export)
    broken = tmp_path / "onnx" / "fp-int8"
    broken.mkdir(parents=True)  # an earlier export killed before its marker was written
    (broken / "partial").write_text("x")
    first = engine.exported_folder("model", "fp", "int8", tmp_path)
    second = engine.exported_folder("model", "fp", "int8", tmp_path)
    assert first == second == str(broken)
    assert calls == ["int8"]
    assert not (broken / "partial").exists()
    assert sorted(p.name for p in (tmp_path / "onnx").iterdir()) == ["fp-int8"]  # no temp left


@pytest.mark.e2e
def test_spark_job_on_int8_onnx_is_its_own_vector_version(
    spark, tmp_path, tiny_model_dir, caplog, monkeypatch
):
    caplog.set_level(logging.INFO)
    monkeypatch.setenv("ANIME_RECS_MODEL_CACHE", str(tmp_path / "cache"))
    lake = str(tmp_path / "lake")
    write_anime(spark, lake, DESCRIPTIONS)
    assert run_job(lake, ["tiny"], {"tiny": tiny(tiny_model_dir)}) == 0
    onnx = {"tiny": [*tiny(tiny_model_dir), "backend=onnx", "quantize=int8"]}
    assert run_job(lake, ["tiny"], onnx) == 0
    assert counts_logged(caplog) == (0, len(DESCRIPTIONS))  # torch vectors are not reused
    rows = read_table(spark, lake, ANIME_EMBEDDINGS).filter(F.col("embedder") == "tiny").collect()
    assert sorted(r.anime_id for r in rows) == sorted(DESCRIPTIONS)
    assert {r.model_version.split("-seq")[1] for r in rows} == {f"{TINY_MAX_SEQ}-onnx-int8"}
    for r in rows:
        assert abs(np.linalg.norm(np.asarray(r.embedding)) - 1.0) < 1e-5
    exports = list((tmp_path / "cache" / "onnx").iterdir())
    assert len(exports) == 1 and exports[0].name.endswith("-int8")
    shutil.rmtree(tmp_path / "cache" / "onnx")
    # forced: an unchanged stage is skipped before it looks at the vectors
    assert run_job(lake, ["tiny"], onnx, options=("--force",)) == 0
    assert counts_logged(caplog) == (len(DESCRIPTIONS), 0)  # the rerun reuses the int8 vectors
    assert not (tmp_path / "cache" / "onnx").exists()  # and, with nothing to encode, exports none


def test_the_archive_for_executors_holds_only_the_graph_the_engine_runs(tmp_path):
    import zipfile

    folder = tmp_path / "fp-int8"
    (folder / "onnx").mkdir(parents=True)
    for name in (engine.ONNX_FILE, engine.INT8_FILE, "modules.json", "1_Pooling/config.json"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(name)
    archive = engine.export_archive(str(folder), "int8")
    assert archive == str(tmp_path / "fp-int8.zip")
    with zipfile.ZipFile(archive) as z:
        assert sorted(z.namelist()) == sorted(
            [engine.INT8_FILE, "modules.json", "1_Pooling/config.json"]
        )
    assert engine.export_archive(str(folder), "int8") == archive  # made once
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.e2e  # a whole job
def test_an_archive_shipped_through_spark_files_loads_in_a_task(spark, minilm_exports):
    from pyspark import SparkFiles

    from anime_recs.embeddings.encode import SPARK_FILES_PREFIX, get_model

    _, folder = minilm_exports
    archive = engine.export_archive(folder, "int8")
    spark.sparkContext.addArchive(archive)
    name = SPARK_FILES_PREFIX + archive.rsplit("/", 1)[-1]

    def encode(rows):
        model = get_model(name, 128, "cpu", backend="onnx", quantize="int8", num_threads=1)
        unpacked = SparkFiles.get(name[len(SPARK_FILES_PREFIX) :])
        for row in rows:
            yield unpacked, float(np.linalg.norm(model.encode([row[0]])[0]))

    got = spark.sparkContext.parallelize([("A boy and his robot.",)], 1).mapPartitions(encode)
    unpacked, norm = got.collect()[0]
    assert unpacked != folder and abs(norm - 1.0) < 1e-5
