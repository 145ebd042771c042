"""The Delta ``embedding_cache`` (I/O module): vectors keyed by (model, text_hash).

Rows are only ever inserted (MERGE ... WHEN NOT MATCHED INSERT), so merging the same batch
twice is a no-op and a crashed run leaves every merged batch reusable. Vectors are stored
L2-normalised (float32).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from anime_recs.lakehouse import conform, read_table, table_exists, table_path, write_table
from anime_recs.tables import EMBEDDING_CACHE, EMBEDDING_CACHE_SCHEMA

log = logging.getLogger(__name__)


def cache_model_key(model: str, dimensions: int | None) -> str:
    """Cache key for a model: its name, plus ``@<dimensions>`` when shortened vectors are asked."""
    return f"{model}@{dimensions}" if dimensions else model


def read_cached(spark: SparkSession, lake: str, model_key: str) -> DataFrame | None:
    """The cache rows of one model (None when the cache table does not exist yet)."""
    if not table_exists(spark, lake, EMBEDDING_CACHE):
        return None
    return read_table(spark, lake, EMBEDDING_CACHE).filter(F.col("model") == model_key)


def missing_texts(
    spark: SparkSession, lake: str, model_key: str, texts: DataFrame
) -> list[tuple[str, str]]:
    """(text_hash, text) of ``texts`` not yet cached for ``model_key``, sorted by hash."""
    needed = texts.select("text_hash", "text").dropDuplicates(["text_hash"])
    cached = read_cached(spark, lake, model_key)
    if cached is not None:
        needed = needed.join(cached.select("text_hash"), "text_hash", "left_anti")
    return sorted((r["text_hash"], r["text"]) for r in needed.collect())


def merge_into_cache(
    spark: SparkSession,
    lake: str,
    model_key: str,
    text_hashes: Sequence[str],
    vectors: np.ndarray,
) -> int | None:
    """Insert (model_key, hash, vector) rows not already cached; returns the new version."""
    if len(text_hashes) == 0:
        return None
    vectors = np.asarray(vectors, dtype=np.float32)
    pdf = pd.DataFrame(
        {
            "model": model_key,
            "text_hash": list(text_hashes),
            "embedding": list(vectors),
            "dim": np.full(len(text_hashes), vectors.shape[1], dtype=np.int32),
        }
    )
    new = spark.createDataFrame(pdf, schema=EMBEDDING_CACHE_SCHEMA).dropDuplicates(
        ["model", "text_hash"]
    )
    if not table_exists(spark, lake, EMBEDDING_CACHE):
        return write_table(new, lake, EMBEDDING_CACHE, EMBEDDING_CACHE_SCHEMA)
    from delta.tables import DeltaTable

    (
        DeltaTable.forPath(spark, table_path(lake, EMBEDDING_CACHE))
        .alias("c")
        .merge(
            conform(new, EMBEDDING_CACHE_SCHEMA).alias("n"),
            "c.model = n.model AND c.text_hash = n.text_hash",
        )
        .whenNotMatchedInsertAll()
        .execute()
    )
    from anime_recs.lakehouse import table_version

    version = table_version(spark, lake, EMBEDDING_CACHE)
    log.info("merged %d vectors into %s -> version %s", len(text_hashes), EMBEDDING_CACHE, version)
    return version


class CacheWriter:
    """Buffers completed batches and merges them into the cache every ``flush_rows`` rows."""

    def __init__(self, spark: SparkSession, lake: str, model_key: str, flush_rows: int = 2048):
        self.spark, self.lake, self.model_key, self.flush_rows = spark, lake, model_key, flush_rows
        self._hashes: list[str] = []
        self._vectors: list[np.ndarray] = []
        self.rows_written = 0

    def add(self, text_hashes: list[str], vectors: np.ndarray) -> None:
        self._hashes.extend(text_hashes)
        self._vectors.append(np.asarray(vectors, dtype=np.float32))
        if len(self._hashes) >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        if not self._hashes:
            return
        merge_into_cache(
            self.spark, self.lake, self.model_key, self._hashes, np.vstack(self._vectors)
        )
        self.rows_written += len(self._hashes)
        self._hashes, self._vectors = [], []


def vectors_from_cache(
    spark: SparkSession, lake: str, model_key: str, texts: DataFrame
) -> DataFrame:
    """(anime_id, text_hash) of ``texts`` joined to their cached vector -> + embedding."""
    cached = read_cached(spark, lake, model_key)
    if cached is None:
        raise FileNotFoundError(f"Delta table {EMBEDDING_CACHE!r} not found under {lake}")
    return texts.join(cached.select("text_hash", "embedding"), "text_hash", "inner").select(
        "anime_id", "text_hash", "embedding"
    )
