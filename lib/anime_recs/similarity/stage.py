"""The jaccard stage: exact promoter Jaccard over all title pairs (``anime_pair_jaccard``), the
case study's labelled fine-tuning pairs (``training_pairs``) and the graded co-promoted pairs of
the contrastive recipe (``copromoted_pairs``), all overwritten.

The pair counts are a blocked sparse ``A^T A`` of the user x title promoter matrix
(:mod:`anime_recs.similarity.jaccard`); labels, support guards, negative sampling and the
leak-free title-group split are :mod:`anime_recs.similarity.labels`; the co-promoted pairs
:mod:`anime_recs.similarity.copromoted`.
"""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame, SparkSession

from anime_recs import tables
from anime_recs.config import AppConfig, JaccardConfig
from anime_recs.lakehouse import read_table, table_version, write_table
from anime_recs.runlog import StageRun
from anime_recs.similarity.copromoted import copromoted_pairs
from anime_recs.similarity.jaccard import PairJaccardPlan, pair_jaccard
from anime_recs.similarity.labels import training_pairs
from anime_recs.similarity.promoters import promoters
from anime_recs.steps import step

log = logging.getLogger(__name__)


def configured_pair_jaccard(
    spark: SparkSession, ratings: DataFrame, cfg: JaccardConfig
) -> tuple[DataFrame, PairJaccardPlan]:
    """:func:`~anime_recs.similarity.jaccard.pair_jaccard` of the promoters of ``ratings``
    with the ``jaccard`` settings."""
    return pair_jaccard(
        spark,
        promoters(ratings),
        min_intersection=cfg.min_intersection,
        n_blocks=cfg.title_blocks,
        max_cells=cfg.max_block_cells,
        device=cfg.device,
    )


def configured_copromoted_pairs(
    pairs: DataFrame, anime: DataFrame, cfg: JaccardConfig
) -> DataFrame:
    """:func:`~anime_recs.similarity.copromoted.copromoted_pairs` with the ``jaccard``
    settings."""
    cp = cfg.copromoted
    return copromoted_pairs(
        pairs,
        anime,
        top_partners=cp.top_partners,
        min_promoters=cp.min_promoters,
        min_intersection=cp.min_intersection,
        val_fraction=cfg.val_fraction,
        seed=cfg.seed,
    )


def run(spark: SparkSession, config: AppConfig, run: StageRun) -> None:
    """Count promoter pairs of the train split, write the Jaccard table, label pairs from it."""
    lake, cfg = config.paths.lake, config.jaccard
    with step("read inputs") as facts:
        ratings = read_table(spark, lake, tables.RATINGS, run.versions[tables.RATINGS])
        anime = read_table(spark, lake, tables.ANIME, run.versions[tables.ANIME])
        facts.update(ratings_version=run.versions[tables.RATINGS])
        facts.update(anime_version=run.versions[tables.ANIME])

    with step(f"compute and write {tables.ANIME_PAIR_JACCARD}") as facts:
        pairs, plan = configured_pair_jaccard(spark, ratings, cfg)
        facts.update(
            users=plan.n_users,
            titles=plan.n_titles,
            promoter_pairs=plan.promoter_pairs,
            triples=plan.triples,
            blocks=plan.n_blocks,
        )
        facts["version"] = write_table(
            pairs, lake, tables.ANIME_PAIR_JACCARD, tables.ANIME_PAIR_JACCARD_SCHEMA
        )

    with step(f"count {tables.ANIME_PAIR_JACCARD}") as facts:
        written = read_table(spark, lake, tables.ANIME_PAIR_JACCARD)
        facts["rows"] = written.count()
        plan.release()
    log.info(
        "output table %s: version %s, %s rows",
        tables.ANIME_PAIR_JACCARD,
        table_version(spark, lake, tables.ANIME_PAIR_JACCARD),
        facts["rows"],
    )

    with step(f"compute and write {tables.TRAINING_PAIRS}") as facts:
        labelled = training_pairs(
            written,
            anime,
            positive_threshold=cfg.positive_threshold,
            negative_threshold=cfg.negative_threshold,
            negative_ratio=cfg.negative_ratio,
            min_promoters=cfg.min_promoters,
            min_positive_intersection=cfg.min_positive_intersection,
            val_fraction=cfg.val_fraction,
            seed=cfg.seed,
        )
        facts["version"] = write_table(
            labelled, lake, tables.TRAINING_PAIRS, tables.TRAINING_PAIRS_SCHEMA
        )
        out = read_table(spark, lake, tables.TRAINING_PAIRS)
        counts = {
            f"{r['split']}_{'pos' if r['label'] == 1.0 else 'neg'}": r["count"]
            for r in out.groupBy("split", "label").count().orderBy("split", "label").collect()
        }
        facts["rows"] = sum(counts.values())
        facts.update(counts)
        if not counts:
            log.warning("training_pairs is empty: check jaccard thresholds and support guards")
    log.info(
        "output table %s: version %s, %s rows",
        tables.TRAINING_PAIRS,
        facts["version"],
        facts["rows"],
    )

    with step(f"compute and write {tables.COPROMOTED_PAIRS}") as facts:
        graded = configured_copromoted_pairs(written, anime, cfg)
        facts["version"] = write_table(
            graded, lake, tables.COPROMOTED_PAIRS, tables.COPROMOTED_PAIRS_SCHEMA
        )
        out = read_table(spark, lake, tables.COPROMOTED_PAIRS)
        facts.update({r["split"]: r["count"] for r in out.groupBy("split").count().collect()})
