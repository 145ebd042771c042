"""The user x title promoter matrix, its cost-balanced title blocks and its CPU count kernel.

The exact Jaccard computation works on the 0/1 matrix ``A[u, j] = 1 iff user u promotes title
j`` (:func:`anime_recs.similarity.promoters.promoters`) with compact indexes: titles are
numbered 0..n-1 in ascending ``anime_id`` order (so ``i < j`` iff ``anime_id[i] < anime_id[j]``)
and users 0..m-1 in ascending ``user_id`` order. Titles without promoters never appear in the
matrix (they share no promoter with anything, so they have no pair).

Pair counts are ``C = A^T A``; only the upper triangle (``i < j``) is needed. A block of
consecutive titles ``[lo, hi)`` is computed as ``A[:, lo:hi]^T @ A[:, lo:]``, so its work is
the number of co-promoted triples ``(u, i, k)`` with ``lo <= i < hi`` and ``k > i``
(roughly). :func:`title_costs` estimates that per title and :func:`plan_blocks` cuts the
titles into contiguous blocks of about equal cost, because popular titles dominate: a block
of 10 blockbusters can cost more than a block of 5,000 obscure titles.

Needs numpy and scipy only (no Spark), like the CUDA kernel
(:mod:`anime_recs.similarity.gpu`), so both can be timed where Spark is not installed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

log = logging.getLogger(__name__)

# One output row (count -> Jaccard -> Arrow -> JVM -> Parquet) costs about as much as this
# many co-promoted triples inside the sparse product; used to balance blocks.
OUTPUT_ROW_COST = 8.0

# counts(s0, s1) -> dense int32 array (s1 - s0) x (n_titles - lo) of A[:, s0:s1]^T @ A[:, lo:]
Counter = Callable[[int, int], np.ndarray]


@dataclass(frozen=True)
class PromoterMatrix:
    """The 0/1 user x title promoter matrix as raw CSC and CSR arrays (picklable, broadcastable).

    ``title_ids[j]`` is the ``anime_id`` of column j (ascending), ``promoters[j]`` its number
    of promoters (column sums). CSC gives cheap column slices (``A[:, s0:s1]^T`` as CSR),
    CSR gives the right-hand operand rows; both have sorted indices and no duplicates.
    """

    title_ids: np.ndarray  # int32 [n]
    promoters: np.ndarray  # int32 [n]
    n_users: int
    csc_indptr: np.ndarray  # int64 [n + 1]
    csc_indices: np.ndarray  # int32 [nnz] user index
    csr_indptr: np.ndarray  # int64 [m + 1]
    csr_indices: np.ndarray  # int32 [nnz] title index

    @property
    def n_titles(self) -> int:
        return int(self.title_ids.shape[0])

    @property
    def nnz(self) -> int:
        return int(self.csc_indices.shape[0])

    def columns_t(self, s0: int, s1: int) -> sp.csr_matrix:
        """``A[:, s0:s1]^T`` as a CSR matrix ``(s1 - s0) x n_users`` (int32 ones)."""
        p0, p1 = int(self.csc_indptr[s0]), int(self.csc_indptr[s1])
        indptr = self.csc_indptr[s0 : s1 + 1] - p0
        indices = self.csc_indices[p0:p1]
        data = np.ones(p1 - p0, dtype=np.int32)
        return sp.csr_matrix((data, indices, indptr), shape=(s1 - s0, self.n_users), copy=False)

    def csr(self) -> sp.csr_matrix:
        """``A`` as a CSR matrix ``n_users x n_titles`` (int32 ones)."""
        data = np.ones(self.nnz, dtype=np.int32)
        return sp.csr_matrix(
            (data, self.csr_indices, self.csr_indptr),
            shape=(self.n_users, self.n_titles),
            copy=False,
        )

    def right(self, lo: int) -> sp.csr_matrix:
        """``A[:, lo:]`` as CSR ``n_users x (n_titles - lo)`` (column slice, one pass)."""
        full = self.csr()
        return full if lo == 0 else full[:, lo:]


def compact_index(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(unique_ids, index)`` with ``unique_ids[index] == ids``, like ``np.unique(...,
    return_inverse=True)``.

    Ids are small non-negative integers here (MAL ids < 400k), so a presence table of
    ``max(ids) + 1`` flags and its running count give both in O(n) instead of a sort. Falls back to
    ``np.unique`` for negative ids or when the table would be much larger than the input.
    """
    ids = np.asarray(ids)
    if ids.size == 0:
        return ids.astype(np.int64), np.zeros(0, dtype=np.int64)
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high > 8 * ids.size + (1 << 20):
        unique_ids, index = np.unique(ids, return_inverse=True)
        return unique_ids, index.reshape(-1)
    present = np.zeros(high + 1, dtype=bool)
    present[ids] = True
    position = np.cumsum(present, dtype=np.int64) - 1
    return np.flatnonzero(present), position[ids]


