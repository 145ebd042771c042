"""Sentence-transformers embeddings computed inside Spark with an iterator pandas UDF.

How the work is laid out
------------------------
- The titles are hash-partitioned on ``anime_id`` into ``partitions`` tasks (default: one per
  core) and sorted by description length inside each partition, so each Arrow batch holds
  texts of similar length (less padding, the same trick ``SentenceTransformer.encode`` uses
  inside one call).
- :func:`make_encode_fn` builds an ``Iterator[pd.Series] -> Iterator[pd.Series]`` pandas UDF.
  The model is loaded on the first batch a Python worker sees and kept in a per-process cache
  (:func:`get_model`), so with ``spark.python.worker.reuse=true`` (Spark's default) it is loaded
  once per Python worker, not per batch or per task. Arrow batches hold
  ``embed.arrow_batch_size`` rows (``spark.sql.execution.arrow.maxRecordsPerBatch``, set by the
  job for the embed step); each one is encoded in mini-batches of the embedder's
  ``batch_size`` with ``normalize_embeddings=True`` (unit L2 norm).
- Device: ``cuda:<n>`` when the worker sees a CUDA device (``<n>`` = the GPU address Spark
  assigned to the task, when GPU scheduling is on), else ``cpu``.
- CPU threads: every concurrent task runs its own Python worker with its own model, so torch's
  intra-op pool is set to :func:`worker_threads` (cores // concurrent tasks) to avoid
  oversubscription (2 workers x 2 threads on 2 cores is measurably slower than 2 x 1); an
  ``onnx`` embedder gets the same count as ONNX Runtime's intra-op threads
  (:mod:`anime_recs.embeddings.engine`).

GPU sharing (conf/cluster-gpu.yaml)
-----------------------------------
With ``spark.executor.resource.gpu.amount=1`` and ``spark.task.resource.gpu.amount=0.25`` the
scheduler runs up to 1 / 0.25 = **4 tasks per GPU at once**; each task has its own Python
worker, hence **4 copies of the model share one GPU** (MiniLM: ~90 MB each in fp32; an
mpnet-size model ~420 MB, plus activations of one mini-batch). Concurrent copies keep the GPU
busy while another worker is tokenising or moving Arrow data; raise the fraction (fewer
copies) for large models or long ``max_seq_length``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, FloatType

from anime_recs.tables import require_columns

log = logging.getLogger(__name__)

# per Python worker process: (spec, max_seq_length, device, backend, quantize) -> model
_MODELS: dict[tuple[str, int, str, str, str], Any] = {}
# a spec naming an archive shipped with SparkContext.addArchive (an ONNX export on a cluster)
SPARK_FILES_PREFIX = "sparkfiles:"


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
        from pyspark import TaskContext

        ctx = TaskContext.get()
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
    backend: str = "torch",
    quantize: str = "none",
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
    backend: str = "torch",
    quantize: str = "none",
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
        from pyspark import TaskContext

        from anime_recs.progress import Progress, worker_logging

        worker_logging()
        if num_threads:
            torch.set_num_threads(num_threads)
        on = "cpu" if backend != "torch" else device or pick_device()
        model = get_model(spec, max_seq_length, on, backend, quantize, num_threads)
        ctx = TaskContext.get()
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


def partition_texts(texts: DataFrame, partitions: int) -> DataFrame:
    """Texts (anime_id, text, text_hash) hash-partitioned by ``anime_id`` into ``partitions``
    (the embedding tasks)."""
    require_columns(texts.columns, ("anime_id", "text", "text_hash"), "embed_texts")
    return texts.repartition(partitions, "anime_id")


def partition_sizes(spread: DataFrame) -> dict[int, int]:
    """Rows per partition id of ``spread`` (one small job): each task's progress total."""
    return {int(r[0]): int(r[1]) for r in spread.groupBy(F.spark_partition_id()).count().collect()}


