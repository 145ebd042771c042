"""jobs/embed.py end to end on real Delta tables: tiny model in Spark + OpenAI over HTTP."""

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from anime_recs.cli import JobError
from anime_recs.embeddings.openai_embedder import l2_normalise
from anime_recs.embeddings.text import normalise_text, text_hash
from anime_recs.lakehouse import read_table, table_exists, write_table
from anime_recs.tables import ANIME, ANIME_EMBEDDINGS, ANIME_SCHEMA, EMBEDDING_CACHE
from tests.embeddings.embed_data import DESCRIPTIONS, TINY_MAX_SEQ, anime_rows, run_job, tiny
from tests.embeddings.fake_openai import FakeOpenAI, fake_vector
from tests.helpers import mlflow_store

KEY = "sk-test-JOBKEY-abcdef0123456789"
FAST_OPENAI = [
    "kind=openai",
    "model=fake-embed",
    "max_batch_inputs=2",
    "max_concurrency=2",
    "max_retries=4",
    "timeout_s=0.5",
]


@pytest.fixture(scope="module")
def anime_only_lake(spark, tmp_path_factory) -> Path:
    """A lake holding ``anime`` (:func:`anime_rows`), written once for the module."""
    lake = tmp_path_factory.mktemp("anime_only") / "lake"
    write_table(spark.createDataFrame(anime_rows(), ANIME_SCHEMA), str(lake), ANIME, ANIME_SCHEMA)
    return lake


@pytest.fixture()
def anime_lake(anime_only_lake, tmp_path) -> str:
    """This test's copy of :func:`anime_only_lake` (a copy costs less than a Delta write)."""
    copy = tmp_path / "lake"
    shutil.copytree(anime_only_lake, copy)
    return str(copy)


def openai_cfg(base_url: str) -> list[str]:
    return [*FAST_OPENAI, f"base_url={base_url}"]


def _vectors(df, embedder: str) -> dict[int, np.ndarray]:
    rows = df.filter(F.col("embedder") == embedder).collect()
    return {r.anime_id: np.asarray(r.embedding, dtype=np.float32) for r in rows}


def _lake_bytes(lake: str) -> bytes:
    return b"".join(p.read_bytes() for p in Path(lake).rglob("*") if p.is_file())


@pytest.mark.e2e  # the whole job three times
def test_job_end_to_end_rerun_and_replace_where(
    spark, anime_lake, tiny_model_dir, monkeypatch, caplog, capsys
):
    from sentence_transformers import SentenceTransformer

    caplog.set_level(logging.INFO)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    texts = {i: normalise_text(d) for i, d in DESCRIPTIONS.items()}
    with FakeOpenAI(KEY, dim=6, plan=["429", "500", "timeout"], timeout_sleep_s=1.0) as fake:
        embedders = {"tiny": tiny(tiny_model_dir), "oa": openai_cfg(fake.base_url)}
        assert run_job(anime_lake, ["tiny", "oa"], embedders) == 0
        assert fake.requests == 3 + 3  # 6 texts in batches of 2, plus the 3 injected failures
        assert sorted(fake.answered_inputs) == sorted(texts.values())
        first = read_table(spark, anime_lake, ANIME_EMBEDDINGS).cache()

        # one row per (embedder, titled anime); identity columns filled
        counts = {(r.embedder, r.anime_id) for r in first.collect()}
        assert counts == {(e, i) for e in ("tiny", "oa") for i in DESCRIPTIONS}
        assert first.count() == 12
        meta = first.select("embedder", "dim", "model", "model_version").distinct().collect()
        assert {(r.embedder, r.dim, r.model) for r in meta} == {
            ("tiny", 32, tiny_model_dir),
            ("oa", 6, "fake-embed"),
        }
        assert all(r.model_version for r in meta if r.embedder == "tiny")
        hashes = {r.anime_id: r.text_hash for r in first.filter("embedder = 'tiny'").collect()}
        assert hashes == {i: text_hash(d) for i, d in DESCRIPTIONS.items()}

        # vectors: unit norm, tiny == direct encode, oa == normalised fake vectors
        model = SentenceTransformer(tiny_model_dir, device="cpu")
        model.max_seq_length = TINY_MAX_SEQ
        tiny_vecs = _vectors(first, "tiny")
        ids = sorted(texts)
        expected = model.encode([texts[i] for i in ids], normalize_embeddings=True)
        np.testing.assert_allclose(np.stack([tiny_vecs[i] for i in ids]), expected, atol=1e-5)
        oa_vecs = _vectors(first, "oa")
        expected_oa = l2_normalise(np.stack([fake_vector(texts[i], 6) for i in ids]))
        np.testing.assert_allclose(np.stack([oa_vecs[i] for i in ids]), expected_oa, atol=1e-6)
        for v in [*tiny_vecs.values(), *oa_vecs.values()]:
            assert float(v @ v) == pytest.approx(1.0, abs=1e-5)

        cache = read_table(spark, anime_lake, EMBEDDING_CACHE)
        assert cache.filter("model = 'fake-embed'").count() == 6

        # rerun (forced: an unchanged one is skipped): no request for cached texts, same
        # table contents
        fake.reset_counts()
        assert run_job(anime_lake, ["tiny", "oa"], embedders, options=("--force",)) == 0
        assert fake.requests == 0
        assertDataFrameEqual(read_table(spark, anime_lake, ANIME_EMBEDDINGS), first, rtol=1e-6)

        # rewriting one embedder leaves the other's rows untouched
        assert run_job(anime_lake, ["tiny"], {"tiny": tiny(tiny_model_dir, 8)}) == 0
        after = read_table(spark, anime_lake, ANIME_EMBEDDINGS)
        assertDataFrameEqual(after.filter("embedder = 'oa'"), first.filter("embedder = 'oa'"))
        changed = _vectors(after, "tiny")
        assert set(changed) == set(tiny_vecs)
        assert not np.allclose(changed[5], tiny_vecs[5], atol=1e-3)  # text 5 > 8 tokens

    captured = capsys.readouterr()
    for text in (caplog.text, captured.out, captured.err):
        assert KEY not in text and "JOBKEY" not in text
    assert b"JOBKEY" not in _lake_bytes(anime_lake)
    first.unpersist()


