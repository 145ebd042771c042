"""Exact promoter Jaccard as title-block tiles: nothing collected on the driver, nothing
broadcast (``jaccard.mode: tiles``).

The ``promoters`` table holds one row per title: its promoters ascending (a column of the
promoter matrix ``A``) and its title block, a contiguous ``anime_id`` range of at most
``jaccard.block_promoters`` promoter pairs (:func:`~.matrix.plan_title_blocks`). ``b`` blocks
give ``b (b + 1) / 2`` tiles ``(i, j)``, ``i <= j``; one shuffle sends each title row to the
``b`` tiles that need its block, and each tile's task:

1. builds the promoter matrix of its two blocks (users compacted over them; block ``i``'s
   titles first, since blocks are ``anime_id`` ranges);
2. counts ``A_i^T A_j`` with the broadcast design's kernel
   (:func:`~.jaccard.block_pair_batches`: the upper triangle on the diagonal, CUDA when
   present) and converts the kept counts to Jaccard;
3. yields Arrow batches of its pair rows straight to the (Delta) writer.

Memory per task: the rows of two blocks (at most ``2 x block_promoters`` user ids, held as
Arrow, COO, CSC and CSR) plus one count sub-chunk of ``max_cells`` cells: set by the block size,
not by the number of promoter pairs. The driver holds the per-title promoter counts (one number
per title) and the tile list.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from anime_recs.similarity.jaccard import block_pair_batches, count_kernel
from anime_recs.similarity.matrix import build_promoter_matrix
from anime_recs.tables import ANIME_PAIR_JACCARD_SCHEMA, require_columns

log = logging.getLogger(__name__)

TILE_COLUMNS = ("tile", "title_block", "anime_id", "user_ids")


def tile_blocks(n_blocks: int) -> list[tuple[int, int]]:
    """The blocks ``(i, j)`` of each tile, ``0 <= i <= j < b``, in row order of the upper
    triangle of the ``b x b`` block grid: a tile's id is its position here."""
    return [(i, j) for i in range(n_blocks) for j in range(i, n_blocks)]


def tile_membership(n_blocks: int) -> list[tuple[int, int]]:
    """``(tile, block)`` for each block a tile reads: ``b`` tiles per block, ``b^2`` rows."""
    rows = []
    for tile, (i, j) in enumerate(tile_blocks(n_blocks)):
        rows.append((tile, i))
        if j != i:
            rows.append((tile, j))
    return rows


def tile_pair_batches(
    rows: pa.Table,
    block_i: int,
    block_j: int,
    min_intersection: int,
    max_cells: int,
    device: str,
) -> Iterator[pa.RecordBatch]:
    """The pair rows of tile ``(block_i, block_j)`` from the ``promoters`` rows of its blocks.

    ``rows`` has ``title_block``, ``anime_id`` (ascending) and ``user_ids``; every title has a
    promoter. On the diagonal every pair of the block; off it every pair of a title of
    ``block_i`` with one of ``block_j`` (all of whose ``anime_id`` are larger).
    """
    users = rows.column("user_ids").combine_chunks()
    anime_ids = rows.column("anime_id").to_numpy()
    matrix = build_promoter_matrix(
        users.flatten().to_numpy(), np.repeat(anime_ids, users.value_lengths().to_numpy())
    )
    if block_i == block_j:
        counter = count_kernel(matrix, 0, device)
        yield from block_pair_batches(
            matrix, 0, matrix.n_titles, min_intersection, max_cells, counter=counter
        )
        return
    n_left = int((rows.column("title_block").to_numpy() == block_i).sum())
    counter = count_kernel(matrix, n_left, device)
    yield from block_pair_batches(
        matrix, 0, n_left, min_intersection, max_cells, counter=counter, right_lo=n_left
    )


@dataclass(frozen=True)
class TilePlan:
    """What the driver decided: the blocks and the tiles (for logging)."""

    n_blocks: int

    @property
    def n_tiles(self) -> int:
        return self.n_blocks * (self.n_blocks + 1) // 2

    def release(self) -> None:
        """Nothing to release: the tiles hold no broadcast."""


def tile_pair_jaccard(
    spark: SparkSession,
    promoter_table: DataFrame,
    n_blocks: int,
    min_intersection: int,
    max_cells: int,
    device: str,
) -> tuple[DataFrame, TilePlan]:
    """All title pairs sharing at least ``min_intersection`` promoters, with exact Jaccard,
    computed tile by tile on the executors.

    ``promoter_table`` has the ``promoters`` table's ``anime_id``, ``title_block`` (``0 ..
    n_blocks - 1``, contiguous ``anime_id`` ranges) and ``user_ids``. The returned DataFrame
    (schema ``ANIME_PAIR_JACCARD_SCHEMA``) is lazy; each action recomputes the tiles.
    """
    require_columns(promoter_table.columns, TILE_COLUMNS[1:], "promoters")
    if min_intersection < 1:
        raise ValueError(f"min_intersection must be >= 1, got {min_intersection}")
    plan = TilePlan(n_blocks=max(0, n_blocks))
    if plan.n_blocks == 0:
        return spark.createDataFrame([], ANIME_PAIR_JACCARD_SCHEMA), plan
    log.info("promoter Jaccard: %s title blocks, %s tiles", plan.n_blocks, plan.n_tiles)
    membership = spark.createDataFrame(tile_membership(plan.n_blocks), "tile INT, title_block INT")
    tiled = (
        promoter_table.select(*TILE_COLUMNS[1:])
        .join(F.broadcast(membership), "title_block")
        .repartitionByRange(plan.n_tiles, "tile")
        .sortWithinPartitions("tile", "anime_id")
        .select(*TILE_COLUMNS)
    )
    blocks_of = tile_blocks(plan.n_blocks)

    def compute(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        # rows arrive sorted by tile; one tile's rows are held at a time
        current, held = None, []
        for batch in batches:
            tiles = batch.column(0).to_numpy()
            cuts = [0, *(np.flatnonzero(np.diff(tiles)) + 1).tolist(), len(tiles)]
            for start, stop in zip(cuts[:-1], cuts[1:], strict=True):
                if stop == start:
                    continue
                tile = int(tiles[start])
                if current is not None and tile != current:
                    yield from _tile(current, held)
                    held = []
                current = tile
                held.append(batch.slice(start, stop - start))
        if current is not None:
            yield from _tile(current, held)

    def _tile(tile: int, held: list[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        i, j = blocks_of[tile]
        rows = pa.Table.from_batches(held)
        yield from tile_pair_batches(rows, i, j, min_intersection, max_cells, device)

    return tiled.mapInArrow(compute, ANIME_PAIR_JACCARD_SCHEMA), plan
