"""Top-K neighbours per title: exact cosine over embeddings, promoter Jaccard over pairs.

Neighbours of title ``t`` are the ``K`` titles with the highest similarity to ``t``, never ``t``
itself, ties broken by the smaller ``anime_id``. Both recommenders produce the same frame
(``anime_id``, ``neighbor_id``, ``rank`` 1-based, ``similarity``), stored in Delta
``anime_neighbors`` with a ``recommender`` column, and turned into dense arrays for scoring by
:func:`neighbor_arrays`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import DataFrame

from anime_recs.tables import require_columns

log = logging.getLogger(__name__)

NEIGHBOR_COLUMNS = ["anime_id", "neighbor_id", "rank", "similarity"]
# similarities are rounded so that equal vectors give exactly equal scores whatever the BLAS
# summation order; the tie rule (smaller anime_id) then decides deterministically
SIMILARITY_DECIMALS = 12


def topk_by_key(
    keys: np.ndarray, neighbors: np.ndarray, sims: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Keep, for every key, the ``k`` entries of highest ``sims``; ties by smaller neighbour.

    Returns ``(keys, neighbors, sims, rank)`` sorted by key then rank, ``rank`` 1-based.
    Entries are (key, neighbour, similarity) triples; a key with fewer than ``k`` entries keeps
    all of them.
    """
    keys = np.asarray(keys)
    neighbors = np.asarray(neighbors)
    sims = np.asarray(sims, dtype=np.float64)
    if keys.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return keys, neighbors, sims, empty
    order = np.lexsort((neighbors, -sims, keys))
    keys, neighbors, sims = keys[order], neighbors[order], sims[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    group_start = np.repeat(starts, np.diff(np.r_[starts, keys.size]))
    rank = np.arange(keys.size) - group_start + 1
    keep = rank <= k
    return keys[keep], neighbors[keep], sims[keep], rank[keep]


def unit_vectors(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` divided by their L2 norm (float64); zero rows stay zero."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def cosine_similarity_block(block_unit: np.ndarray, unit: np.ndarray) -> np.ndarray:
    """Cosine similarity ``cos(a, b) = a . b / (|a| |b|)`` of every row of a block with every
    row of the matrix, from unit vectors (:func:`unit_vectors`), so ``cos = a_unit . b_unit``;
    float64, rounded to :data:`SIMILARITY_DECIMALS` decimals."""
    return np.round(block_unit @ unit.T, SIMILARITY_DECIMALS)


def cosine_neighbors(
    anime_ids: np.ndarray, vectors: np.ndarray, k: int, block_rows: int = 1024
) -> pd.DataFrame:
    """Exact top-``k`` cosine neighbours of every title, excluding itself.

    Computed with blocked matrix products (``block_rows`` titles x all titles at a time); in
    each block only the entries at or above the row's ``k``-th largest similarity are kept, and
    :func:`topk_by_key` applies the tie rule (smaller ``anime_id``) among them.
    """
    anime_ids = np.asarray(anime_ids, dtype=np.int64)
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[0] != anime_ids.size:
        raise ValueError(
            f"vectors must be [n_titles, dim] for {anime_ids.size} titles, got {vectors.shape}"
        )
    if np.unique(anime_ids).size != anime_ids.size:
        raise ValueError("anime_ids must be unique")
    order = np.argsort(anime_ids, kind="stable")  # index order = anime_id order
    anime_ids, vectors = anime_ids[order], vectors[order]
    n = anime_ids.size
    kk = min(k, n - 1)
    parts = []
    unit = unit_vectors(vectors)
    for start in range(0, n, block_rows):
        stop = min(start + block_rows, n)
        sims = cosine_similarity_block(unit[start:stop], unit)
        rows = np.arange(stop - start)
        sims[rows, rows + start] = -np.inf  # never a title's own neighbour
        if kk <= 0:
            continue
        kth = -np.partition(-sims, kk - 1, axis=1)[:, kk - 1]
        r, c = np.nonzero(sims >= kth[:, None])
        keys, nbrs, vals, rank = topk_by_key(r + start, c, sims[r, c], kk)
        parts.append(
            pd.DataFrame(
                {
                    "anime_id": anime_ids[keys],
                    "neighbor_id": anime_ids[nbrs],
                    "rank": rank,
                    "similarity": vals,
                }
            )
        )
    if not parts:
        return empty_neighbors()
    return neighbor_frame(pd.concat(parts, ignore_index=True))


def empty_neighbors() -> pd.DataFrame:
    return neighbor_frame(pd.DataFrame({c: [] for c in NEIGHBOR_COLUMNS}))


def neighbor_frame(pdf: pd.DataFrame) -> pd.DataFrame:
    return pdf.astype(
        {"anime_id": "int32", "neighbor_id": "int32", "rank": "int32", "similarity": "float64"}
    )[NEIGHBOR_COLUMNS]


def embedding_matrix(embeddings: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(anime_ids, vectors)`` from a pandas frame with ``anime_id`` and ``embedding``."""
    require_columns(embeddings.columns, ("anime_id", "embedding"), "embeddings")
    ids = embeddings["anime_id"].to_numpy(dtype=np.int64)
    if ids.size == 0:
        return ids, np.zeros((0, 0))
    vectors = np.stack(embeddings["embedding"].to_numpy()).astype(np.float64)
    return ids, vectors


# ---------------------------------------------------------------------------------------------
# promoter Jaccard
# ---------------------------------------------------------------------------------------------

JACCARD_COLUMNS = ("anime_a", "anime_b", "jaccard")


def _partial_topk_arrow(k: int, buffer_rows: int):
    """mapInArrow function: per partition, top-``k`` neighbours of every title seen.

    Each pair (a, b, j) is both a->b and b->a. Buffered rows are reduced with
    :func:`topk_by_key` whenever the buffer exceeds ``buffer_rows``, so memory stays bounded;
    once a title has ``k`` neighbours, entries below its current ``k``-th similarity are
    dropped on arrival (they can never enter its top ``k``).
    """

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        keys: list[np.ndarray] = []
        nbrs: list[np.ndarray] = []
        sims: list[np.ndarray] = []
        size = 0
        floor = np.zeros(0)  # k-th best similarity so far per anime_id (-inf: fewer than k)

        def reduce() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            kk, nn, ss, rank = topk_by_key(
                np.concatenate(keys), np.concatenate(nbrs), np.concatenate(sims), k
            )
            full = rank == k
            floor[kk[full]] = ss[full]
            return kk, nn, ss

        for batch in batches:
            a = batch.column("anime_a").to_numpy(zero_copy_only=False).astype(np.int64)
            b = batch.column("anime_b").to_numpy(zero_copy_only=False).astype(np.int64)
            j = batch.column("jaccard").to_numpy(zero_copy_only=False).astype(np.float64)
            if a.size == 0:
                continue
            top = int(max(a.max(), b.max()))
            if top >= floor.size:
                floor = np.concatenate([floor, np.full(top + 1 - floor.size, -np.inf)])
            for key, nbr in ((a, b), (b, a)):
                keep = j >= floor[key]
                keys.append(key[keep])
                nbrs.append(nbr[keep])
                sims.append(j[keep])
                size += int(keep.sum())
            if size >= buffer_rows:
                kk, nn, ss = reduce()
                keys, nbrs, sims, size = [kk], [nn], [ss], kk.size
        if size:
            kk, nn, ss = reduce()
            yield pa.RecordBatch.from_arrays(
                [pa.array(kk, pa.int32()), pa.array(nn, pa.int32()), pa.array(ss, pa.float64())],
                names=["anime_id", "neighbor_id", "similarity"],
            )

    return run


def jaccard_neighbors(pairs: DataFrame, k: int, buffer_rows: int = 2_000_000) -> pd.DataFrame:
    """Top-``k`` neighbours of every title by promoter Jaccard (similarity = ``jaccard``).

    ``pairs`` holds one row per unordered pair (``anime_a`` < ``anime_b``); a title's
    neighbours are its partners in either column. Only ``k`` rows per title and partition
    leave the executors (a partial top-``k`` in ``mapInArrow``); the driver collects them and
    applies the same :func:`topk_by_key` once more. Collects (its stated job).
    """
    require_columns(pairs.columns, JACCARD_COLUMNS, "anime_pair_jaccard")
    partial = pairs.select(*JACCARD_COLUMNS).mapInArrow(
        _partial_topk_arrow(k, buffer_rows),
        "anime_id int, neighbor_id int, similarity double",
    )
    pdf = partial.toPandas()
    if pdf.empty:
        return empty_neighbors()
    keys, nbrs, sims, rank = topk_by_key(
        pdf["anime_id"].to_numpy(), pdf["neighbor_id"].to_numpy(), pdf["similarity"].to_numpy(), k
    )
    return neighbor_frame(
        pd.DataFrame({"anime_id": keys, "neighbor_id": nbrs, "rank": rank, "similarity": sims})
    )


# ---------------------------------------------------------------------------------------------
# dense arrays for scoring
# ---------------------------------------------------------------------------------------------


def neighbor_arrays(
    neighbors: pd.DataFrame, universe: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Dense ``[len(universe), k]`` arrays of neighbour indexes (-1 = none) and similarities.

    ``universe`` is the sorted array of every ``anime_id`` the scoring knows; row ``i`` holds
    the neighbours of ``universe[i]`` with rank <= ``k``, as indexes into ``universe``.
    """
    universe = np.asarray(universe, dtype=np.int64)
    idx = np.full((universe.size, k), -1, dtype=np.int32)
    sim = np.zeros((universe.size, k), dtype=np.float64)
    if neighbors.empty:
        return idx, sim
    nb = neighbors[neighbors["rank"] <= k]
    rows = np.searchsorted(universe, nb["anime_id"].to_numpy())
    cols = np.searchsorted(universe, nb["neighbor_id"].to_numpy())
    if np.any(universe[np.minimum(rows, universe.size - 1)] != nb["anime_id"].to_numpy()) or (
        np.any(universe[np.minimum(cols, universe.size - 1)] != nb["neighbor_id"].to_numpy())
    ):
        raise ValueError("neighbor_arrays: universe must contain every anime_id and neighbor_id")
    ranks = nb["rank"].to_numpy() - 1
    idx[rows, ranks] = cols
    sim[rows, ranks] = nb["similarity"].to_numpy()
    return idx, sim


def restrict_neighbors(neighbors: pd.DataFrame, allowed: np.ndarray, k: int) -> pd.DataFrame:
    """Each title's neighbours among the ``allowed`` anime_ids only: the rows whose
    ``neighbor_id`` is allowed, ranked again 1.. in their order, the first ``k`` kept (from a
    list deeper than ``k``, so that a title keeps ``k`` neighbours where it has them)."""
    require_columns(neighbors.columns, NEIGHBOR_COLUMNS, "neighbours")
    kept = neighbors[np.isin(neighbors["neighbor_id"].to_numpy(), allowed)]
    kept = kept.sort_values(["anime_id", "rank"], kind="stable")
    rank = kept.groupby("anime_id").cumcount().to_numpy() + 1
    out = kept.assign(rank=rank)
    return neighbor_frame(out[out["rank"] <= k].reset_index(drop=True))
