"""Offline evaluation on a real-data lake: the recommend stage's scoring without the stage.

The experiments of the quality work (the learning curve)
score many variants of one recommender on the same users. Rerunning the ``recommend`` stage
for each costs minutes of Spark; this module loads what the stage reads from a lake once
(ratings, vectors, promoter-Jaccard pairs) into numpy, cached beside the lake, and scores
neighbour lists with the product's own functions: :func:`~anime_recs.recommend.scoring.
score_chunk` (the same code the stage runs per chunk of users) and
:func:`~anime_recs.evaluation.evaluate.evaluation_table` (metrics and bootstrap CIs). So a
figure from here equals the stage's for the same neighbours and settings.

Development tooling: nothing in the product imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from anime_recs.evaluation.evaluate import evaluation_table
from anime_recs.recommend.neighbors import cosine_neighbors, neighbor_frame, topk_by_key
from anime_recs.recommend.scoring import build_model, score_chunk
from anime_recs.tables import ALL

CONF = str(Path(__file__).resolve().parents[1] / "conf" / "local.yaml")

CACHE = "offline_cache"


@dataclass
class Lake:
    """A real-data lake in memory: every rating (``is_test`` = test split), each title's train
    promoters, the vectors of each embedder, the promoter-Jaccard pairs and the copromoted
    pairs."""

    ratings: pd.DataFrame  # user_id, anime_id, rating, is_test (sorted by user_id)
    promoters: pd.DataFrame  # anime_id, promoters: recommend.popularity.promoter_counts
    vectors: dict[str, tuple[np.ndarray, np.ndarray]]  # embedder -> (anime_ids, [n, dim])
    jaccard: pd.DataFrame  # anime_a, anime_b, promoters_a, promoters_b, intersection, jaccard
    copromoted: pd.DataFrame  # anime_a, anime_b, jaccard, intersection, split


def load_lake(root: Path) -> Lake:
    """The lake under ``root/lake`` (a ``tools.quality`` set folder), cached as Parquet and
    ``.npz`` in ``root/offline_cache`` (delete it after rerunning a stage)."""
    cache = root / CACHE
    if not (cache / "promoters.parquet").is_file():
        _write_cache(root, cache)
    vectors = {}
    for path in sorted(cache.glob("vectors_*.npz")):
        data = np.load(path)
        vectors[path.stem.removeprefix("vectors_")] = (data["anime_ids"], data["vectors"])
    return Lake(
        ratings=pd.read_parquet(cache / "ratings.parquet"),
        promoters=pd.read_parquet(cache / "promoters.parquet"),
        vectors=vectors,
        jaccard=pd.read_parquet(cache / "jaccard.parquet"),
        copromoted=pd.read_parquet(cache / "copromoted.parquet"),
    )


def _write_cache(root: Path, cache: Path) -> None:
    from pyspark.sql import functions as F

    from anime_recs import tables
    from anime_recs.config import load_config
    from anime_recs.lakehouse import read_table
    from anime_recs.recommend.popularity import promoter_counts
    from anime_recs.spark import get_spark

    settings = load_config(CONF, ["spark.master=local[2]"]).spark
    spark = get_spark(settings, "ERROR", "offline-eval")
    lake = str(root / "lake")
    cache.mkdir(parents=True, exist_ok=True)
    ratings = (
        read_table(spark, lake, tables.RATINGS)
        .select("user_id", "anime_id", "rating", (F.col("split") == tables.TEST).alias("is_test"))
        .toPandas()
        .sort_values(["user_id", "anime_id"], kind="stable")
        .reset_index(drop=True)
    )
    ratings.to_parquet(cache / "ratings.parquet")
    promoter_counts(read_table(spark, lake, tables.RATINGS)).toPandas().to_parquet(
        cache / "promoters.parquet"
    )
    read_table(spark, lake, tables.ANIME_PAIR_JACCARD).toPandas().to_parquet(
        cache / "jaccard.parquet"
    )
    read_table(spark, lake, tables.COPROMOTED_PAIRS).toPandas().to_parquet(
        cache / "copromoted.parquet"
    )
    embeddings = read_table(spark, lake, tables.ANIME_EMBEDDINGS)
    for (name,) in embeddings.select("embedder").distinct().collect():
        rows = embeddings.where(F.col("embedder") == name).select("anime_id", "embedding")
        pdf = rows.toPandas().sort_values("anime_id")
        np.savez(
            cache / f"vectors_{name}.npz",
            anime_ids=pdf["anime_id"].to_numpy(np.int64),
            vectors=np.stack(pdf["embedding"].to_numpy()).astype(np.float32),
        )
    spark.stop()


def jaccard_cf_neighbors(pairs: pd.DataFrame, k: int) -> pd.DataFrame:
    """Top-``k`` promoter-Jaccard neighbours of every title (the ``jaccard_cf`` recommender's
    rule, :func:`~anime_recs.recommend.neighbors.jaccard_neighbors`, on a pandas frame)."""
    a = pairs["anime_a"].to_numpy(np.int64)
    b = pairs["anime_b"].to_numpy(np.int64)
    j = pairs["jaccard"].to_numpy(np.float64)
    keys, nbrs, sims, rank = topk_by_key(np.r_[a, b], np.r_[b, a], np.r_[j, j], k)
    return neighbor_frame(
        pd.DataFrame({"anime_id": keys, "neighbor_id": nbrs, "rank": rank, "similarity": sims})
    )


def content_neighbors(ids: np.ndarray, vectors: np.ndarray, k: int) -> pd.DataFrame:
    return cosine_neighbors(ids, vectors, k)


def score_lists(
    lake: Lake,
    neighbors: dict[str, pd.DataFrame],
    k: int = 3,
    n_max: int = 10,
    frequency_bonus: float = 0.05,
    users: np.ndarray | None = None,
) -> pd.DataFrame:
    """Every test user's list per recommender (``neighbors`` keys, plus ``popularity`` when
    named with an empty frame), flattened like ``evaluate.flat_lists``; ``users`` restricts
    the scored users (sorted ids)."""
    lists = [(name, ALL) for name in neighbors]
    frames = {(n, ALL): f for n, f in neighbors.items() if n != "popularity"}
    model = build_model(lists, frames, lake.promoters, k)
    r = lake.ratings
    if users is not None:
        r = r[r["user_id"].isin(users)]
    table = score_chunk(
        r["user_id"].to_numpy(np.int32),
        r["anime_id"].to_numpy(np.int32),
        r["rating"].to_numpy(np.int32),
        r["is_test"].to_numpy(bool),
        model,
        k,
        n_max,
        frequency_bonus,
    ).to_pandas()
    flat = table[["recommender", "view", "user_id", "promoted_test"]].copy()
    for col, prefix, fill in (("anime_ids", "a", -1), ("test_ratings", "t", 0)):
        padded = np.full((len(table), n_max), fill, dtype=np.int64)
        for i, values in enumerate(table[col]):
            padded[i, : len(values)] = values
        for p in range(n_max):
            flat[f"{prefix}{p}"] = padded[:, p]
    return flat


def evaluate(
    lake: Lake,
    neighbors: dict[str, pd.DataFrame],
    n_max: int = 10,
    bootstrap_samples: int = 1000,
    seed: int = 11,
    **scoring,
) -> pd.DataFrame:
    """The ``evaluation`` rows of the lists as made (view ``all``: metrics and CIs per
    recommender and N) of ``neighbors``."""
    flat = score_lists(lake, neighbors, n_max=n_max, **scoring)
    no_cold = np.zeros(0, dtype=np.int64)
    return evaluation_table(flat, n_max, {ALL: list(neighbors)}, no_cold, bootstrap_samples, seed)


def side_by_side(evaluation: pd.DataFrame, ns: tuple[int, ...] = (1, 3, 5, 10)) -> str:
    """A markdown table: NPS@N [CI] and precision@N per recommender."""
    head = ["recommender"]
    head += [f"NPS@{n}" for n in ns] + [f"P@{n}" for n in ns]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for name, rows in evaluation.groupby("recommender", sort=False):
        rows = rows.set_index("n")
        cells = [name]
        cells += [
            f"{rows.nps[n]:.3f} [{rows.nps_ci_low[n]:.3f}, {rows.nps_ci_high[n]:.3f}]" for n in ns
        ]
        cells += [f"{rows.precision[n]:.4f}" for n in ns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_table(frame: pd.DataFrame, digits: int = 4) -> str:
    """A markdown table of ``frame`` (floats to ``digits`` decimals, missing values empty)."""

    def cell(value) -> str:
        if value is None or value is pd.NA:
            return ""
        if isinstance(value, float | np.floating):
            return "" if np.isnan(value) else f"{value:.{digits}f}"
        return str(value)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |"]
    lines.append("|" + "---|" * len(frame.columns))
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines)
