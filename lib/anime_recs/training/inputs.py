"""The finetune stage's inputs read from the lake: the train pairs of the recipe chosen by id
(inside the content neighbourhoods of the base encoder's stored vectors for the contrastive
recipes, a seeded ``finetune.max_train_pairs`` of them), only then their descriptions; the
graded validation pairs; and the stored vectors the recipe reads (``anime_embeddings`` rows of
one embedder), with their content digest for the stage's fingerprint.
"""

from __future__ import annotations

import logging

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from anime_recs import tables
from anime_recs.config import AppConfig
from anime_recs.errors import JobError
from anime_recs.lakehouse import frame_digest, read_table, table_version
from anime_recs.steps import step
from anime_recs.training.examples import PairSet
from anime_recs.training.pairs import (
    choose_pair_positions,
    collect_pair_labels,
    collect_pair_sets,
    described_titles,
    pair_ids,
    pair_texts,
    sample_pair_rows,
    with_texts,
)
from anime_recs.training.recipes import RECIPES

log = logging.getLogger(__name__)


def graded(pairs: DataFrame) -> DataFrame:
    """``copromoted_pairs`` as labelled pairs: the label is the pair's Jaccard."""
    return pairs.withColumn("label", F.col("jaccard"))


def read_train_candidates(
    spark: SparkSession, lake: str, recipe: str, versions: dict[str, int | None]
) -> tuple[list[tuple[int, int]], list[float]]:
    """The ids and labels of the recipe's train pairs whose two titles are described; no
    texts (:func:`read_descriptions` fetches them for the pairs kept)."""
    anime = read_table(spark, lake, tables.ANIME, versions[tables.ANIME])
    table = RECIPES[recipe].pairs_table
    examples = read_table(spark, lake, table, versions[table])
    if table == tables.COPROMOTED_PAIRS:
        examples = graded(examples)
    return collect_pair_labels(pair_ids(examples.where(F.col("split") == tables.TRAIN), anime))


def read_val_pairs(
    spark: SparkSession,
    lake: str,
    versions: dict[str, int | None],
    max_val_pairs: int,
    seed: int,
) -> PairSet:
    """The graded validation pairs with both descriptions: at most ``max_val_pairs``, a seeded
    sample taken in Spark (:func:`~anime_recs.training.pairs.sample_pair_rows`)."""
    anime = read_table(spark, lake, tables.ANIME, versions[tables.ANIME])
    copromoted = graded(
        read_table(spark, lake, tables.COPROMOTED_PAIRS, versions[tables.COPROMOTED_PAIRS])
    )
    val = pair_texts(copromoted.where(F.col("split") == tables.VAL), anime)
    return collect_pair_sets(sample_pair_rows(val, max_val_pairs, seed))[tables.VAL]


def read_descriptions(
    spark: SparkSession, lake: str, version: int | None, titles: set[int]
) -> dict[int, str]:
    """``{anime_id: description}`` of ``titles`` (each described)."""
    wanted = spark.createDataFrame([(t,) for t in sorted(titles)], "anime_id int")
    anime = read_table(spark, lake, tables.ANIME, version)
    rows = described_titles(anime).join(wanted, "anime_id", "left_semi").collect()
    return {int(r["anime_id"]): r["description"] for r in rows}


def neighbourhood_embedder(config: AppConfig) -> str | None:
    """The embedder whose vectors define the content neighbourhoods of the train pairs, or
    None when this config keeps every pair (a recipe without them, or ``content_neighbours``
    0). It must embed with ``finetune.base_model`` and not be the fine-tuned model itself."""
    ft = config.finetune
    recipe = RECIPES[ft.recipe]
    if recipe.pairs_table != tables.COPROMOTED_PAIRS or ft.content_neighbours <= 0:
        return None
    name = ft.content_neighbours_embedder
    embedder = config.embed.embedders[name]
    kind = getattr(embedder, "kind", None)
    if kind != "sentence-transformers" or embedder.model != ft.base_model:
        raise JobError(
            f"finetune.content_neighbours_embedder: {name} must be a sentence-transformers "
            f"embedder of finetune.base_model {ft.base_model!r}, got {embedder.model!r}"
        )
    return name


def vectors_input(embedder: str) -> str:
    """The name of ``embedder``'s rows of ``anime_embeddings`` among the stage's inputs."""
    return f"{tables.ANIME_EMBEDDINGS}[{embedder}]"


def vectors_embedder(config: AppConfig) -> tuple[str, str] | None:
    """``(embedder, config key)`` of the stored vectors the recipe reads: the contrastive
    recipe's neighbourhood embedder; None when it reads none."""
    name = neighbourhood_embedder(config)
    return None if name is None else (name, "finetune.content_neighbours_embedder")


