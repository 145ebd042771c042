"""Exact promoter Jaccard over all title pairs: blocked sparse ``A^T A`` on Spark tasks.

Why not the textbook self-join: joining promoters with themselves on ``user_id`` emits one
row per co-promoted triple ``(u, a, b)`` (about 1e9 at full MAL scale) and shuffles them all
to count pairs. Here the triples never exist as rows:

1. the promoter pairs (~16M at full scale, ~130 MB as Arrow) are collected to the driver and
   turned into a compact 0/1 user x title matrix ``A`` (:mod:`.promoters`);
2. ``A`` is broadcast (raw numpy CSC + CSR arrays) and the titles are cut into contiguous
   blocks of about equal *cost* (triples + output rows; popular titles dominate);
3. one Spark task per block computes its rows of the upper triangle of ``A^T A`` with a
   sparse product (or a dense GEMM on a CUDA device, :mod:`.gpu`), in sub-chunks of at most
   ``max_cells`` count cells, converts counts to Jaccard with :func:`jaccard_from_counts` and
   yields Arrow batches of the kept rows only, straight to the (Delta) writer.

Memory per task: the broadcast matrix, one right-hand slice ``A[:, lo:]`` (at most nnz
entries), and per sub-chunk a dense ``int32`` block of ``max_cells`` cells plus its kept rows
(at most ``max_cells`` rows x 32 bytes): with 4M cells (``jaccard.max_block_cells``) about 200 MB.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from pyspark import Broadcast
from pyspark.sql import DataFrame, SparkSession

from anime_recs.similarity.matrix import (
    Counter,
    PromoterMatrix,
    build_promoter_matrix,
    plan_blocks,
    scipy_counter,
    title_costs,
    title_work,
    total_triples,
)
from anime_recs.tables import ANIME_PAIR_JACCARD_SCHEMA, require_columns

log = logging.getLogger(__name__)

DEFAULT_BATCH_ROWS = 1 << 20  # rows per Arrow batch handed to the JVM
ROWS_PER_BLOCK = 4_000_000  # derived block count: about this many output rows per task/file
BLOCKS_PER_CORE = 4

PAIR_ARROW_SCHEMA = pa.schema(
    [
        pa.field("anime_a", pa.int32(), nullable=False),
        pa.field("anime_b", pa.int32(), nullable=False),
        pa.field("promoters_a", pa.int32(), nullable=False),
        pa.field("promoters_b", pa.int32(), nullable=False),
        pa.field("intersection", pa.int32(), nullable=False),
        pa.field("union", pa.int32(), nullable=False),
        pa.field("jaccard", pa.float64(), nullable=False),
    ]
)


# Peak memory of the broadcast design per promoter pair and fixed, per process role: the slopes
# and intercepts measured at 1x and 2x generated users (docs/scale.md, bench_jaccard).
DRIVER_BYTES_PER_PAIR, DRIVER_FIXED_BYTES = 57, int(0.13 * 2**30)
WORKER_BYTES_PER_PAIR, WORKER_FIXED_BYTES = 21, int(0.75 * 2**30)


def broadcast_peak_bytes(promoter_pairs: int) -> int:
    """Estimated peak memory of one process of the broadcast design for ``P`` promoter pairs:
    ``max(driver, worker)`` with ``driver = 0.13 GiB + 57 P`` bytes (collected pairs, COO, CSC
    and CSR alive together) and ``worker = 0.75 GiB + 21 P`` bytes (each Python worker's copy
    of the broadcast matrix)."""
    driver = DRIVER_FIXED_BYTES + DRIVER_BYTES_PER_PAIR * promoter_pairs
    worker = WORKER_FIXED_BYTES + WORKER_BYTES_PER_PAIR * promoter_pairs
    return max(driver, worker)


def jaccard_from_counts(
    intersection: np.ndarray, promoters_a: np.ndarray, promoters_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Promoter Jaccard from counts: ``(union, jaccard)``.

    ``union = |P(a) ∪ P(b)| = |P(a)| + |P(b)| - |P(a) ∩ P(b)|`` and
    ``jaccard = |P(a) ∩ P(b)| / |P(a) ∪ P(b)|`` (float64). Defined for ``union > 0``,
    which holds for every emitted pair because ``intersection >= 1``.
    """
    intersection = np.asarray(intersection)
    union = np.asarray(promoters_a) + np.asarray(promoters_b) - intersection
    return union, intersection / union.astype(np.float64)


