"""OpenAI (or OpenAI-compatible) embeddings: batching, bounded concurrency, retries, cache.

The calls run **on the driver**, not in Spark tasks: ~16k descriptions make ~65 requests, the
API's rate limits are the bottleneck, and one process with a thread pool of
``max_concurrency`` gives precise control over concurrency, retries and what has already been
paid for; spreading them over executors would multiply concurrent callers past the rate limit.

- Batches (:func:`plan_batches`) hold at most ``max_batch_inputs`` texts and
  ``max_batch_tokens`` approximate tokens (:func:`approx_tokens`, deliberately conservative).
- Retries are the SDK's own (:func:`make_client` passes ``max_retries`` and ``timeout``): it
  retries 408/409/429/5xx, timeouts and connection errors with exponential backoff and
  jitter, honouring ``retry-after-ms`` / ``Retry-After``. :func:`embed_batch` turns what is
  left once those are spent, and 400/401/403/404 (never retried), into one-line
  :class:`EmbeddingRequestError` messages.
- The API key comes only from ``OPENAI_API_KEY`` (:func:`api_key_from_env`) and lives only in
  the client object: it is never logged, and error messages are scrubbed of it
  (:func:`scrub`) because servers may echo the key they rejected.
- Results are handed to a callback as batches complete (the job merges them into the Delta
  ``embedding_cache`` every few thousand rows and on failure), so a rerun after a failure only
  pays for what is missing.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import openai

log = logging.getLogger(__name__)

API_KEY_ENV = "OPENAI_API_KEY"
MAX_INPUT_TOKENS = 8191  # per input, text-embedding-3-*
CHARS_PER_TOKEN_FLOOR = 3  # conservative: English averages ~4 characters per token

_KEY_PATTERN = re.compile(r"(sk-[A-Za-z0-9_\-*.]{4,}|Bearer\s+\S+)")


class EmbeddingRequestError(RuntimeError):
    """An embeddings request failed for good; the message is one line without secrets."""


def api_key_from_env() -> str | None:
    """The key from ``OPENAI_API_KEY`` (None when unset or blank)."""
    key = os.environ.get(API_KEY_ENV, "").strip()
    return key or None


def make_client(
    api_key: str, base_url: str | None, timeout_s: float, max_retries: int
) -> openai.OpenAI:
    """An ``openai.OpenAI`` client that retries each request up to ``max_retries`` times (the
    SDK's backoff) and gives up on one attempt after ``timeout_s`` seconds."""
    import openai

    return openai.OpenAI(
        api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=max_retries
    )


def approx_tokens(text: str) -> int:
    """Conservative token estimate: ``len(text) // 3 + 1`` (real English: ~len/4)."""
    return len(text) // CHARS_PER_TOKEN_FLOOR + 1


def clip_text(text: str, max_tokens: int = MAX_INPUT_TOKENS) -> str:
    """Cut a text whose estimate exceeds the per-input limit to ``max_tokens * 3`` characters."""
    limit = max_tokens * CHARS_PER_TOKEN_FLOOR
    return text if len(text) <= limit else text[:limit]


def plan_batches(
    items: Sequence[tuple[str, str]], max_inputs: int, max_tokens: int
) -> list[list[tuple[str, str]]]:
    """Greedy in-order split of (key, text) items into request batches.

    A batch closes before it would exceed ``max_inputs`` items or ``max_tokens`` summed
    :func:`approx_tokens`; an item alone over ``max_tokens`` still gets its own batch.
    """
    batches: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    tokens = 0
    for item in items:
        cost = approx_tokens(item[1])
        if current and (len(current) >= max_inputs or tokens + cost > max_tokens):
            batches.append(current)
            current, tokens = [], 0
        current.append(item)
        tokens += cost
    if current:
        batches.append(current)
    return batches


def scrub(message: str, secret: str | None = None) -> str:
    """One line with the secret (and anything key-shaped) replaced by ``***``."""
    if secret:
        message = message.replace(secret, "***")
    message = _KEY_PATTERN.sub("***", message)
    return " ".join(message.split())[:300]


def _attempts(exc: Exception) -> int | None:
    """How many requests the SDK sent before raising ``exc``: it stamps each request with its
    retry count (``x-stainless-retry-count``), and the exception carries the last request."""
    request = getattr(exc, "request", None)
    count = request.headers.get("x-stainless-retry-count") if request is not None else None
    return int(count) + 1 if count is not None and count.isdigit() else None


def _classify(exc: Exception) -> tuple[bool, str]:
    """(transient, short description without the response body); transient errors are the
    ones the SDK retries, so one reaching us means the retries were spent."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return True, "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return True, "connection error"
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        return status in (408, 409, 429) or status >= 500, f"HTTP {status}"
    return False, type(exc).__name__


def embed_batch(
    client: openai.OpenAI, model: str, texts: list[str], dimensions: int | None
) -> np.ndarray:
    """One embeddings request (the client retries it) -> float32 matrix (len(texts), dim) in
    input order."""
    import openai

    secret = getattr(client, "api_key", None)
    extra = {"dimensions": dimensions} if dimensions else {}
    try:
        # the raw response says how many retries the SDK took, which its own INFO log (quieted
        # in jobs) would otherwise be the only trace of
        raw = client.embeddings.with_raw_response.create(model=model, input=texts, **extra)
    except openai.OpenAIError as exc:
        transient, what = _classify(exc)
        if not transient:
            raise _fatal(exc, what, model, secret) from None
        attempts = _attempts(exc)
        tried = f" after {attempts} attempts" if attempts is not None else ""
        raise EmbeddingRequestError(
            f"OpenAI embeddings request for model {model!r} failed{tried}, last error: {what}"
        ) from None
    if raw.retries_taken:
        log.warning(
            "openai embeddings: a batch of %d texts succeeded after %d retries",
            len(texts),
            raw.retries_taken,
        )
    data = sorted(raw.parse().data, key=lambda d: d.index)
    if len(data) != len(texts):
        raise EmbeddingRequestError(
            f"OpenAI embeddings: asked for {len(texts)} vectors, got {len(data)}"
        )
    return np.asarray([d.embedding for d in data], dtype=np.float32)


def _fatal(exc: Exception, what: str, model: str, secret: str | None) -> EmbeddingRequestError:
    status = getattr(exc, "status_code", None)
    if status == 401:
        hint = f"authentication failed: check the {API_KEY_ENV} environment variable"
    elif status == 403:
        hint = f"permission denied for model {model!r} with this {API_KEY_ENV}"
    else:
        detail = getattr(exc, "message", None) or str(exc)
        hint = f"request rejected for model {model!r}: {scrub(str(detail), secret)}"
    return EmbeddingRequestError(f"OpenAI embeddings {what}: {hint}")


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm ``v / ||v||_2`` (zero rows stay zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms == 0, 1.0, norms)).astype(np.float32)


def embed_all(
    client: openai.OpenAI,
    model: str,
    items: Sequence[tuple[str, str]],
    on_batch: Callable[[list[str], np.ndarray], None],
    dimensions: int | None = None,
    max_batch_inputs: int = 256,
    max_batch_tokens: int = 250_000,
    max_concurrency: int = 4,
) -> int:
    """Embed (key, text) items with at most ``max_concurrency`` requests in flight.

    ``on_batch(keys, vectors)`` runs on the calling thread as each batch completes (in
    completion order). The first failed batch stops new submissions and its error is raised
    after the in-flight batches finish (their results are still handed to ``on_batch``).
    Returns the number of batches.
    """
    batches = plan_batches(
        [(k, clip_text(t)) for k, t in items], max_batch_inputs, max_batch_tokens
    )
    log.info(
        "openai embeddings: %d texts in %d batches, concurrency %d",
        len(items),
        len(batches),
        max_concurrency,
    )
    error: BaseException | None = None
    with ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="openai") as pool:
        pending: dict[Future, list[str]] = {}
        queue = batches[::-1]
        while queue or pending:
            while queue and error is None and len(pending) < max_concurrency:
                batch = queue.pop()
                future = pool.submit(embed_batch, client, model, [t for _, t in batch], dimensions)
                pending[future] = [k for k, _ in batch]
            if not pending:
                break
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                keys = pending.pop(future)
                exc = future.exception()
                if exc is not None:
                    error = error or exc
                    continue
                on_batch(keys, future.result())
    if error is not None:
        raise error
    return len(batches)
