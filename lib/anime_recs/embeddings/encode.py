"""The body of the embedding UDF: texts -> unit-norm vectors in one Python worker.

:func:`make_encode_fn` is what :mod:`anime_recs.embeddings.sentence` wraps in an iterator
pandas UDF; it needs pandas, numpy and the model's engine only, not Spark (the Spark task
context, when there is one, only names the task and its GPU), so the same function can be
timed on a machine without Spark or Java.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

# per Python worker process: (spec, max_seq_length, device, backend, quantize) -> model
_MODELS: dict[tuple[str, int, str, str, str], Any] = {}
# a spec naming an archive shipped with SparkContext.addArchive (an ONNX export on a cluster)
SPARK_FILES_PREFIX = "sparkfiles:"


def task_context() -> Any:
    """The Spark task this code runs in, or None (no task, or Spark not installed)."""
    try:
        from pyspark import TaskContext
    except ImportError:
        return None
    return TaskContext.get()


def worker_threads(cores: int, concurrent_tasks: int) -> int:
    """Torch intra-op threads per Python worker: ``max(1, cores // concurrent_tasks)``."""
    return max(1, cores // max(1, concurrent_tasks))


def local_cores(master: str) -> int | None:
    """Cores of a ``local``/``local[N]``/``local[*]``/``local[N,F]`` master; None otherwise."""
    if master == "local":
        return 1
    match = re.fullmatch(r"local\[(\*|\d+)(?:,\s*\d+)?\]", master)
    if not match:
        return None
    if match.group(1) == "*":
        return os.cpu_count() or 1
    return int(match.group(1))


def pick_device() -> str:
    """``cuda:<gpu address assigned to this task>`` / ``cuda`` when CUDA is visible, else cpu."""
    import torch

    if not torch.cuda.is_available():
        return "cpu"
    try:
        ctx = task_context()
        gpus = ctx.resources().get("gpu") if ctx is not None else None
        if gpus is not None and gpus.addresses:
            return f"cuda:{gpus.addresses[0]}"
    except Exception:  # noqa: BLE001 - resource info is optional
        pass
    return "cuda"


def get_model(
    spec: str,
    max_seq_length: int,
    device: str,
    *,
    backend: str,
    quantize: str,
    num_threads: int | None = None,
) -> Any:
    """The model for ``spec`` on its engine (:mod:`~anime_recs.embeddings.engine`), loaded at
    most once per process. An onnx ``spec`` is an export folder, or ``sparkfiles:<name>`` for
    one the driver shipped with ``SparkContext.addArchive`` (unpacked by Spark under that
    name)."""
    key = (spec, max_seq_length, device, backend, quantize)
    model = _MODELS.get(key)
    if model is None:
        if backend == "torch":
            from anime_recs.models import load_sentence_transformer

            model = load_sentence_transformer(spec, max_seq_length=max_seq_length, device=device)
        else:
            from anime_recs.embeddings.engine import load_onnx_model

            folder = spec
            if spec.startswith(SPARK_FILES_PREFIX):
                from pyspark import SparkFiles

                folder = SparkFiles.get(spec[len(SPARK_FILES_PREFIX) :])
            model = load_onnx_model(folder, quantize, max_seq_length, num_threads)
        model.eval()
        _MODELS[key] = model
    return model


def make_encode_fn(
    spec: str,
    max_seq_length: int,
    batch_size: int,
    num_threads: int | None = None,
    device: str | None = None,
    encoded: Any = None,
    partition_sizes: dict[int, int] | None = None,
    *,
    backend: str,
    quantize: str,
) -> Callable[[Iterator[pd.Series]], Iterator[pd.Series]]:
    """The pandas UDF body: batches of texts -> batches of unit-norm float32 vectors.

    Only plain values are captured, so the closure ships cheaply; the model is resolved and
    loaded inside the worker (``device=None``: :func:`pick_device`; onnx runs on CPU) on the
    engine ``backend``/``quantize`` (:func:`get_model`). ``encoded`` (a Spark
    accumulator) counts the texts handed to the encoder. Each task logs its progress
    (:class:`~anime_recs.progress.Progress`; ``partition_sizes`` = texts per partition id
    gives it an ETA).
    """

    def encode_batches(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        import torch

        from anime_recs.progress import Progress, worker_logging

        worker_logging()
        if num_threads:
            torch.set_num_threads(num_threads)
        on = "cpu" if backend != "torch" else device or pick_device()
        model = get_model(
            spec, max_seq_length, on, backend=backend, quantize=quantize, num_threads=num_threads
        )
        ctx = task_context()
        task = ctx.partitionId() if ctx is not None else 0
        total = (partition_sizes or {}).get(task)
        progress = Progress(f"embed task {task}", total, unit="texts", logger=log)
        for texts in batches:
            if len(texts) == 0:
                yield pd.Series([], dtype=object)
                continue
            vectors = model.encode(
                texts.tolist(),
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            ).astype(np.float32, copy=False)
            if encoded is not None:
                encoded.add(len(texts))
            progress.update(len(texts))
            yield pd.Series(list(vectors))
        if progress.done_count:
            progress.done()

    return encode_batches
