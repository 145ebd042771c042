"""Sentence-transformers embeddings computed inside Spark with an iterator pandas UDF.

How the work is laid out
------------------------
- The titles are hash-partitioned on ``anime_id`` into ``partitions`` tasks (default: one per
  core) and sorted by description length inside each partition, so each Arrow batch holds
  texts of similar length (less padding, the same trick ``SentenceTransformer.encode`` uses
  inside one call).
- ``encode.make_encode_fn`` builds an ``Iterator[pd.Series] -> Iterator[pd.Series]`` pandas UDF.
  The model is loaded on the first batch a Python worker sees and kept in a per-process cache
  (``encode.get_model``), so with ``spark.python.worker.reuse=true`` (Spark's default) it is loaded
  once per Python worker, not per batch or per task. Arrow batches hold
  ``embed.arrow_batch_size`` rows (``spark.sql.execution.arrow.maxRecordsPerBatch``, set by the
  job for the embed step); each one is encoded in mini-batches of the embedder's
  ``batch_size`` with ``normalize_embeddings=True`` (unit L2 norm).
- Device: ``cuda:<n>`` when the worker sees a CUDA device (``<n>`` = the GPU address Spark
  assigned to the task, when GPU scheduling is on), else ``cpu``.
- CPU threads: every concurrent task runs its own Python worker with its own model, so torch's
  intra-op pool is set to ``encode.worker_threads`` (cores // concurrent tasks) to avoid
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
from pathlib import Path
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, FloatType

from anime_recs.embeddings.encode import make_encode_fn
from anime_recs.tables import require_columns

log = logging.getLogger(__name__)


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
    *,
    backend: str,
    quantize: str,
) -> DataFrame:
    """Partitioned texts (:func:`partition_texts`) -> (anime_id, text_hash, embedding
    ARRAY<FLOAT>), texts sorted by length (longest first) inside each partition; ``sizes``
    (:func:`partition_sizes`) gives each task's progress an ETA. ``encoded``, ``backend``,
    ``quantize``: see :func:`~anime_recs.embeddings.encode.make_encode_fn`."""
    encode = F.pandas_udf(
        make_encode_fn(
            spec,
            max_seq_length,
            batch_size,
            num_threads,
            None,
            encoded,
            sizes,
            backend=backend,
            quantize=quantize,
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
    *,
    backend: str,
    quantize: str,
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
        backend=backend,
        quantize=quantize,
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
    vectors: DataFrame, embedder: str, model: str, model_version: str | Column | None
) -> DataFrame:
    """Add the ``anime_embeddings`` identity columns; ``dim`` = size(embedding); the version
    one for all rows or a column (an adapted embedder's rows each carry their own).

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
        (model_version if isinstance(model_version, Column) else F.lit(model_version))
        .cast("string")
        .alias("model_version"),
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
