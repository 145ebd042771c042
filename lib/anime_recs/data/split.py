"""The reproducible train/test split of ratings: a pure function of (user_id, anime_id, seed).

Two holdouts, both pure hashes:

- ratings: a rating is ``test`` when ``split_uniform(user_id, anime_id, seed) < test_fraction``;
- cold-start titles: every rating of a title with ``title_uniform(anime_id, seed) <
  cold_title_fraction`` is ``test``, as if the title had just been released: no train rating of
  it reaches promoter Jaccard, the training pairs or the fine-tuning, and the evaluation can
  measure which recommenders still surface it (``anime_recs.evaluation.cold_start``).
"""

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


def title_uniform(anime_id: Column, seed: int) -> Column:
    """A number in [0, 1) that depends only on (anime_id, seed), independent of
    :func:`split_uniform`: ``pmod(xxhash64("cold-title", int(anime_id), long(seed)), 2^53) / 2^53``.
    """
    h = F.xxhash64(F.lit("cold-title"), anime_id.cast("int"), F.lit(seed).cast("long"))
    return F.pmod(h, F.lit(_TWO_53)).cast("double") / F.lit(float(_TWO_53))


def assign_split(
    df: DataFrame, test_fraction: float, seed: int, cold_title_fraction: float = 0.0
) -> DataFrame:
    """Add ``split``: ``'test'`` when ``split_uniform(user_id, anime_id, seed) < test_fraction``
    or the title is held out (``title_uniform(anime_id, seed) < cold_title_fraction``), else
    ``'train'``.

    No randomness outside the hash: the same (user_id, anime_id, seed) always lands in the same
    split whatever the partitioning, row order or cluster size.
    """
    require_columns(df.columns, ("user_id", "anime_id"), "assign_split")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"assign_split: test_fraction must be in (0, 1), got {test_fraction}")
    if not 0.0 <= cold_title_fraction < 1.0:
        raise ValueError(
            f"assign_split: cold_title_fraction must be in [0, 1), got {cold_title_fraction}"
        )
    u = split_uniform(F.col("user_id"), F.col("anime_id"), seed)
    cold = title_uniform(F.col("anime_id"), seed) < F.lit(cold_title_fraction)
    split = F.when((u < F.lit(test_fraction)) | cold, F.lit(TEST)).otherwise(F.lit(TRAIN))
    return df.select(*[c for c in df.columns if c != "split"], split.alias("split"))
