"""Promoters: the (user, title) pairs of the promoter matrix (``similarity.matrix``) and the
``promoters`` table (one row per title: its promoters, a column of that matrix, and its title
block).

A *promoter* of a title is a user who rated it 9 or 10 in the **train** split (the case
study's NPS definition).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from anime_recs.tables import PROMOTER_MIN_RATING, TRAIN, require_columns


def promoters(ratings: DataFrame) -> DataFrame:
    """Promoter pairs ``(user_id, anime_id)``: train ratings with ``rating >= 9``.

    No ``distinct()``: ``ratings`` holds one row per (user, title) (ingest keeps the first of
    duplicated rows), and :func:`~anime_recs.similarity.matrix.build_promoter_matrix` counts a
    repeated pair once anyway, so a de-duplicating shuffle of ~16M rows at full scale would buy
    nothing.
    """
    require_columns(ratings.columns, ("user_id", "anime_id", "rating", "split"), "ratings")
    return ratings.where(
        (F.col("split") == TRAIN) & (F.col("rating") >= PROMOTER_MIN_RATING)
    ).select(F.col("user_id").cast("int"), F.col("anime_id").cast("int"))


def title_promoter_counts(promoter_pairs: DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(anime_ids, promoters)`` of every title with a promoter, ascending ``anime_id``: one
    row per title reaches the driver (what the title blocks are planned from), never a pair."""
    require_columns(promoter_pairs.columns, ("user_id", "anime_id"), "promoter pairs")
    table = promoter_pairs.groupBy("anime_id").count().orderBy("anime_id").toArrow()
    return (
        table.column("anime_id").to_numpy().astype(np.int32),
        table.column("count").to_numpy().astype(np.int64),
    )


def title_block(anime_id: Column, first_ids: Sequence[int]) -> Column:
    """The block of a title: the number of block starts ``first_ids`` (ascending, the
    ``anime_id`` each block begins with) at or below ``anime_id``, minus one."""
    if len(first_ids) == 0:
        return F.lit(0)
    block = F.when(anime_id >= int(first_ids[-1]), len(first_ids) - 1)
    for k in range(len(first_ids) - 2, 0, -1):
        block = block.when(anime_id >= int(first_ids[k]), k)
    return block.otherwise(0).cast("int")


def promoter_lists(promoter_pairs: DataFrame, first_ids: Sequence[int]) -> DataFrame:
    """The ``promoters`` table's rows: one per title with a promoter, ``(anime_id,
    title_block, promoters, user_ids)``, ``user_ids`` its promoters ascending (a column of the
    promoter matrix), ``promoters`` their number, ``title_block`` by :func:`title_block`."""
    require_columns(promoter_pairs.columns, ("user_id", "anime_id"), "promoter pairs")
    return (
        promoter_pairs.groupBy("anime_id")
        .agg(F.array_sort(F.collect_set("user_id")).alias("user_ids"))
        .select(
            "anime_id",
            title_block(F.col("anime_id"), first_ids).alias("title_block"),
            F.size("user_ids").cast("int").alias("promoters"),
            "user_ids",
        )
    )


def pairs_of_lists(promoter_table: DataFrame) -> DataFrame:
    """The promoter pairs ``(user_id, anime_id)`` of ``promoters`` table rows."""
    require_columns(promoter_table.columns, ("anime_id", "user_ids"), "promoters")
    return promoter_table.select(F.explode("user_ids").alias("user_id"), "anime_id")
