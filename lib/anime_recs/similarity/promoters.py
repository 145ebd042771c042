"""Promoters: the (user, title) pairs of the promoter matrix (``similarity.matrix``).

A *promoter* of a title is a user who rated it 9 or 10 in the **train** split (the case
study's NPS definition).
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from anime_recs.tables import TRAIN, require_columns

PROMOTER_MIN_RATING = 9


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
