"""The jaccard stage: the promoters of the train split as one row per title (``promoters``),
exact promoter Jaccard over all title pairs (``anime_pair_jaccard``), the case study's
labelled fine-tuning pairs (``training_pairs``) and the graded co-promoted pairs of the
contrastive recipe (``copromoted_pairs``), all overwritten.

The pair counts are a blocked sparse ``A^T A`` of the user x title promoter matrix, either
collected and broadcast (:mod:`anime_recs.similarity.jaccard`) or as title-block tiles on the
executors (:mod:`anime_recs.similarity.tiles`), by ``jaccard.mode``; labels, support guards,
negative sampling and the leak-free title-group split are :mod:`anime_recs.similarity.labels`;
the co-promoted pairs :mod:`anime_recs.similarity.copromoted`.
"""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame, SparkSession

from anime_recs import tables
from anime_recs.config import AppConfig, JaccardConfig
from anime_recs.lakehouse import read_table, table_version, write_table
from anime_recs.options import AUTO, BROADCAST, TILES
from anime_recs.runlog import StageRun
from anime_recs.similarity.copromoted import copromoted_pairs
from anime_recs.similarity.jaccard import PairJaccardPlan, broadcast_peak_bytes, pair_jaccard
from anime_recs.similarity.labels import training_pairs
from anime_recs.similarity.matrix import plan_title_blocks
from anime_recs.similarity.promoters import (
    pairs_of_lists,
    promoter_lists,
    promoters,
    title_promoter_counts,
)
from anime_recs.similarity.tiles import TilePlan, tile_pair_jaccard
from anime_recs.steps import step

log = logging.getLogger(__name__)


def jaccard_mode(mode: str, promoter_pairs: int, broadcast_memory_gb: float) -> str:
    """The formulation to run: ``mode`` itself unless ``auto``, which picks ``tiles`` when the
    broadcast design's estimated peak of one process (:func:`broadcast_peak_bytes`) exceeds
    ``broadcast_memory_gb`` GiB, else ``broadcast`` (faster while it fits)."""
    if mode != AUTO:
        return mode
    fits = broadcast_peak_bytes(promoter_pairs) <= broadcast_memory_gb * 2**30
    return BROADCAST if fits else TILES


def promoter_table(ratings: DataFrame, block_promoters: int) -> tuple[DataFrame, int, int]:
    """The ``promoters`` rows of ``ratings``' train split, titles cut into blocks of at most
    ``block_promoters`` promoter pairs; with the promoter pairs and the number of blocks."""
    pairs = promoters(ratings)
    anime_ids, counts = title_promoter_counts(pairs)
    bounds = plan_title_blocks(counts, block_promoters)
    first_ids = anime_ids[bounds[:-1]].tolist()
    return promoter_lists(pairs, first_ids), int(counts.sum()), len(bounds) - 1


def write_promoters(
    spark: SparkSession, ratings: DataFrame, lake: str, block_promoters: int
) -> tuple[int, int, int]:
    """Write :func:`promoter_table` of ``ratings``; return ``(version, promoter pairs,
    blocks)``."""
    table, promoter_pairs, n_blocks = promoter_table(ratings, block_promoters)
    version = write_table(
        table, lake, tables.PROMOTERS, tables.PROMOTERS_SCHEMA, partition_by=["title_block"]
    )
    return version, promoter_pairs, n_blocks


def configured_pair_jaccard(
    spark: SparkSession, promoter_table: DataFrame, n_blocks: int, mode: str, cfg: JaccardConfig
) -> tuple[DataFrame, PairJaccardPlan | TilePlan]:
    """The pairs of the ``promoters`` table rows ``promoter_table`` (``n_blocks`` title blocks)
    by ``mode`` (``broadcast`` or ``tiles``) with the ``jaccard`` settings."""
    if mode == TILES:
        return tile_pair_jaccard(
            spark,
            promoter_table,
            n_blocks=n_blocks,
            min_intersection=cfg.min_intersection,
            max_cells=cfg.max_block_cells,
            device=cfg.device,
        )
    return pair_jaccard(
        spark,
        pairs_of_lists(promoter_table),
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

    with step(f"compute and write {tables.PROMOTERS}") as facts:
        version, promoter_pairs, n_blocks = write_promoters(
            spark, ratings, lake, cfg.block_promoters
        )
        facts.update(version=version, promoter_pairs=promoter_pairs, title_blocks=n_blocks)

    with step(f"compute and write {tables.ANIME_PAIR_JACCARD}") as facts:
        mode = jaccard_mode(cfg.mode, promoter_pairs, cfg.broadcast_memory_gb)
        promoter_table = read_table(spark, lake, tables.PROMOTERS, version)
        pairs, plan = configured_pair_jaccard(spark, promoter_table, n_blocks, mode, cfg)
        facts["mode"] = mode
        if isinstance(plan, TilePlan):
            facts.update(blocks=plan.n_blocks, tiles=plan.n_tiles)
        else:
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
