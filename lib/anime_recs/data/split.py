"""The reproducible train/test split of ratings: a pure function of (user_id, anime_id, seed)."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from anime_recs.tables import TEST, TRAIN, require_columns

_TWO_53 = 2**53


def split_uniform(user_id: Column, anime_id: Column, seed: int) -> Column:
    """A number in [0, 1) that depends only on (user_id, anime_id, seed).

    ``u = pmod(xxhash64(int(user_id), int(anime_id), long(seed)), 2^53) / 2^53``

    xxhash64 is Spark's built-in 64-bit hash (seed 42 inside Spark, fixed); the key columns are
    cast to INT and the seed to BIGINT so that the value does not depend on input types.
    The low 53 bits of a well-mixed hash are uniform, and 2^53 values fit a double exactly.
    """
    h = F.xxhash64(user_id.cast("int"), anime_id.cast("int"), F.lit(seed).cast("long"))
    return F.pmod(h, F.lit(_TWO_53)).cast("double") / F.lit(float(_TWO_53))


def assign_split(df: DataFrame, test_fraction: float, seed: int) -> DataFrame:
    """Add ``split``: ``'test'`` when ``split_uniform(user_id, anime_id, seed) < test_fraction``,
    else ``'train'``.

    No randomness outside the hash: the same (user_id, anime_id, seed) always lands in the same
    split whatever the partitioning, row order or cluster size.
    """
    require_columns(df.columns, ("user_id", "anime_id"), "assign_split")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"assign_split: test_fraction must be in (0, 1), got {test_fraction}")
    u = split_uniform(F.col("user_id"), F.col("anime_id"), seed)
    split = F.when(u < F.lit(test_fraction), F.lit(TEST)).otherwise(F.lit(TRAIN))
    return df.select(*[c for c in df.columns if c != "split"], split.alias("split"))