def encode_partitions(
    spread: DataFrame,
    sizes: dict[int, int] | None,
    spec: str,
    max_seq_length: int,
    batch_size: int,
    num_threads: int | None = None,
    encoded: Any = None,
    backend: str = "torch",
    quantize: str = "none",
) -> DataFrame:
    """Partitioned texts (:func:`partition_texts`) -> (anime_id, text_hash, embedding
    ARRAY<FLOAT>), texts sorted by length (longest first) inside each partition; ``sizes``
    (:func:`partition_sizes`) gives each task's progress an ETA. ``encoded``, ``backend``,
    ``quantize``: see :func:`make_encode_fn`."""
    encode = F.pandas_udf(
        make_encode_fn(
            spec, max_seq_length, batch_size, num_threads, None, encoded, sizes, backend, quantize
        ),
        ArrayType(FloatType(), containsNull=False),
    )
    return spread.sortWithinPartitions(F.length("text").desc(), "anime_id").select(
        "anime_id", "text_hash", encode("text").alias("embedding")
    )


def embed_texts(
    texts: DataFrame,
    spec: str,
    max_seq_length: int,
    batch_size: int,
    partitions: int,
    num_threads: int | None = None,
    encoded: Any = None,
    backend: str = "torch",
    quantize: str = "none",
) -> DataFrame:
    """(anime_id, text, text_hash) -> (anime_id, text_hash, embedding ARRAY<FLOAT>) in
    ``partitions`` tasks: :func:`partition_texts`, :func:`partition_sizes`,
    :func:`encode_partitions`."""
    spread = partition_texts(texts, partitions)
    return encode_partitions(
        spread,
        partition_sizes(spread),
        spec,
        max_seq_length,
        batch_size,
        num_threads,
        encoded,
        backend,
        quantize,
    )


def encoder_version(fingerprint: str | None, max_seq_length: int, engine: str = "") -> str | None:
    """The version of what an embedder computes: ``<model fingerprint>-seq<max_seq_length>``
    followed by the ``engine`` tag (:func:`~anime_recs.embeddings.engine.engine_tag`): the same
    weights with another window or engine give other vectors; None for an unversioned model (a
    hub id: never reused)."""
    return f"{fingerprint}-seq{max_seq_length}{engine}" if fingerprint else None


def split_reusable(
    texts: DataFrame, existing: DataFrame | None, embedder: str, version: str | None
) -> tuple[DataFrame | None, DataFrame]:
    """``(reused, todo)``: the texts whose ``(version, text_hash)`` already has a vector among
    ``embedder``'s rows of ``existing`` (``anime_embeddings``), as ``anime_id, text_hash,
    embedding``; and the other texts (``anime_id, text, text_hash``), to be encoded.

    Nothing is reused without a version or existing rows: a changed model version (new
    weights, another ``max_seq_length``) re-embeds everything.
    """
    if existing is None or version is None:
        return None, texts
    known = (
        existing.filter((F.col("embedder") == embedder) & (F.col("model_version") == version))
        .select("text_hash", "embedding")
        .dropDuplicates(["text_hash"])
    )
    reused = texts.join(known, "text_hash", "inner").select("anime_id", "text_hash", "embedding")
    todo = texts.join(known.select("text_hash"), "text_hash", "left_anti").select(
        "anime_id", "text", "text_hash"
    )
    return reused, todo


def with_identity(
    vectors: DataFrame, embedder: str, model: str, model_version: str | None
) -> DataFrame:
    """Add the ``anime_embeddings`` identity columns; ``dim`` = size(embedding).

    Vector elements are never null, but arrays read back from Delta are typed
    ``containsNull=true``; ``coalesce(x, 0)`` states the contract to Spark so the column can be
    written as ``ARRAY<FLOAT NOT NULL>``.
    """
    return vectors.select(
        F.lit(embedder).alias("embedder"),
        F.col("anime_id").cast("int").alias("anime_id"),
        F.transform("embedding", lambda x: F.coalesce(x, F.lit(0.0).cast("float"))).alias(
            "embedding"
        ),
        F.size("embedding").cast("int").alias("dim"),
        F.lit(model).alias("model"),
        F.lit(model_version).cast("string").alias("model_version"),
        F.col("text_hash"),
    )


def model_fingerprint(path: str) -> str | None:
    """First 16 hex of SHA-256 over a model folder's files (relative names + bytes).

    None when ``path`` is not a local folder (e.g. a Hugging Face id).
    """
    root = Path(path)
    if not root.is_dir():
        return None
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        if file.name.lower() == "readme.md":
            continue
        digest.update(str(file.relative_to(root)).encode())
        with file.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]
