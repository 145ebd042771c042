"""The reproducible train/test split of ratings.

Two holdouts:

- ratings: a rating is ``test`` when ``split_uniform(user_id, anime_id, seed) < test_fraction``,
  a pure hash of the key and the seed;
- cold titles (:func:`newest_titles`): every rating of the newest ``cold_title_fraction`` of the
  rated titles, by the start of their airing, is ``test``: the titles a catalogue adds are new
  releases, which have few ratings and no history. No train rating of them reaches promoter
  Jaccard, the training pairs or the fine-tuning, and the evaluation measures separately how
  well each recommender that can reach them ranks them (the ``cold`` view of the evaluation).
  A random share of titles would instead hold out old, popular titles, whose many test ratings
  outweigh every warm title's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

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


MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        start=1,
    )
}
SEASON_MONTHS = {"Winter": 1, "Spring": 4, "Summer": 7, "Fall": 10}
_AIRED_START = re.compile(r"^\s*(?:([A-Z][a-z]{2})\s+(?:\d{1,2},\s*)?)?(\d{4})")
_PREMIERED = re.compile(r"^\s*(Winter|Spring|Summer|Fall)\s+(\d{4})")


def start_month(aired: str | None, premiered: str | None) -> int | None:
    """The month a title started airing, as ``12 x year + month - 1`` (None when unknown).

    From ``aired``'s first date (``"Apr 3, 1998 to Apr 24, 1999"``, ``"Sep 2005"``, ``"2005"``:
    month 1 when only the year is given), else from ``premiered``'s season (``"Spring 1998"``:
    Winter = January, Spring = April, Summer = July, Fall = October).
    """
    match = _AIRED_START.match(aired or "")
    if match:
        month = MONTHS.get(match.group(1) or "", 1)
        return 12 * int(match.group(2)) + month - 1
    match = _PREMIERED.match(premiered or "")
    if match:
        return 12 * int(match.group(2)) + SEASON_MONTHS[match.group(1)] - 1
    return None


def newest_titles(
    starts: Mapping[int, int | None], rated: Iterable[int], fraction: float
) -> list[int]:
    """The cold-title holdout: ``ceil(fraction x |rated titles with a known start|)`` rated
    titles with the latest ``starts`` (:func:`start_month`), ties to the larger ``anime_id``
    (MAL numbers titles as they are added), sorted by ``anime_id``. Titles of unknown start
    are never held out."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"cold_title_fraction must be in [0, 1), got {fraction}")
    known = [(starts[i], i) for i in set(rated) if starts.get(i) is not None]
    count = math.ceil(fraction * len(known))
    return sorted(i for _, i in sorted(known, reverse=True)[:count])


def assign_split(
    df: DataFrame, test_fraction: float, seed: int, cold_titles: Iterable[int] = ()
) -> DataFrame:
    """Add ``split``: ``'test'`` when ``split_uniform(user_id, anime_id, seed) < test_fraction``
    or the title is one of ``cold_titles`` (:func:`newest_titles`), else ``'train'``.

    No randomness outside the hash: the same (user_id, anime_id, seed) and cold titles always
    give the same split whatever the partitioning, row order or cluster size.
    """
    require_columns(df.columns, ("user_id", "anime_id"), "assign_split")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"assign_split: test_fraction must be in (0, 1), got {test_fraction}")
    u = split_uniform(F.col("user_id"), F.col("anime_id"), seed)
    held_out = sorted({int(i) for i in cold_titles})
    cold = F.col("anime_id").cast("int").isin(held_out) if held_out else F.lit(False)
    split = F.when((u < F.lit(test_fraction)) | cold, F.lit(TEST)).otherwise(F.lit(TRAIN))
    return df.select(*[c for c in df.columns if c != "split"], split.alias("split"))
