"""Adapted embedders: a registered vector adapter applied to another embedder's stored vectors.

The ``adapter`` fine-tuning recipe (:mod:`anime_recs.training.adapter`) learns a low-rank
residual map of frozen vectors, :func:`adapt`::

    f(v) = (v + B A v) / |v + B A v|        A: rank x dim, B: dim x rank

An ``adapter`` embedder (``embed.embedders.<name>.kind: adapter``) names the registered map
(``model``, an MLflow URI) and the embedder whose rows of ``anime_embeddings`` it maps
(``source``). Its rows are the source's rows mapped by :func:`adapt` inside Spark (an Arrow
batch at a time, the two small matrices shipped with the function), keeping each source row's
``text_hash``; their ``model_version`` joins the adapter's and the source row's identities
(:func:`adapted_version`), so a new adapter or re-encoded source vectors are visible in the
table. Mapping is a ``dim x rank`` product per title, so every title is mapped on each run;
the expensive part, encoding, stays incremental in the source embedder.

The stored artifact (:func:`save_adapter` / :func:`load_adapter`) is one ``adapter.npz``: the
matrices and a JSON header naming the source embedder and the dimension it was trained on.
Needs numpy and pandas (pyspark for :func:`adapted_rows` and :func:`adapted_version`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ADAPTER_FILE = "adapter.npz"


@dataclass(frozen=True)
class VectorAdapter:
    """A trained map: ``a`` (rank x dim), ``b`` (dim x rank) and what it was trained on."""

    a: np.ndarray
    b: np.ndarray
    meta: dict[str, Any]  # source (embedder name), objective, ...

    @property
    def dim(self) -> int:
        return int(self.a.shape[1])

    @property
    def identity(self) -> str:
        """First 16 hex of SHA-256 over the two matrices (float32 bytes, shapes included)."""
        digest = hashlib.sha256()
        for m in (self.a, self.b):
            m = np.ascontiguousarray(m, dtype=np.float32)
            digest.update(repr(m.shape).encode())
            digest.update(m.tobytes())
        return digest.hexdigest()[:16]


def adapt(vectors: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``f(v) = (v + B A v) / |v + B A v|`` for every row ``v`` of ``vectors`` (float32; a zero
    row stays zero)."""
    v = np.asarray(vectors, dtype=np.float64)
    out = v + (v @ np.asarray(a, np.float64).T) @ np.asarray(b, np.float64).T
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0).astype(np.float32)


def adapted_version(adapter_identity: str, source_version: Any) -> Any:
    """``model_version`` of an adapted row, a Spark column:
    ``<adapter identity>+<source row's model_version>`` (empty when that is null)."""
    from pyspark.sql import functions as F

    return F.concat(F.lit(f"{adapter_identity}+"), F.coalesce(source_version, F.lit("")))


def save_adapter(adapter: VectorAdapter, folder: str | Path) -> Path:
    """Write ``<folder>/adapter.npz``; returns its path."""
    path = Path(folder) / ADAPTER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    header = np.frombuffer(json.dumps(adapter.meta, sort_keys=True).encode(), dtype=np.uint8)
    np.savez(
        path, a=np.asarray(adapter.a, np.float32), b=np.asarray(adapter.b, np.float32), meta=header
    )
    return path


def load_adapter(folder: str | Path) -> VectorAdapter:
    """The adapter stored under ``folder`` (the file itself, or found below it, as in a
    downloaded MLflow model); FileNotFoundError when there is none."""
    root = Path(folder)
    if root.is_file():
        path = root
    else:
        found = sorted(root.rglob(ADAPTER_FILE))
        if not found:
            raise FileNotFoundError(f"no {ADAPTER_FILE} under {root}")
        path = found[0]
    with np.load(path) as data:
        meta = json.loads(data["meta"].tobytes().decode())
        return VectorAdapter(data["a"].astype(np.float32), data["b"].astype(np.float32), meta)


def adapted_rows(source_rows: Any, adapter: VectorAdapter) -> Any:
    """``anime_id, text_hash, embedding, model_version`` of the source embedder's rows of
    ``anime_embeddings`` (a Spark DataFrame), each ``embedding`` mapped by :func:`adapt`, each
    version :func:`adapted_version`."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, FloatType

    a, b = adapter.a, adapter.b

    @F.pandas_udf(ArrayType(FloatType()))
    def mapped(embeddings: pd.Series) -> pd.Series:
        if embeddings.empty:
            return pd.Series([], dtype=object)
        out = adapt(np.stack(embeddings.to_numpy()), a, b)
        return pd.Series(list(out))

    return source_rows.select(
        "anime_id",
        "text_hash",
        mapped("embedding").alias("embedding"),
        adapted_version(adapter.identity, F.col("model_version")).alias("model_version"),
    )
