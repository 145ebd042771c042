"""OpenAI embeddings over real HTTP against the local fake server: batching, retries, errors."""

import logging

import numpy as np
import pytest

from anime_recs.embeddings.openai_embedder import (
    EmbeddingRequestError,
    approx_tokens,
    clip_text,
    embed_all,
    embed_batch,
    l2_normalise,
    make_client,
    plan_batches,
    scrub,
)
from tests.embeddings.fake_openai import FakeOpenAI, fake_vector

KEY = "sk-test-FAKEKEY-0123456789abcdef"


def test_approx_tokens_pinned():
    assert approx_tokens("") == 1
    assert approx_tokens("abcdef") == 3  # 6 // 3 + 1
    assert approx_tokens("x" * 3000) == 1001


def test_plan_batches_respects_input_and_token_limits():
    items = [(str(i), "x" * n) for i, n in enumerate([3, 3, 3, 30, 3, 3])]
    # tokens per item: 2, 2, 2, 11, 2, 2
    batches = plan_batches(items, max_inputs=2, max_tokens=100)
    assert [[k for k, _ in b] for b in batches] == [["0", "1"], ["2", "3"], ["4", "5"]]
    batches = plan_batches(items, max_inputs=10, max_tokens=6)
    # 2+2+2=6 fits; 11 alone is over the limit but still gets its own batch
    assert [[k for k, _ in b] for b in batches] == [["0", "1", "2"], ["3"], ["4", "5"]]
    assert plan_batches([], 2, 10) == []


def test_clip_text():
    assert clip_text("abc", max_tokens=1) == "abc"
    assert clip_text("abcdefgh", max_tokens=2) == "abcdef"


def test_make_client_maps_retries_and_timeout_to_the_sdk():
    client = make_client(KEY, "http://127.0.0.1:9/v1", timeout_s=2.5, max_retries=3)
    try:
        assert client.max_retries == 3
        assert client.timeout == 2.5
        assert str(client.base_url) == "http://127.0.0.1:9/v1/"
    finally:
        client.close()


def test_scrub_removes_keys():
    msg = f"Incorrect API key provided: {KEY}\nBearer abc"
    out = scrub(msg, KEY)
    assert KEY not in out and "FAKEKEY" not in out and "\n" not in out
    assert "sk-" not in scrub("key sk-abcdefgh1234 rejected")


def test_l2_normalise_pinned():
    got = l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(got, [[0.6, 0.8], [0.0, 0.0]])
    assert got.dtype == np.float32


def test_retries_timeout_429_500_then_succeeds(caplog):
    caplog.set_level(logging.DEBUG)
    texts = ["alpha", "beta", "gamma"]
    # the timeout first: its retry waits the SDK's own backoff (no retry-after to go by),
    # which is shortest (0.375-0.5 s) on the first retry
    with FakeOpenAI(KEY, dim=6, plan=["timeout", "429", "500"], timeout_sleep_s=1.0) as fake:
        client = make_client(KEY, fake.base_url, timeout_s=0.3, max_retries=4)
        got = embed_batch(client, "m", texts, None)
        assert fake.requests == 4  # 3 failures + 1 success
        assert [s for s in fake.statuses if s != 200] == [429, 500]
    np.testing.assert_allclose(got, np.stack([fake_vector(t, 6) for t in texts]), rtol=1e-6)
    ours = [
        r.getMessage()
        for r in caplog.records
        if r.name == "anime_recs.embeddings.openai_embedder" and r.levelno == logging.WARNING
    ]
    assert ours == ["openai embeddings: a batch of 3 texts succeeded after 3 retries"]
    assert KEY not in caplog.text


def test_gives_up_after_max_retries():
    with FakeOpenAI(KEY, plan=["500"] * 3) as fake:
        client = make_client(KEY, fake.base_url, timeout_s=5, max_retries=2)
        with pytest.raises(EmbeddingRequestError) as info:
            embed_batch(client, "m", ["a"], None)
        assert fake.requests == 3
    assert str(info.value) == (
        "OpenAI embeddings request for model 'm' failed after 3 attempts, last error: HTTP 500"
    )
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_401_is_one_clear_line_without_the_key(capsys, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "sk-wrong-SECRETVALUE-987654321"
    with FakeOpenAI(KEY) as fake:
        client = make_client(wrong, fake.base_url, timeout_s=5, max_retries=4)
        with pytest.raises(EmbeddingRequestError) as info:
            embed_batch(client, "m", ["a"], None)
        assert fake.requests == 1  # not retried, although 4 retries are allowed
    message = str(info.value)
    assert message == (
        "OpenAI embeddings HTTP 401: authentication failed: "
        "check the OPENAI_API_KEY environment variable"
    )
    assert info.value.__cause__ is None and info.value.__suppress_context__
    captured = capsys.readouterr()
    for text in (message, caplog.text, captured.out, captured.err):
        assert "SECRETVALUE" not in text


def test_400_is_not_retried_and_says_why():
    with FakeOpenAI(KEY, plan=["400"]) as fake:
        client = make_client(KEY, fake.base_url, timeout_s=5, max_retries=4)
        with pytest.raises(EmbeddingRequestError, match=r"HTTP 400: .*input is too long"):
            embed_batch(client, "m", ["a"], None)
        assert fake.requests == 1


def test_dimensions_and_base64_round_trip():
    with FakeOpenAI(KEY, dim=8) as fake:
        client = make_client(KEY, fake.base_url, timeout_s=5, max_retries=4)
        got = embed_batch(client, "m", ["x", "y"], 4)
    assert got.shape == (2, 4)
    np.testing.assert_allclose(got[1], fake_vector("y", 4), rtol=1e-6)


def test_embed_all_concurrent_batches_with_failures():
    items = [(f"h{i}", f"text number {i}") for i in range(23)]
    seen: dict[str, np.ndarray] = {}

    def collect(keys, vectors):
        seen.update(zip(keys, vectors, strict=True))

    with FakeOpenAI(KEY, dim=5, plan=["429", "500", "429"]) as fake:
        client = make_client(KEY, fake.base_url, timeout_s=5, max_retries=4)
        n = embed_all(client, "m", items, collect, max_batch_inputs=5, max_concurrency=3)
        assert n == 5
        assert fake.requests == 5 + 3
        assert sorted(fake.answered_inputs) == sorted(t for _, t in items)
    for key, text in items:
        np.testing.assert_allclose(seen[key], fake_vector(text, 5), rtol=1e-6)


def test_embed_all_hands_over_completed_batches_before_raising():
    items = [(f"h{i}", f"t{i}") for i in range(6)]
    seen: list[str] = []
    with FakeOpenAI(KEY, plan=["ok", "400"]) as fake:
        client = make_client(KEY, fake.base_url, timeout_s=5, max_retries=4)
        with pytest.raises(EmbeddingRequestError, match="HTTP 400"):
            embed_all(
                client,
                "m",
                items,
                lambda keys, _: seen.extend(keys),
                max_batch_inputs=2,
                max_concurrency=1,
            )
        assert fake.requests == 2  # no new batch after the failure
    assert seen == ["h0", "h1"]
