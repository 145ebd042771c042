"""Fine-tuning pairs from promoter Jaccard: label rule, support guards, leak-free split.

``training_pairs`` turns ``anime_pair_jaccard`` into labelled title pairs for the
CosineSimilarityLoss fine-tuning of the description encoder:

1. only titles with a usable description (``anime.has_description``) may appear;
2. **title-group split**: each eligible title goes to ``val`` when
   ``u(anime_id) = (xxhash64(seed, anime_id) mod 2^20) / 2^20 < val_fraction``, otherwise to
   ``train`` (:func:`title_split`). A pair is ``val`` iff both titles are val titles and
   ``train`` iff both are train titles; mixed pairs are dropped. Why: the encoder embeds
   *titles*; a random split of *pairs* would put most val titles into training pairs too, so
   validation would reward memorising those titles' descriptions instead of generalising to
   unseen ones (the recommender must embed titles it never trained on). With title groups no
   title seen in training appears in validation. The cost: ``2 f (1 - f)`` of the pairs
   (32% at f = 0.2) are mixed and dropped.
3. support guards against noise from rarely promoted titles: both titles need at least
   ``min_promoters`` promoters, and a positive needs ``intersection >=
   min_positive_intersection`` (two titles with 2 promoters each that share one have
   Jaccard 1/3 by chance; docs/design.md, "Support guards", gives the measurement behind
   the defaults);
4. :func:`label_rule` labels by Jaccard, the middle band is dropped;
5. negatives are sampled down to ``round(negative_ratio x positives)`` per split,
   deterministically: the negatives with the smallest ``xxhash64(seed, anime_a, anime_b)``
   (ties by the pair) are kept. The same inputs and seed always give the same pairs. (The
   sampling first narrows the candidates with a hash cut, :func:`negative_hash_cut`, so that
   two passes over the pairs suffice; the result is the same as sorting all negatives.)
"""

from __future__ import annotations

import logging

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from anime_recs.tables import TRAIN, VAL, require_columns

log = logging.getLogger(__name__)

HASH_BUCKETS = 1 << 20


def label_rule(jaccard: Column, positive_threshold: float, negative_threshold: float) -> Column:
    """Case-study label: ``1.0`` if ``jaccard >= positive_threshold``, ``0.0`` if
    ``0 < jaccard < negative_threshold``, else NULL (the middle band and jaccard = 0 are
    dropped).
    """
    return (
        F.when(jaccard >= F.lit(positive_threshold), F.lit(1.0))
        .when((jaccard > F.lit(0.0)) & (jaccard < F.lit(negative_threshold)), F.lit(0.0))
        .otherwise(F.lit(None).cast("double"))
    )


def title_split(anime: DataFrame, val_fraction: float, seed: int) -> DataFrame:
    """Eligible titles ``(anime_id, split)``: ``has_description`` titles, val by title hash.

    ``split = 'val'`` iff ``(xxhash64(seed, anime_id) mod 2^20) / 2^20 < val_fraction``.
    """
    require_columns(anime.columns, {"anime_id", "has_description"}, "anime")
    bucket = F.pmod(F.xxhash64(F.lit(seed), F.col("anime_id").cast("int")), F.lit(HASH_BUCKETS))
    return anime.where(F.col("has_description")).select(
        F.col("anime_id").cast("int").alias("anime_id"),
        F.when(bucket < F.lit(val_fraction * HASH_BUCKETS), F.lit(VAL))
        .otherwise(F.lit(TRAIN))
        .alias("split"),
    )


def same_split_pairs(pairs: DataFrame, titles: DataFrame, min_promoters: int) -> DataFrame:
    """Pairs whose two titles both have ``min_promoters`` promoters and lie in the same split
    of ``titles`` (:func:`title_split`); adds ``split``, drops mixed pairs."""
    a = F.broadcast(titles.select(F.col("anime_id").alias("anime_a"), F.col("split")))
    b = F.broadcast(titles.select(F.col("anime_id").alias("anime_b"), F.col("split").alias("sb")))
    return (
        pairs.where(
            (F.col("promoters_a") >= min_promoters) & (F.col("promoters_b") >= min_promoters)
        )
        .join(a, "anime_a")
        .join(b, "anime_b")
        .where(F.col("split") == F.col("sb"))
        .drop("sb")
    )


def labelled_candidates(
    pairs: DataFrame,
    titles: DataFrame,
    positive_threshold: float,
    negative_threshold: float,
    min_promoters: int,
    min_positive_intersection: int,
    seed: int,
) -> DataFrame:
    """All labelled pairs before negative sampling: ``anime_a, anime_b, jaccard, label, split,
    rank_hash``; eligible same-split titles, support guards applied, middle band dropped.
    """
    require_columns(
        pairs.columns,
        {"anime_a", "anime_b", "promoters_a", "promoters_b", "intersection", "jaccard"},
        "anime_pair_jaccard",
    )
    labelled = (
        same_split_pairs(pairs, titles, min_promoters)
        .withColumn("label", label_rule(F.col("jaccard"), positive_threshold, negative_threshold))
        .where(
            (F.col("label") == 0.0)
            | ((F.col("label") == 1.0) & (F.col("intersection") >= min_positive_intersection))
        )
    )
    return labelled.select(
        "anime_a",
        "anime_b",
        "jaccard",
        "label",
        "split",
        F.xxhash64(F.lit(seed), F.col("anime_a"), F.col("anime_b")).alias("rank_hash"),
    )


