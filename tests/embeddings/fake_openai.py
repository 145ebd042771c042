"""A small OpenAI-compatible embeddings server for tests (http.server on 127.0.0.1).

``POST /v1/embeddings`` returns a deterministic vector per input (seeded by the SHA-256 of
the text, see :func:`fake_vector`), as floats or base64 like the real API. A failure plan,
consumed one entry per request in arrival order, injects ``"429"``, ``"500"``, ``"timeout"``
(sleeps past the client's timeout) or ``"400"``; a request with a wrong bearer token gets 401
and, like some real servers, echoes the token it rejected. The 429 and 500 answers carry
``retry-after-ms`` (1 ms by default), which the openai SDK's retries wait instead of their own
backoff (0.5 s and up), so the retry tests stay fast without patching the SDK.
The server counts requests and the inputs it actually answered.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np


def fake_vector(text: str, dim: int) -> np.ndarray:
    """The vector the fake server returns for ``text`` (not normalised), float32."""
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


class FakeOpenAI:
    def __init__(
        self,
        api_key: str,
        dim: int = 8,
        plan: Iterable[str] = (),
        timeout_sleep_s: float = 1.5,
        retry_after_ms: int = 1,
    ):
        self.api_key = api_key
        self.dim = dim
        self.plan = list(plan)
        self.timeout_sleep_s = timeout_sleep_s
        self.retry_after_ms = retry_after_ms
        self.lock = threading.Lock()
        self.requests = 0  # every POST /v1/embeddings
        self.answered_inputs: list[str] = []  # inputs of the requests answered 200
        self.statuses: list[int | str] = []
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> FakeOpenAI:
        handler = _make_handler(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def reset_counts(self, plan: Iterable[str] = ()) -> None:
        with self.lock:
            self.requests = 0
            self.answered_inputs = []
            self.statuses = []
            self.plan = list(plan)

    def _next_action(self) -> str:
        with self.lock:
            self.requests += 1
            return self.plan.pop(0) if self.plan else "ok"


def _make_handler(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # noqa: A002 - keep test output quiet
            pass

        def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
            body = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)
            with fake.lock:
                fake.statuses.append(status)

        def _error(self, status: int, message: str, headers: dict | None = None) -> None:
            self._send(status, {"error": {"message": message, "type": "fake"}}, headers)

        def do_POST(self):  # noqa: N802 - http.server naming
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path.rstrip("/") != "/v1/embeddings":
                self._error(404, f"no route {self.path}")
                return
            action = fake._next_action()
            token = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if token != fake.api_key:
                self._error(401, f"Incorrect API key provided: {token}")
                return
            wait = {"retry-after-ms": str(fake.retry_after_ms)}
            if action == "429":
                self._error(429, "rate limited", wait)
                return
            if action == "500":
                self._error(500, "internal error", wait)
                return
            if action == "400":
                self._error(400, "input is too long for this model")
                return
            if action == "timeout":
                time.sleep(fake.timeout_sleep_s)
            inputs = body.get("input")
            inputs = [inputs] if isinstance(inputs, str) else list(inputs or [])
            if not inputs or any(not isinstance(t, str) or not t for t in inputs):
                self._error(400, "input must be a non-empty list of non-empty strings")
                return
            dim = int(body.get("dimensions") or fake.dim)
            fmt = body.get("encoding_format", "float")
            data = []
            for i, text in enumerate(inputs):
                vector = fake_vector(text, dim)
                if fmt == "base64":
                    value = base64.b64encode(vector.astype("<f4").tobytes()).decode()
                else:
                    value = vector.tolist()
                data.append({"object": "embedding", "index": i, "embedding": value})
            if action != "timeout":
                with fake.lock:
                    fake.answered_inputs.extend(inputs)
            self._send(
                200,
                {
                    "object": "list",
                    "data": data,
                    "model": body.get("model"),
                    "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)},
                },
            )

    return Handler
