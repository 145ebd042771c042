"""Sentence-transformers in a pandas UDF: parity with encode, unit norm, threads, devices."""

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from anime_recs.embeddings.encode import get_model, local_cores, make_encode_fn, worker_threads
from anime_recs.embeddings.sentence import embed_texts, model_fingerprint, with_identity
from anime_recs.embeddings.text import titles_to_embed
from tests.embeddings.embed_data import DESCRIPTIONS, TINY_MAX_SEQ

TEXTS = [" ".join(d.split()) for d in DESCRIPTIONS.values()]
TORCH = {"backend": "torch", "quantize": "none"}  # the engine of conf/base.yaml's embedders


def test_worker_threads_pinned():
    assert worker_threads(2, 2) == 1
    assert worker_threads(2, 1) == 2
    assert worker_threads(16, 4) == 4
    assert worker_threads(2, 4) == 1  # never 0
    assert worker_threads(8, 0) == 8


def test_local_cores():
    assert local_cores("local") == 1
    assert local_cores("local[2]") == 2
    assert local_cores("local[3, 2]") == 3
    assert local_cores("local[*]") >= 1
    assert local_cores("spark://h:7077") is None


def _direct(model_dir: str, texts: list[str]) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_dir, device="cpu")
    model.max_seq_length = TINY_MAX_SEQ
    return model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)


def test_pandas_fn_matches_encode_and_is_unit_norm(tiny_model_dir):
    fn = make_encode_fn(tiny_model_dir, TINY_MAX_SEQ, 4, 1, "cpu", **TORCH)
    out = list(fn(iter([pd.Series(TEXTS[:4]), pd.Series(TEXTS[4:]), pd.Series([], dtype=str)])))
    assert [len(s) for s in out] == [4, len(TEXTS) - 4, 0]
    got = np.vstack([np.stack(s.tolist()) for s in out[:2]])
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, _direct(tiny_model_dir, TEXTS), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    # cosine of a description with itself is 1, and with another one is not
    assert float(got[0] @ got[0]) == pytest.approx(1.0, abs=1e-5)
    assert float(got[0] @ got[1]) < 0.9999


def test_model_loaded_once_per_process(tiny_model_dir):
    first = get_model(tiny_model_dir, TINY_MAX_SEQ, "cpu", **TORCH)
    fn = make_encode_fn(tiny_model_dir, TINY_MAX_SEQ, 4, device="cpu", **TORCH)
    list(fn(iter([pd.Series(TEXTS[:2]), pd.Series(TEXTS[2:])])))
    assert get_model(tiny_model_dir, TINY_MAX_SEQ, "cpu", **TORCH) is first
    assert get_model(tiny_model_dir, 16, "cpu", **TORCH) is not first  # other window: its own copy


def test_spark_matches_direct_encode(spark, anime_df, tiny_model_dir):
    texts = titles_to_embed(anime_df)
    vectors = embed_texts(texts, tiny_model_dir, TINY_MAX_SEQ, 4, 2, 1, **TORCH)
    rows = with_identity(vectors, "tiny", tiny_model_dir, "v1").orderBy("anime_id").collect()
    assert [r.anime_id for r in rows] == [1, 2, 3, 4, 5, 6]
    assert {(r.embedder, r.dim, r.model, r.model_version) for r in rows} == {
        ("tiny", 32, tiny_model_dir, "v1")
    }
    got = np.array([r.embedding for r in rows], dtype=np.float32)
    expected_texts = [r.text for r in texts.orderBy("anime_id").collect()]
    np.testing.assert_allclose(got, _direct(tiny_model_dir, expected_texts), atol=1e-5)
    # pandas function called directly gives the same as through Spark
    fn = make_encode_fn(tiny_model_dir, TINY_MAX_SEQ, 4, device="cpu", **TORCH)
    direct = np.stack(next(fn(iter([pd.Series(expected_texts)]))).tolist())
    np.testing.assert_allclose(got, direct, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_embed_texts_requires_columns(spark, tiny_model_dir):
    df = spark.createDataFrame([(1, "x")], "anime_id INT, description STRING")
    with pytest.raises(ValueError, match=r"missing columns \['text', 'text_hash'\]"):
        embed_texts(df, tiny_model_dir, 8, 2, 1, **TORCH)


def test_model_fingerprint(tmp_path, tiny_model_dir):
    assert model_fingerprint(tiny_model_dir) == model_fingerprint(tiny_model_dir)
    assert len(model_fingerprint(tiny_model_dir)) == 16
    assert model_fingerprint("sentence-transformers/all-MiniLM-L6-v2") is None
    (tmp_path / "a.bin").write_bytes(b"1")
    first = model_fingerprint(str(tmp_path))
    (tmp_path / "a.bin").write_bytes(b"2")
    assert model_fingerprint(str(tmp_path)) != first


@pytest.mark.slow
def test_real_minilm_through_spark_matches_encode(spark, anime_df):
    from anime_recs.models import load_sentence_transformer

    spec = "packaged:all-MiniLM-L6-v2"
    texts = titles_to_embed(anime_df)
    rows = (
        embed_texts(texts, spec, 128, 16, 2, 1, **TORCH)
        .orderBy("anime_id")
        .select("embedding", F.col("anime_id"))
        .collect()
    )
    got = np.array([r.embedding for r in rows], dtype=np.float32)
    assert got.shape == (6, 384)
    model = load_sentence_transformer(spec, max_seq_length=128, device="cpu")
    expected = model.encode(
        [r.text for r in texts.orderBy("anime_id").collect()], normalize_embeddings=True
    )
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_cluster_gpu_conf_shares_each_gpu_between_four_model_copies():
    from pathlib import Path

    from anime_recs.config import load_config

    conf = Path(__file__).resolve().parents[2] / "conf" / "cluster-gpu.yaml"
    # driver_memory: null is left to spark-submit (set here only so the file loads on its own)
    extra = load_config(conf, ["spark.driver_memory=4g"]).spark.extra
    per_gpu = float(extra["spark.executor.resource.gpu.amount"]) / float(
        extra["spark.task.resource.gpu.amount"]
    )
    assert per_gpu == 4
    assert int(extra["spark.executor.cores"]) // int(extra["spark.task.cpus"]) == 4
    assert extra["spark.python.worker.reuse"] == "true"
    assert extra["spark.executor.resource.gpu.discoveryScript"].endswith("getGpusResources.sh")