def training_pairs(
    pairs: DataFrame,
    anime: DataFrame,
    positive_threshold: float,
    negative_threshold: float,
    negative_ratio: float,
    min_promoters: int,
    min_positive_intersection: int,
    val_fraction: float,
    seed: int,
) -> DataFrame:
    """Labelled, split, negative-sampled pairs ``(anime_a, anime_b, jaccard, label, split)``.

    See the module docstring for the rules. Two passes over ``pairs`` (hundreds of millions
    of rows at full scale), both run here: one counts the labelled pairs per split and label,
    one keeps the positives and only the negatives whose ``rank_hash`` falls below a cut
    (:func:`negative_hash_cut`) and caches that small set; the exact sampling (the smallest
    ``rank_hash`` first) then runs on it. The returned DataFrame reads the cached set.
    """
    titles = title_split(anime, val_fraction, seed)
    labelled = labelled_candidates(
        pairs,
        titles,
        positive_threshold,
        negative_threshold,
        min_promoters,
        min_positive_intersection,
        seed,
    )
    counts = {
        (row["split"], row["label"]): int(row["count"])
        for row in labelled.groupBy("split", "label").count().collect()
    }
    wanted = {
        split: negatives_wanted(counts.get((split, 1.0), 0), negative_ratio)
        for split in (TRAIN, VAL)
    }
    cuts = {
        split: negative_hash_cut(wanted[split], counts.get((split, 0.0), 0))
        for split in (TRAIN, VAL)
    }
    kept = _keep_positives_and_negatives_below(labelled, cuts).cache()
    kept_negatives = {
        row["split"]: int(row["count"])
        for row in kept.where(F.col("label") == 0.0).groupBy("split").count().collect()
    }
    short = [
        s for s in (TRAIN, VAL) if kept_negatives.get(s, 0) < wanted[s] and cuts[s] is not None
    ]
    if short:  # fewer than wanted below the cut (improbable): keep every negative of that split
        log.info("splits %s: negatives below the hash cut < wanted, keeping all", short)
        kept.unpersist()
        cuts.update({s: None for s in short})
        kept = _keep_positives_and_negatives_below(labelled, cuts).cache()
    parts = [kept.where(F.col("label") == 1.0)]
    for split in (TRAIN, VAL):
        log.info(
            "split %s: %s positives, %s negatives of %s",
            split,
            counts.get((split, 1.0), 0),
            wanted[split],
            counts.get((split, 0.0), 0),
        )
        if wanted[split] > 0:
            parts.append(
                kept.where((F.col("label") == 0.0) & (F.col("split") == split))
                .orderBy("rank_hash", "anime_a", "anime_b")
                .limit(wanted[split])
            )
    result = parts[0]
    for part in parts[1:]:
        result = result.unionByName(part)
    return result.select(
        F.col("anime_a").cast("int"),
        F.col("anime_b").cast("int"),
        F.col("jaccard").cast("double"),
        F.col("label").cast("double"),
        F.col("split"),
    )


#: Negatives kept below the hash cut, as a multiple of those wanted (plus a constant for
#: small counts): with ``m`` expected, fewer than ``wanted`` is a far tail event (Chernoff).
NEGATIVE_OVERSAMPLE = 4
NEGATIVE_OVERSAMPLE_EXTRA = 64
_HASH_MIN = -(1 << 63)


def negative_hash_cut(wanted: int, available: int) -> int | None:
    """Cut on the signed 64-bit ``rank_hash``: negatives with ``rank_hash < cut`` are kept.

    ``xxhash64`` is uniform on ``[-2^63, 2^63)``, so the cut keeps a fraction ``q = (4 wanted +
    64) / available`` of the ``available`` negatives in expectation. ``None`` (keep all) when
    ``q >= 1``. Exactness does not depend on the hash being uniform: the ``wanted`` smallest
    hashes are all below the cut whenever at least ``wanted`` are, and the caller checks that.
    """
    if wanted <= 0:
        return _HASH_MIN  # keeps nothing
    expected = NEGATIVE_OVERSAMPLE * wanted + NEGATIVE_OVERSAMPLE_EXTRA
    if expected >= available:
        return None
    return _HASH_MIN + (expected << 64) // available


def _keep_positives_and_negatives_below(labelled: DataFrame, cuts: dict) -> DataFrame:
    keep = F.col("label") == 1.0
    for split, cut in cuts.items():
        negative = (F.col("label") == 0.0) & (F.col("split") == split)
        keep = keep | (negative if cut is None else negative & (F.col("rank_hash") < F.lit(cut)))
    return labelled.where(keep)


def negatives_wanted(positives: int, negative_ratio: float) -> int:
    """Negatives to keep for a split: ``round(negative_ratio x positives)`` (half up)."""
    return int(negative_ratio * positives + 0.5)
