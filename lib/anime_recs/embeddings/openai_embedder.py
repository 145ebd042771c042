"""OpenAI (or OpenAI-compatible) embeddings: batching, bounded concurrency, retries, cache.

The calls run **on the driver**, not in Spark tasks: ~16k descriptions make ~65 requests, the
API's rate limits are the bottleneck, and one process with a thread pool of
``max_concurrency`` gives precise control over concurrency, retries and what has already been
paid for; spreading them over executors would multiply concurrent callers past the rate limit.

- Batches (:func:`plan_batches`) hold at most ``max_batch_inputs`` texts and
  ``max_batch_tokens`` approximate tokens (:func:`approx_tokens`, deliberately conservative).
- The client is built with ``max_retries=0``; :func:`embed_batch` retries 408/409/429/5xx,
  timeouts and connection errors itself with exponential backoff and full jitter
  (:func:`backoff_delay`, honouring ``Retry-After``), and turns 400/401/403/404 into one-line
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
import random
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

import numpy as np

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


def make_client(api_key: str, base_url: str | None, timeout_s: float):
    """An ``openai.OpenAI`` client with its own retries off (we retry in :func:`embed_batch`)."""
    import openai

    return openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0)


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


def backoff_delay(
    attempt: int,
    base_s: float,
    max_s: float,
    rng: random.Random,
    retry_after_s: float | None = None,
) -> float:
    """Wait before retry ``attempt`` (0-based): full jitter, at least the server's Retry-After.

    ``delay = uniform(0, min(max_s, base_s * 2**attempt))``; when the server sent
    ``Retry-After`` the delay is ``max(delay, min(retry_after_s, max_s))``.
    """
    delay = rng.uniform(0.0, min(max_s, base_s * (2**attempt)))
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, max_s))
    return delay


def scrub(message: str, secret: str | None = None) -> str:
    """One line with the secret (and anything key-shaped) replaced by ``***``."""
    if secret:
        message = message.replace(secret, "***")
    message = _KEY_PATTERN.sub("***", message)
    return " ".join(message.split())[:300]


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 6
    base_s: float = 0.5
    max_s: float = 20.0


def _retry_after_s(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    if response is None:
        return None
    headers = response.headers
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                return float(value) / scale
            except ValueError:
                return None
    return None


def _classify(exc: Exception) -> tuple[bool, str]:
    """(retryable, short description without the response body)."""
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
    client,
    model: str,
    texts: list[str],
    dimensions: int | None,
    policy: RetryPolicy,
    rng: random.Random,
    sleep: Callable[[float], None] = time.sleep,
) -> np.ndarray:
    """One embeddings request with retries -> float32 matrix (len(texts), dim) in input order."""
    import openai

    secret = getattr(client, "api_key", None)
    extra = {"dimensions": dimensions} if dimensions else {}
    for attempt in range(policy.max_retries + 1):
        try:
            response = client.embeddings.create(model=model, input=texts, **extra)
        except openai.OpenAIError as exc:
            retryable, what = _classify(exc)
            if not retryable:
                raise _fatal(exc, what, model, secret) from None
            if attempt == policy.max_retries:
                raise EmbeddingRequestError(
                    f"OpenAI embeddings request for model {model!r} failed after "
                    f"{attempt + 1} attempts, last error: {what}"
                ) from None
            delay = backoff_delay(attempt, policy.base_s, policy.max_s, rng, _retry_after_s(exc))
            log.warning(
                "openai embeddings: %s, retry %d/%d in %.2fs",
                what,
                attempt + 1,
                policy.max_retries,
                delay,
            )
            sleep(delay)
            continue
        data = sorted(response.data, key=lambda d: d.index)
        if len(data) != len(texts):
            raise EmbeddingRequestError(
                f"OpenAI embeddings: asked for {len(texts)} vectors, got {len(data)}"
            )
        return np.asarray([d.embedding for d in data], dtype=np.float32)
    raise AssertionError("unreachable")  # pragma: no cover


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
    client,
    model: str,
    items: Sequence[tuple[str, str]],
    on_batch: Callable[[list[str], np.ndarray], None],
    dimensions: int | None = None,
    max_batch_inputs: int = 256,
    max_batch_tokens: int = 250_000,
    max_concurrency: int = 4,
    policy: RetryPolicy | None = None,
    seed: int = 0,
) -> int:
    """Embed (key, text) items with at most ``max_concurrency`` requests in flight.

    ``on_batch(keys, vectors)`` runs on the calling thread as each batch completes (in
    completion order). The first failed batch stops new submissions and its error is raised
    after the in-flight batches finish (their results are still handed to ``on_batch``).
    Returns the number of batches.
    """
    policy = policy or RetryPolicy()
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
        queue = list(enumerate(batches))
        queue.reverse()
        while queue or pending:
            while queue and error is None and len(pending) < max_concurrency:
                i, batch = queue.pop()
                future = pool.submit(
                    embed_batch,
                    client,
                    model,
                    [t for _, t in batch],
                    dimensions,
                    policy,
                    random.Random(seed * 1_000_003 + i),
                )
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