def block_pair_batches(
    matrix: PromoterMatrix,
    lo: int,
    hi: int,
    min_intersection: int,
    max_cells: int,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    counter: Counter | None = None,
    right_lo: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """Arrow batches of all pairs ``(i, j)``, ``lo <= i < hi``, ``j >= right_lo``, ``i < j``,
    with enough overlap.

    ``right_lo`` (default ``lo``) is where the right-hand titles start: ``lo`` gives the
    block's rows of the whole upper triangle; ``right_lo >= hi`` only its pairs with the titles
    from ``right_lo`` on (an off-diagonal tile of :mod:`.tiles`); a ``right_lo`` inside
    ``(lo, hi)`` would miss pairs and is refused. ``counter`` must count against
    ``A[:, right_lo:]``. Rows follow :data:`PAIR_ARROW_SCHEMA` (``anime_a < anime_b`` since
    titles are indexed in ``anime_id`` order), sorted by ``(anime_a, anime_b)``. The block is
    processed in sub-chunks of rows so that at most ``max_cells`` counts are materialised at
    once.
    """
    n = matrix.n_titles
    right_lo = lo if right_lo is None else right_lo
    if lo < right_lo < hi:
        raise ValueError(f"right_lo {right_lo} inside the block [{lo}, {hi}) would miss pairs")
    if hi <= lo or n == 0 or right_lo >= n:
        return
    counter = counter or scipy_counter(matrix, right_lo)
    width = n - right_lo
    step = max(1, max_cells // max(width, 1))
    for s0 in range(lo, hi, step):
        s1 = min(hi, s0 + step)
        counts = counter(s0, s1)
        # keep global columns right of the diagonal: column first + c of row s0 + r is kept
        # iff first + c > s0 + r, i.e. c - r >= s0 - first + 1
        first = max(s0, right_lo)
        upper = np.triu(counts[:, first - right_lo :], k=s0 - first + 1)
        r, c = np.nonzero(upper >= min_intersection)
        if r.size == 0:
            continue
        inter = upper[r, c].astype(np.int32)
        a = r + s0
        b = c + first
        pa_, pb_ = matrix.promoters[a], matrix.promoters[b]
        union, jac = jaccard_from_counts(inter, pa_, pb_)
        batch = pa.RecordBatch.from_arrays(
            [
                pa.array(matrix.title_ids[a]),
                pa.array(matrix.title_ids[b]),
                pa.array(pa_),
                pa.array(pb_),
                pa.array(inter),
                pa.array(union.astype(np.int32)),
                pa.array(jac),
            ],
            schema=PAIR_ARROW_SCHEMA,
        )
        for start in range(0, batch.num_rows, batch_rows):
            yield batch.slice(start, batch_rows)


def derive_n_blocks(matrix: PromoterMatrix, parallelism: int) -> int:
    """Default block count: ``max(4 x cores, estimated rows / 4M)``, at most one per title."""
    n = matrix.n_titles
    if n == 0:
        return 1
    est_rows = float(title_work(matrix)[1].sum())
    wanted = max(BLOCKS_PER_CORE * max(parallelism, 1), math.ceil(est_rows / ROWS_PER_BLOCK))
    return int(max(1, min(n, wanted)))


@dataclass(frozen=True)
class PairJaccardPlan:
    """What the driver decided: matrix size, blocks and their boundaries (for logging)."""

    n_titles: int
    n_users: int
    promoter_pairs: int
    triples: int
    bounds: list[int]
    broadcast: Broadcast | None = None

    @property
    def n_blocks(self) -> int:
        return len(self.bounds) - 1

    def release(self) -> None:
        """Drop the broadcast matrix (after the pairs have been written; they recompute)."""
        if self.broadcast is not None:
            self.broadcast.unpersist()


def pair_jaccard(
    spark: SparkSession,
    promoter_pairs: DataFrame,
    min_intersection: int,
    n_blocks: int,
    max_cells: int,
    device: str,
) -> tuple[DataFrame, PairJaccardPlan]:
    """All title pairs sharing at least ``min_intersection`` promoters, with exact Jaccard.

    ``promoter_pairs`` has ``(user_id, anime_id)`` (see :func:`.promoters.promoters`). Its
    stated job includes collecting those pairs to the driver (as Arrow) and broadcasting the
    matrix; the returned DataFrame (schema ``ANIME_PAIR_JACCARD_SCHEMA``) is lazy: each
    action recomputes the blocks, so write it once. ``n_blocks=0`` derives the count from the
    cores and the estimated output; ``device``: ``auto`` (CUDA when visible), ``cpu``, ``cuda``.
    """
    require_columns(promoter_pairs.columns, ("user_id", "anime_id"), "promoter pairs")
    if min_intersection < 1:
        raise ValueError(f"min_intersection must be >= 1, got {min_intersection}")
    table = promoter_pairs.select("user_id", "anime_id").toArrow()
    matrix = build_promoter_matrix(
        table.column("user_id").to_numpy(), table.column("anime_id").to_numpy()
    )
    del table
    parallelism = spark.sparkContext.defaultParallelism
    wanted = n_blocks if n_blocks > 0 else derive_n_blocks(matrix, parallelism)
    bounds = plan_blocks(title_costs(matrix), wanted)
    broadcast = spark.sparkContext.broadcast(matrix)
    plan = PairJaccardPlan(
        n_titles=matrix.n_titles,
        n_users=matrix.n_users,
        promoter_pairs=matrix.nnz,
        triples=total_triples(matrix),
        bounds=[int(b) for b in bounds],
        broadcast=broadcast,
    )
    log.info(
        "promoter matrix: %s users x %s titles, %s promoter pairs, %s triples, %s blocks",
        plan.n_users,
        plan.n_titles,
        plan.promoter_pairs,
        plan.triples,
        plan.n_blocks,
    )
    block_bounds = list(plan.bounds)

    def compute(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        shared = broadcast.value
        for ids in batches:
            for block in ids.column(0).to_pylist():
                lo, hi = block_bounds[block], block_bounds[block + 1]
                counter = count_kernel(shared, lo, device)
                yield from block_pair_batches(
                    shared, lo, hi, min_intersection, max_cells, counter=counter
                )

    blocks = spark.range(0, plan.n_blocks, 1, numPartitions=plan.n_blocks)
    return blocks.mapInArrow(compute, ANIME_PAIR_JACCARD_SCHEMA), plan


def count_kernel(matrix: PromoterMatrix, right_lo: int, device: str) -> Counter:
    """The count kernel against ``A[:, right_lo:]``: scipy on CPU, the torch GEMM when CUDA is
    asked for or visible (``device``: ``auto``, ``cpu``, ``cuda``)."""
    if device in ("auto", "cuda"):
        from anime_recs.similarity import gpu

        if gpu.cuda_available():
            counter = gpu.torch_counter(matrix, right_lo, "cuda")
            if counter is not None:
                return counter
        elif device == "cuda":
            raise RuntimeError("device 'cuda' requested but torch sees no CUDA device")
    return scipy_counter(matrix, right_lo)