@pytest.mark.e2e
def test_rerun_after_failure_only_pays_for_missing(spark, anime_lake, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    settings = ["max_concurrency=1", "max_retries=1"]
    with FakeOpenAI(KEY, dim=4, plan=["ok", "500", "500"]) as fake:
        embedders = {"oa": [*openai_cfg(fake.base_url), *settings]}
        with pytest.raises(JobError, match=r"embedder oa: .*failed after 2 attempts.*HTTP 500"):
            run_job(anime_lake, ["oa"], embedders)
        paid = list(fake.answered_inputs)
        assert len(paid) == 2
        cached = read_table(spark, anime_lake, EMBEDDING_CACHE).collect()
        assert sorted(r.text_hash for r in cached) == sorted(text_hash(t) for t in paid)

        fake.reset_counts()
        assert run_job(anime_lake, ["oa"], embedders) == 0
        assert fake.requests == 2  # the 4 missing texts, 2 per batch
        assert sorted(fake.answered_inputs + paid) == sorted(
            normalise_text(d) for d in DESCRIPTIONS.values()
        )
    assert read_table(spark, anime_lake, ANIME_EMBEDDINGS).count() == 6


@pytest.mark.e2e  # a whole job
def test_wrong_key_fails_with_one_clear_line(anime_lake, monkeypatch, caplog, capsys):
    wrong = "sk-wrong-LEAKME-1234567890"
    monkeypatch.setenv("OPENAI_API_KEY", wrong)
    with FakeOpenAI(KEY) as fake:
        with pytest.raises(JobError) as info:
            run_job(anime_lake, ["oa"], {"oa": [*openai_cfg(fake.base_url), "max_concurrency=1"]})
        assert fake.requests == 1  # not retried, no further batch sent
    assert str(info.value) == (
        "embedder oa: OpenAI embeddings HTTP 401: authentication failed: "
        "check the OPENAI_API_KEY environment variable"
    )
    captured = capsys.readouterr()
    for text in (caplog.text, captured.out, captured.err):
        assert "LEAKME" not in text
    assert b"LEAKME" not in _lake_bytes(anime_lake)


def test_no_key_skips_openai_with_warning(spark, anime_lake, monkeypatch, caplog):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with FakeOpenAI(KEY) as fake:
        assert run_job(anime_lake, ["oa"], {"oa": openai_cfg(fake.base_url)}) == 0
        assert fake.requests == 0
    assert "embedder oa skipped: OPENAI_API_KEY is not set in the environment" in caplog.text
    assert not table_exists(spark, anime_lake, ANIME_EMBEDDINGS)


@pytest.mark.e2e  # a whole job
def test_unregistered_model_optional_skips_required_fails(anime_lake, tmp_path, caplog):
    mlflow_db = f"mlflow.tracking_uri={mlflow_store(tmp_path)}"
    spec = ["kind=sentence-transformers", "model=models:/no_such_encoder/latest"]
    assert run_job(anime_lake, ["ft"], {"ft": [*spec, "optional=true"]}, mlflow_db) == 0
    assert "embedder ft skipped: model 'models:/no_such_encoder/latest' not available" in (
        caplog.text
    )
    with pytest.raises(JobError, match=r"model 'models:/no_such_encoder/latest' cannot be"):
        run_job(anime_lake, ["ft"], {"ft": spec}, mlflow_db)


def test_missing_anime_table_is_a_clear_error(lake):
    with pytest.raises(FileNotFoundError, match="Delta table 'anime' not found"):
        run_job(lake, ["oa"], {"oa": FAST_OPENAI})
