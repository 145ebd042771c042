"""Co-promoted title pairs: the examples of the contrastive fine-tuning recipe and its validation.

``copromoted_pairs`` turns ``anime_pair_jaccard`` into graded pairs:

1. support guards: both titles have at least ``min_promoters`` promoters and the pair shares at
   least ``min_intersection`` of them (a Jaccard between rarely promoted titles is noise);
2. the same leak-free title-group split as the case-study pairs
   (:func:`anime_recs.similarity.labels.title_split`): a pair is ``train`` when both titles are
   train titles and ``val`` when both are val titles; mixed pairs are dropped;
3. ``train`` keeps, for every title, its ``top_partners`` partners of highest Jaccard (ties by the
   smaller partner id); a pair stays when it is in the top list of either title. These are the
   anchor/positive pairs of ``MultipleNegativesRankingLoss``: the other titles of a batch are the
   negatives, so no negative sampling is needed;
4. ``val`` keeps every guarded val pair with its graded ``jaccard``: thousands of pairs of
   titles no training pair contains, the validation set of the Spearman correlation between
   cosine similarity and Jaccard that both recipes report.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from anime_recs.similarity.labels import same_split_pairs, title_split
from anime_recs.tables import COPROMOTED_PAIRS_SCHEMA, TRAIN, VAL, require_columns

PAIR_COLUMNS = ("anime_a", "anime_b", "promoters_a", "promoters_b", "intersection", "jaccard")


def copromoted_pairs(
    pairs: DataFrame,
    anime: DataFrame,
    top_partners: int,
    min_promoters: int,
    min_intersection: int,
    val_fraction: float,
    seed: int,
) -> DataFrame:
    """Graded pairs ``(anime_a, anime_b, jaccard, intersection, split)``; see the module
    docstring for the rules."""
    require_columns(pairs.columns, PAIR_COLUMNS, "anime_pair_jaccard")
    titles = title_split(anime, val_fraction, seed)
    guarded = (
        same_split_pairs(pairs, titles, min_promoters)
        .where(F.col("intersection") >= min_intersection)
        .select("anime_a", "anime_b", "jaccard", "intersection", "split")
    )
    train = guarded.where(F.col("split") == TRAIN)
    directed = train.select(
        F.col("anime_a").alias("title"), F.col("anime_b").alias("partner"), "jaccard"
    ).unionByName(
        train.select(F.col("anime_b").alias("title"), F.col("anime_a").alias("partner"), "jaccard")
    )
    by_title = Window.partitionBy("title").orderBy(F.col("jaccard").desc(), F.col("partner"))
    top = (
        directed.withColumn("rank", F.row_number().over(by_title))
        .where(F.col("rank") <= top_partners)
        .select(
            F.least("title", "partner").alias("anime_a"),
            F.greatest("title", "partner").alias("anime_b"),
        )
        .distinct()
    )
    kept_train = train.join(top, ["anime_a", "anime_b"], "left_semi")
    val = guarded.where(F.col("split") == VAL)
    return kept_train.unionByName(val).select(
        *[F.col(f.name).cast(f.dataType) for f in COPROMOTED_PAIRS_SCHEMA.fields]
    )