def embedder_vectors(
    spark: SparkSession, lake: str, embedder: str, key: str
) -> tuple[DataFrame, str]:
    """``(rows, content digest)`` of ``embedder``'s rows in the current version of
    ``anime_embeddings`` (pinned, so the digest and the reads see the same rows); a one-line
    error naming the config ``key`` when it has none. The digest is the one action: its row
    count tells empty."""
    version = table_version(spark, lake, tables.ANIME_EMBEDDINGS)
    rows, digest = None, "0:0"
    if version is not None:
        embeddings = read_table(spark, lake, tables.ANIME_EMBEDDINGS, version)
        rows = embeddings.where(F.col("embedder") == embedder)
        digest = frame_digest(rows)
    if rows is None or digest.startswith("0:"):
        raise JobError(
            f"{tables.ANIME_EMBEDDINGS} has no vectors of {embedder} ({key}) under "
            f"{lake}: run the embed_base stage with it first"
        )
    return rows, digest


def choose_train_pairs(
    spark: SparkSession,
    config: AppConfig,
    versions: dict[str, int | None],
    vectors: DataFrame | None,
) -> tuple[PairSet, dict[str, int]]:
    """The pairs to train on and their counts: the recipe's train candidates, those inside
    the content neighbourhoods of ``vectors`` (None: all), a seeded ``max_train_pairs`` of
    them; only then are the chosen pairs' descriptions read."""
    ft, lake = config.finetune, config.paths.lake
    ids, labels = read_train_candidates(spark, lake, ft.recipe, versions)
    neighbourhood = None
    if vectors is not None and ids:
        titles = sorted({t for pair in ids for t in pair})
        wanted = spark.createDataFrame([(t,) for t in titles], "anime_id int")
        frame = vectors.join(wanted, "anime_id", "left_semi").select("anime_id", "embedding")
        frame = frame.toPandas()
        anime_ids = frame["anime_id"].to_numpy(dtype=np.int64)
        matrix = np.stack(frame["embedding"].to_numpy()) if len(frame) else np.zeros((0, 1))
        neighbourhood = (anime_ids, matrix)
    chosen, available = choose_pair_positions(
        ids, neighbourhood, ft.content_neighbours, ft.max_train_pairs, ft.seed
    )
    ids = [ids[i] for i in chosen]
    texts = read_descriptions(spark, lake, versions[tables.ANIME], {t for p in ids for t in p})
    counts = {"candidates": len(labels), "train_available": available}
    return with_texts(ids, [labels[i] for i in chosen], texts), counts


def read_pairs(
    spark: SparkSession,
    config: AppConfig,
    versions: dict[str, int | None],
    vectors: DataFrame | None,
) -> tuple[PairSet, PairSet, dict[str, int]]:
    """The pairs of an encoder recipe's run: the chosen train pairs (:func:`choose_train_pairs`),
    the validation pairs (:func:`read_val_pairs`) and the train pairs' counts. Raises
    :class:`JobError` when no train pair has two descriptions."""
    ft, lake = config.finetune, config.paths.lake
    with step("read inputs") as facts:
        train_pairs, counts = choose_train_pairs(spark, config, versions, vectors)
        val_pairs = read_val_pairs(spark, lake, versions, ft.max_val_pairs, ft.seed)
        facts.update(
            inputs=versions,
            recipe=ft.recipe,
            neighbourhoods=neighbourhood_embedder(config),
            **counts,
            train_pairs=len(train_pairs),
            val_pairs=len(val_pairs),
        )
    if len(train_pairs) == 0:
        raise JobError(
            f"{RECIPES[ft.recipe].pairs_table} has no train pair with two descriptions: "
            "nothing to learn"
        )
    if len(val_pairs) == 0:
        log.warning("no val pairs: validation Spearman will not be computed")
    return train_pairs, val_pairs, counts


def collect_vectors(rows: DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(anime ids ascending, [titles, dim] float32)`` of one embedder's rows."""
    frame = rows.select("anime_id", "embedding").orderBy("anime_id").toPandas()
    ids = frame["anime_id"].to_numpy(np.int64)
    if not len(frame):
        return ids, np.zeros((0, 0), np.float32)
    return ids, np.stack(frame["embedding"].to_numpy()).astype(np.float32)


def collect_pairs(pairs: DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(anime_a, anime_b, jaccard)`` arrays of graded pairs, ordered by the pair."""
    frame = pairs.select("anime_a", "anime_b", "jaccard").orderBy("anime_a", "anime_b").toPandas()
    return (
        frame["anime_a"].to_numpy(np.int64),
        frame["anime_b"].to_numpy(np.int64),
        frame["jaccard"].to_numpy(np.float64),
    )
