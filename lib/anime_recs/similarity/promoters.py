"""Promoters and the user x title promoter matrix, with cost-balanced title blocks.

A *promoter* of a title is a user who rated it 9 or 10 in the **train** split (the case
study's NPS definition). The exact Jaccard computation works on the 0/1 matrix
``A[u, j] = 1 iff user u promotes title j`` with compact indexes: titles are numbered
0..n-1 in ascending ``anime_id`` order (so ``i < j`` iff ``anime_id[i] < anime_id[j]``) and
users 0..m-1 in ascending ``user_id`` order. Titles without promoters never appear in the
matrix (they share no promoter with anything, so they have no pair).

Pair counts are ``C = A^T A``; only the upper triangle (``i < j``) is needed. A block of
consecutive titles ``[lo, hi)`` is computed as ``A[:, lo:hi]^T @ A[:, lo:]``, so its work is
the number of co-promoted triples ``(u, i, k)`` with ``lo <= i < hi`` and ``k > i``
(roughly). :func:`title_costs` estimates that per title and :func:`plan_blocks` cuts the
titles into contiguous blocks of about equal cost, because popular titles dominate: a block
of 10 blockbusters can cost more than a block of 5,000 obscure titles.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from anime_recs.tables import TRAIN, require_columns

log = logging.getLogger(__name__)

PROMOTER_MIN_RATING = 9
# One output row (count -> Jaccard -> Arrow -> JVM -> Parquet) costs about as much as this
# many co-promoted triples inside the sparse product; used to balance blocks.
OUTPUT_ROW_COST = 8.0


def promoters(ratings: DataFrame) -> DataFrame:
    """Promoter pairs ``(user_id, anime_id)``: train ratings with ``rating >= 9``.

    No ``distinct()``: ``ratings`` holds one row per (user, title) (ingest keeps the first of
    duplicated rows), and :func:`build_promoter_matrix` counts a repeated pair once anyway, so
    a de-duplicating shuffle of ~16M rows at full scale would buy nothing.
    """
    require_columns(ratings.columns, ("user_id", "anime_id", "rating", "split"), "ratings")
    return ratings.where(
        (F.col("split") == TRAIN) & (F.col("rating") >= PROMOTER_MIN_RATING)
    ).select(F.col("user_id").cast("int"), F.col("anime_id").cast("int"))


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
