"""Training examples for the fine-tune: pairs of titles joined with the titles' descriptions.

:func:`pair_ids` and :func:`pair_texts` are pure DataFrame transformations (Spark);
:func:`collect_pair_labels` and :func:`collect_pair_sets` bring their (small) results to the
driver, where :func:`within_content_neighbourhood` and :func:`limit_indices` choose the pairs
to train on before any description is fetched (:func:`with_texts`).
"""

from __future__ import annotations

import logging

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from anime_recs.tables import TRAIN, VAL, require_columns
from anime_recs.training.examples import PairSet

log = logging.getLogger(__name__)

PAIR_COLUMNS = ("anime_a", "anime_b", "label", "split")
ANIME_COLUMNS = ("anime_id", "description", "has_description")
OUTPUT_COLUMNS = ("anime_a", "anime_b", "text_a", "text_b", "label", "split")


def described_titles(anime: DataFrame) -> DataFrame:
    """``anime_id, description`` of the titles with ``has_description`` and a non-blank
    description: the only titles a training pair may use."""
    require_columns(anime.columns, ANIME_COLUMNS, "anime")
    return anime.where(
        F.col("has_description")
        & F.col("description").isNotNull()
        & (F.length(F.trim(F.col("description"))) > 0)
    ).select("anime_id", "description")


def pair_ids(pairs: DataFrame, anime: DataFrame) -> DataFrame:
    """The pairs whose two titles are both described (:func:`described_titles`), without
    their texts. Output: ``anime_a, anime_b, label, split``."""
    require_columns(pairs.columns, PAIR_COLUMNS, "training_pairs")
    titles = described_titles(anime).select("anime_id")
    a = titles.select(F.col("anime_id").alias("anime_a"))
    b = titles.select(F.col("anime_id").alias("anime_b"))
    return (
        pairs.join(a, "anime_a", "left_semi")
        .join(b, "anime_b", "left_semi")
        .select(
            F.col("anime_a").cast("int"),
            F.col("anime_b").cast("int"),
            F.col("label").cast("double"),
            "split",
        )
    )


def pair_texts(pairs: DataFrame, anime: DataFrame) -> DataFrame:
    """Attach both titles' descriptions to each pair of :func:`pair_ids` (a pair whose title
    lacks a description is dropped). Output: ``anime_a, anime_b, text_a, text_b, label,
    split``."""
    texts = described_titles(anime)
    a = texts.select(F.col("anime_id").alias("anime_a"), F.col("description").alias("text_a"))
    b = texts.select(F.col("anime_id").alias("anime_b"), F.col("description").alias("text_b"))
    return (
        pair_ids(pairs, anime)
        .join(a, "anime_a")
        .join(b, "anime_b")
        .select("anime_a", "anime_b", "text_a", "text_b", "label", "split")
    )


def collect_pair_sets(df: DataFrame) -> dict[str, PairSet]:
    """Collect the output of :func:`pair_texts` to the driver: ``{"train": ..., "val": ...}``.

    Rows are ordered by (anime_a, anime_b) inside each split, so the result does not depend on
    Spark's partitioning. Splits other than train/val are ignored.
    """
    require_columns(df.columns, OUTPUT_COLUMNS, "pair texts")
    rows = df.where(F.col("split").isin(TRAIN, VAL)).orderBy("split", "anime_a", "anime_b")
    out: dict[str, dict[str, list]] = {
        s: {"a": [], "b": [], "y": [], "ids": []} for s in (TRAIN, VAL)
    }
    for row in rows.collect():
        part = out[row["split"]]
        part["a"].append(row["text_a"])
        part["b"].append(row["text_b"])
        part["y"].append(float(row["label"]))
        part["ids"].append((int(row["anime_a"]), int(row["anime_b"])))
    return {s: PairSet(p["a"], p["b"], p["y"], p["ids"]) for s, p in out.items()}


def collect_pair_labels(df: DataFrame) -> tuple[list[tuple[int, int]], list[float]]:
    """The ``(anime_a, anime_b)`` ids and labels of ``df`` (e.g. :func:`pair_ids` of one
    split), ordered by (anime_a, anime_b) so the result does not depend on partitioning."""
    require_columns(df.columns, ("anime_a", "anime_b", "label"), "pairs")
    rows = df.select("anime_a", "anime_b", "label").orderBy("anime_a", "anime_b").collect()
    return [(int(r[0]), int(r[1])) for r in rows], [float(r[2]) for r in rows]