def build_promoter_matrix(user_ids: np.ndarray, anime_ids: np.ndarray) -> PromoterMatrix:
    """Build the promoter matrix from parallel arrays of promoter ``(user_id, anime_id)``.

    Duplicated pairs count once. Indexes are compact and ordered by id.
    """
    user_ids = np.asarray(user_ids)
    anime_ids = np.asarray(anime_ids)
    if user_ids.shape != anime_ids.shape:
        raise ValueError("user_ids and anime_ids must have the same length")
    title_ids, col = compact_index(anime_ids)
    _, row = compact_index(user_ids)
    n_users = int(row.max()) + 1 if row.size else 0
    # sum_duplicates leaves the CSC canonical (sorted, unique indices); CSR from it is sorted
    csc = sp.csc_matrix(
        (np.ones(row.size, dtype=np.int32), (row.astype(np.int32), col.astype(np.int32))),
        shape=(n_users, title_ids.size),
    )
    csc.sum_duplicates()
    csr = csc.tocsr()
    csr.sort_indices()
    promoter_counts = np.diff(csc.indptr).astype(np.int32)
    return PromoterMatrix(
        title_ids=title_ids.astype(np.int32),
        promoters=promoter_counts,
        n_users=n_users,
        csc_indptr=csc.indptr.astype(np.int64),
        csc_indices=csc.indices.astype(np.int32),
        csr_indptr=csr.indptr.astype(np.int64),
        csr_indices=csr.indices.astype(np.int32),
    )


def title_work(matrix: PromoterMatrix) -> tuple[np.ndarray, np.ndarray]:
    """Per title j: ``(triples_j, rows_j)`` of the upper-triangle product.

    ``triples_j = sum over promoters u of j of |{k > j : u promotes k}|`` (the multiply-adds
    of row j of ``A^T A`` right of the diagonal) and ``rows_j = min(n - 1 - j, triples_j)``,
    an upper bound of its output rows.
    """
    n = matrix.n_titles
    if n == 0:
        return np.zeros(0), np.zeros(0)
    row_end = np.repeat(matrix.csr_indptr[1:], np.diff(matrix.csr_indptr))
    after = row_end - np.arange(matrix.nnz, dtype=np.int64) - 1  # later titles of the same user
    triples = np.bincount(matrix.csr_indices, weights=after, minlength=n)
    rows = np.minimum(np.arange(n - 1, -1, -1, dtype=np.float64), triples)
    return triples, rows


def title_costs(matrix: PromoterMatrix, output_row_cost: float = OUTPUT_ROW_COST) -> np.ndarray:
    """Estimated work per title: ``triples_j + output_row_cost * rows_j`` (:func:`title_work`)."""
    triples, rows = title_work(matrix)
    return triples + output_row_cost * rows


def total_triples(matrix: PromoterMatrix) -> int:
    """Number of co-promoted triples ``(u, a, b)`` with ``a < b``: ``sum_u d_u (d_u - 1) / 2``."""
    deg = np.diff(matrix.csr_indptr).astype(np.int64)
    return int((deg * (deg - 1) // 2).sum())


def plan_blocks(costs: np.ndarray, n_blocks: int) -> np.ndarray:
    """Cut titles ``0..n-1`` into at most ``n_blocks`` contiguous blocks of about equal cost.

    Returns the boundaries ``[0, b1, ..., n]`` (strictly increasing). A single title costlier
    than one share stays alone in its block (it cannot be split across tasks).
    """
    n = int(costs.shape[0])
    if n == 0:
        return np.array([0, 0], dtype=np.int64)
    n_blocks = max(1, min(int(n_blocks), n))
    costs = np.asarray(costs, dtype=np.float64)
    cum = np.cumsum(costs if costs.sum() > 0 else np.ones(n))
    targets = cum[-1] * np.arange(1, n_blocks) / n_blocks
    cuts = np.searchsorted(cum, targets, side="left") + 1
    bounds = np.unique(np.concatenate([[0], np.clip(cuts, 1, n), [n]]))
    return bounds.astype(np.int64)


def scipy_counter(matrix: PromoterMatrix, lo: int) -> Counter:
    """Counts with a sparse product ``A[:, s0:s1]^T @ A[:, lo:]`` (scipy, CPU)."""
    right = matrix.right(lo)

    def counts(s0: int, s1: int) -> np.ndarray:
        return (matrix.columns_t(s0, s1) @ right).toarray()

    return counts


def plan_title_blocks(promoter_counts: np.ndarray, block_promoters: int) -> np.ndarray:
    """Cut titles ``0..n-1`` into contiguous blocks of at most ``block_promoters`` promoter
    pairs each (the tiles' unit of memory, :mod:`anime_recs.similarity.tiles`).

    Greedy in title order: a block closes before the title that would take it over the budget;
    a title with more promoters than the budget is a block of its own. Returns the boundaries
    ``[0, b1, ..., n]`` (strictly increasing; ``[0]`` for no titles).
    """
    if block_promoters < 1:
        raise ValueError(f"block_promoters must be >= 1, got {block_promoters}")
    counts = np.asarray(promoter_counts, dtype=np.int64)
    if counts.shape[0] == 0:
        return np.zeros(1, dtype=np.int64)
    bounds, held = [0], 0
    for j, count in enumerate(counts.tolist()):
        if j > bounds[-1] and held + count > block_promoters:
            bounds.append(j)
            held = 0
        held += count
    bounds.append(counts.shape[0])
    return np.asarray(bounds, dtype=np.int64)
