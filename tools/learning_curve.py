"""Does customization help with more real users? A learning curve on a real-data lake.

For each number of training users (``--sizes``; 0 = all), a seeded subset of the lake's users
(nested: each size holds the smaller ones) gives the training signal: the promoter Jaccard of
their train ratings and the co-promoted pairs derived from it, computed with the jaccard
stage's own functions (``promoters``, ``pair_jaccard``, ``copromoted_pairs``) and the
config's ``jaccard`` settings. Each recipe of ``--recipes`` (named as in
:data:`tools.quality.VARIANTS`, with that run's settings) learns from those pairs: the vector
encoder recipes (``lora``, ``contrastive``) by fine-tuning ``finetune.base_model`` with the finetune
stage's pair choice and its fit (:func:`~anime_recs.training.encoder.fit_encoder`), then
embedding every title's description. Each recipe's content recommender is scored on the
lake's test users, the same users at every size, with the product's scoring
(:mod:`tools.offline_eval`). The held-out-title validation
measures are taken on the full lake's ``val`` co-promoted pairs (titles no size trains on),
also the same at every size: NDCG@3 of the held-out titles' content neighbourhoods (the
quantity the recommender uses) and the Spearman correlation of cosine vs graded Jaccard.

Writes ``<out>/learning_curve.md`` (a table) and ``<out>/learning_curve.png`` (a chart).

Usage::

    python -m tools.learning_curve --root build/quality/mal2016_combined \
        --sizes 1000,2500,5000,0 --recipes lora,contrastive \
        --out build/learning_curve
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from anime_recs.config import FinetuneConfig, load_config
from anime_recs.embeddings.text import normalise_text
from anime_recs.training.encoder import fit_encoder
from anime_recs.training.examples import PairSet
from anime_recs.training.finetune import encode_texts
from anime_recs.training.held_out import (
    listwise_examples,
    neighbourhood_ndcg,
    pair_cosines,
    pair_rows,
    spearman,
)
from anime_recs.training.pairs import choose_pair_positions, described_titles, with_texts
from anime_recs.training.recipes import train_settings
from tools.offline_eval import Lake, content_neighbors, evaluate, load_lake, markdown_table

REPO = Path(__file__).resolve().parents[1]


# the recipes a curve can train: their examples are the co-promoted pairs of the subset
CURVE_RECIPES = ("lora", "contrastive")


def recipe_config(conf: str, name: str) -> FinetuneConfig:
    """The ``finetune`` settings of the ``tools.quality`` run of recipe ``name`` (the
    pipeline's, with that run's ``finetune.*`` overrides)."""
    from tools.quality import VARIANTS

    overrides = [o for o in VARIANTS[name][1] if o.startswith("finetune.")]
    return load_config(conf, overrides).finetune


NS = (1, 5, 10)


def subset_pairs(spark, lake: Lake, anime, users: np.ndarray, jaccard) -> pd.DataFrame:
    """The train co-promoted pairs of the train ratings of ``users`` (the stage's rules)."""
    from anime_recs.similarity.stage import (
        configured_copromoted_pairs,
        configured_pair_jaccard,
        jaccard_mode,
        promoter_table,
    )

    r = lake.ratings
    rows = r[~r["is_test"] & r["user_id"].isin(users)]
    ratings = spark.createDataFrame(
        rows.assign(split="train")[["user_id", "anime_id", "rating", "split"]],
        "user_id int, anime_id int, rating int, split string",
    )
    table, promoter_pairs, n_blocks = promoter_table(ratings, jaccard.block_promoters)
    table = table.cache()
    mode = jaccard_mode(jaccard.mode, promoter_pairs, jaccard.broadcast_memory_gb)
    pairs, plan = configured_pair_jaccard(spark, table, n_blocks, mode, jaccard)
    pairs = pairs.cache()
    graded = configured_copromoted_pairs(pairs, anime, jaccard)
    out = graded.where("split = 'train'").toPandas()
    pairs.unpersist()
    table.unpersist()
    plan.release()
    return out


def row_index(ids: np.ndarray, pairs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs as row indexes of ``ids`` (pairs with a title without a vector dropped)."""
    return pair_rows(ids, pairs["anime_a"], pairs["anime_b"], pairs["jaccard"])


def fine_tuned_vectors(
    ft: FinetuneConfig,
    ids: np.ndarray,
    vectors: np.ndarray,
    descriptions: dict[int, str],
    pairs: pd.DataFrame,
) -> tuple[np.ndarray, int]:
    """The encoder recipe ``ft.recipe`` trained on ``pairs`` as the finetune stage trains it
    (pairs of described titles in (anime_a, anime_b) order, those inside the base vectors'
    content neighbourhoods, a seeded ``max_train_pairs``; the recipe's loop settings), and
    the unit vectors of every title of ``ids`` by the trained encoder (the embed stage's
    normalised descriptions); with the number of train pairs."""
    described = pairs["anime_a"].isin(ids) & pairs["anime_b"].isin(ids)
    chosen = pairs[described].sort_values(["anime_a", "anime_b"], kind="stable")
    pair_ids = list(zip(chosen["anime_a"].astype(int), chosen["anime_b"].astype(int), strict=True))
    labels = chosen["jaccard"].astype(float).tolist()
    keep, _ = choose_pair_positions(
        pair_ids, (ids, vectors), ft.content_neighbours, ft.max_train_pairs, ft.seed
    )
    train_pairs = with_texts([pair_ids[i] for i in keep], [labels[i] for i in keep], descriptions)
    # checkpoints only at epoch ends, into a folder that goes with the run
    settings = replace(train_settings(ft), checkpoint_steps=0)
    with tempfile.TemporaryDirectory(prefix="learning-curve-") as checkpoints:
        model = fit_encoder(ft, train_pairs, PairSet(), checkpoints, settings=settings).model
    texts = [normalise_text(descriptions[int(i)]) for i in ids]
    return np.asarray(encode_texts(model, texts, ft.batch_size), dtype=np.float32), len(train_pairs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--root", required=True, help="a tools.quality set folder")
    parser.add_argument("--sizes", default="1000,2500,5000,0")
    parser.add_argument(
        "--recipes",
        default="lora",
        help=f"comma-separated, of {','.join(CURVE_RECIPES)} (each costs CPU-minutes per size)",
    )
    parser.add_argument("--embedder", default="base_minilm_128")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--conf", default=str(REPO / "conf" / "quality.yaml"))
    parser.add_argument("--out", default=str(REPO / "build" / "learning_curve"))
    args = parser.parse_args(argv)
    recipes = args.recipes.split(",")
    unknown = sorted(set(recipes) - set(CURVE_RECIPES))
    if unknown:
        parser.error(f"unknown recipes {unknown}; expected some of {list(CURVE_RECIPES)}")

    from anime_recs import tables
    from anime_recs.lakehouse import read_table
    from anime_recs.spark import get_spark

    config = load_config(args.conf)
    root, out = Path(args.root), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lake = load_lake(root)
    ids, vectors = lake.vectors[args.embedder]
    k = config.recommend.k
    spark = get_spark(
        load_config(args.conf, ["spark.master=local[2]"]).spark, "ERROR", "learning-curve"
    )
    anime = read_table(spark, str(root / "lake"), tables.ANIME).cache()
    descriptions = {int(r["anime_id"]): r["description"] for r in described_titles(anime).collect()}

    val = lake.copromoted[lake.copromoted["split"] == tables.VAL]
    va, vb, vj = row_index(ids, val)
    configs = {name: recipe_config(args.conf, name) for name in recipes}
    val_lists = listwise_examples(vectors, va, vb, vj, config.finetune.validation_candidates)

    def ndcg(v: np.ndarray) -> float | None:
        return neighbourhood_ndcg(
            v,
            val_lists.first,
            val_lists.second,
            val_lists.gains,
            config.finetune.validation_k,
        )

    def rank_corr(v: np.ndarray) -> float | None:
        return spearman(pair_cosines(v, va, vb), vj)

    users = np.sort(lake.ratings["user_id"].unique())
    order = np.random.default_rng(args.seed).permutation(users)
    sizes = [int(s) or users.size for s in args.sizes.split(",")]
    neighbours = {"base": content_neighbors(ids, vectors, k)}
    rows = [
        {
            "users": 0,
            "recipe": "base",
            "train": 0,
            "ndcg3": ndcg(vectors),
            "spearman": rank_corr(vectors),
        }
    ]
    for size in sizes:
        started = time.perf_counter()
        pairs = subset_pairs(spark, lake, anime, order[:size], config.jaccard)
        for name, ft in configs.items():
            trained = time.perf_counter()
            customized, train_count = fine_tuned_vectors(ft, ids, vectors, descriptions, pairs)
            neighbours[f"{name}@{size}"] = content_neighbors(ids, customized, k)
            rows.append(
                {
                    "users": size,
                    "recipe": name,
                    "train": train_count,
                    "ndcg3": ndcg(customized),
                    "spearman": rank_corr(customized),
                    "train_s": round(time.perf_counter() - trained),
                }
            )
            print(f"{size} users, {name}: {rows[-1]}", flush=True)
        print(
            f"{size} users: {len(pairs)} train pairs, {time.perf_counter() - started:.0f}s",
            flush=True,
        )
    spark.stop()

    evaluation = evaluate(lake, neighbours, n_max=max(NS), k=k)
    table = pd.DataFrame(rows).astype({"train_s": "Int64"})
    for n in NS:
        at = evaluation[evaluation["n"] == n].set_index("recommender")
        names = [
            "base" if r.recipe == "base" else f"{r.recipe}@{r.users}" for r in table.itertuples()
        ]
        table[f"NPS@{n}"] = [at.loc[m, "nps"] for m in names]
        table[f"ci@{n}"] = [
            f"[{at.loc[m, 'nps_ci_low']:.3f}, {at.loc[m, 'nps_ci_high']:.3f}]" for m in names
        ]
        table[f"P@{n}"] = [at.loc[m, "precision"] for m in names]
    text = markdown_table(table)
    (out / "learning_curve.md").write_text(text + "\n")
    print(text)
    plot(table, out / "learning_curve.png")
    return 0


def plot(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = table[table["recipe"] == "base"].iloc[0]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, column in zip(axes, ("ndcg3", "NPS@10", "P@10"), strict=True):
        for recipe, rows in table[table["recipe"] != "base"].groupby("recipe"):
            ax.plot(rows["users"], rows[column], marker="o", label=recipe)
        ax.axhline(base[column], color="grey", linestyle="--", label="base encoder")
        ax.set_xscale("log")
        ax.set_xlabel("real training users")
        ax.set_title(column if column != "ndcg3" else "held-out-title NDCG@3")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