def with_texts(ids: list[tuple[int, int]], labels: list[float], texts: dict[int, str]) -> PairSet:
    """The pairs as a :class:`PairSet` with each title's text from ``texts``."""
    return PairSet([texts[a] for a, _ in ids], [texts[b] for _, b in ids], list(labels), list(ids))


def sample_pair_rows(pairs: DataFrame, max_pairs: int, seed: int) -> DataFrame:
    """At most ``max_pairs`` rows of ``pairs`` (0: all): the rows with the smallest
    ``xxhash64(anime_a, anime_b, seed)``, a seeded sample that depends neither on the
    partitioning nor on the order of the rows."""
    require_columns(pairs.columns, ("anime_a", "anime_b"), "pairs")
    if max_pairs <= 0:
        return pairs
    key = F.xxhash64("anime_a", "anime_b", F.lit(seed))
    return (
        pairs.withColumn("_sample_key", key)
        .orderBy("_sample_key", "anime_a", "anime_b")
        .limit(max_pairs)
        .drop("_sample_key")
    )


def limit_indices(index: list[int], max_pairs: int, seed: int) -> list[int]:
    """A seeded random subset of ``max_pairs`` of ``index`` in its original order (0: all)."""
    if max_pairs <= 0 or len(index) <= max_pairs:
        return list(index)
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(index), size=max_pairs, replace=False))
    return [index[i] for i in keep]


def content_neighbourhoods(
    titles: np.ndarray, anime_ids: np.ndarray, vectors: np.ndarray, k: int, block: int = 1024
) -> dict[int, set[int]]:
    """For each of ``titles``, the ``k`` other titles of ``anime_ids`` whose ``vectors`` have
    the highest cosine similarity with its own (ties at the k-th value all kept)."""
    anime_ids = np.asarray(anime_ids, dtype=np.int64)
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    position = {int(a): i for i, a in enumerate(anime_ids)}
    rows = np.array([position[int(t)] for t in titles if int(t) in position], dtype=np.int64)
    kk = min(k, anime_ids.size - 1)
    out: dict[int, set[int]] = {}
    if kk <= 0:
        return out
    for start in range(0, rows.size, block):
        part = rows[start : start + block]
        sims = unit[part] @ unit.T
        sims[np.arange(part.size), part] = -np.inf  # never a title's own neighbour
        kth = -np.partition(-sims, kk - 1, axis=1)[:, kk - 1]
        for i, row in enumerate(part):
            out[int(anime_ids[row])] = set(anime_ids[sims[i] >= kth[i]].tolist())
    return out


def within_content_neighbourhood(
    ids: list[tuple[int, int]], anime_ids: np.ndarray, vectors: np.ndarray, k: int
) -> list[int]:
    """The positions of the pairs ``(a, b)`` of ``ids`` with ``b`` among the ``k`` nearest
    titles of ``a`` by the cosine of ``vectors`` (a base encoder's embeddings of ``anime_ids``),
    or ``a`` among ``b``'s; neighbours are looked for among the pairs' own titles, and pairs of
    a title without a vector are dropped. Fine-tuning on them re-ranks each title's content
    neighbourhood by co-promotion instead of pulling unrelated popular titles together.
    ``k = 0``: every position."""
    if k <= 0 or not ids:
        return list(range(len(ids)))
    titles = np.unique(np.asarray(ids, dtype=np.int64).ravel())
    anime_ids = np.asarray(anime_ids, dtype=np.int64)
    among = np.isin(anime_ids, titles)
    near = content_neighbourhoods(titles, anime_ids[among], np.asarray(vectors)[among], k)
    return [i for i, (a, b) in enumerate(ids) if b in near.get(a, ()) or a in near.get(b, ())]


def choose_pair_positions(
    ids: list[tuple[int, int]],
    neighbourhood: tuple[np.ndarray, np.ndarray] | None,
    k: int,
    max_pairs: int,
    seed: int,
) -> tuple[list[int], int]:
    """The positions of the pairs ``ids`` to train on, and how many were available before the
    cap: those inside the content neighbourhoods of ``neighbourhood`` = ``(anime_ids,
    vectors)`` (:func:`within_content_neighbourhood`; None: every pair), then a seeded
    ``max_pairs`` of them (:func:`limit_indices`)."""
    keep = list(range(len(ids)))
    if neighbourhood is not None and ids:
        keep = within_content_neighbourhood(ids, *neighbourhood, k)
    return limit_indices(keep, max_pairs, seed), len(keep)
