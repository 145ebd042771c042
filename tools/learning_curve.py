"""Does customization help with more real users? A learning curve on a real-data lake.

For each number of training users (``--sizes``; 0 = all), a seeded subset of the lake's users
(nested: each size holds the smaller ones) gives the training signal: the promoter Jaccard of
their train ratings and the co-promoted pairs derived from it, computed with the jaccard
stage's own functions (``promoters``, ``pair_jaccard``, ``copromoted_pairs``) and the
config's ``jaccard`` settings. A vector adapter (:mod:`anime_recs.training.adapter`) is
trained on the base embedder's vectors with each objective, and the adapted vectors' content
recommender is scored on the lake's test users, the same users at every size, with the
product's scoring (:mod:`tools.offline_eval`). The held-out-title validation measures are
taken on the full lake's ``val`` co-promoted pairs (titles no size trains on), also the same
at every size: NDCG@3 of the held-out titles' content neighbourhoods (the quantity the
recommender uses) and the Spearman correlation of cosine vs graded Jaccard.

Writes ``<out>/learning_curve.md`` (a table) and ``<out>/learning_curve.png`` (a chart).

Usage::

    python -m tools.learning_curve --root build/quality/mal2016_combined \
        --sizes 1000,2500,5000,0 --out build/learning_curve
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from anime_recs.config import load_config
from anime_recs.embeddings.adapted import adapt
from anime_recs.training.adapter import (
    AdapterSettings,
    TrainExamples,
    listwise_examples,
    neighbourhood_ndcg,
    pair_cosines,
    pair_rows,
    spearman,
    train_adapter,
)
from anime_recs.training.adapter_recipe import settings_of
from tools.offline_eval import Lake, content_neighbors, evaluate, load_lake, markdown_table

REPO = Path(__file__).resolve().parents[1]


def objective_settings(conf: str) -> dict[str, tuple[AdapterSettings, int]]:
    """Per objective, the adapter settings of its ``tools.quality`` recipe run (the pipeline's
    ``finetune.adapter`` with that run's overrides) and its neighbourhood size."""
    from tools.quality import VARIANTS

    out = {}
    for name in ("adapter_listwise", "adapter_in_batch"):
        overrides = [o for o in VARIANTS[name][1] if o.startswith("finetune.adapter.")]
        ft = load_config(conf, overrides).finetune
        out[ft.adapter.objective] = (settings_of(ft.adapter, ft.seed), ft.adapter.candidates)
    return out


NS = (1, 5, 10)


def subset_pairs(spark, lake: Lake, anime, users: np.ndarray, jaccard) -> pd.DataFrame:
    """The train co-promoted pairs of the train ratings of ``users`` (the stage's rules)."""
    from anime_recs.similarity.stage import (
        configured_copromoted_pairs,
        configured_pair_jaccard,
    )

    r = lake.ratings
    rows = r[~r["is_test"] & r["user_id"].isin(users)]
    ratings = spark.createDataFrame(
        rows.assign(split="train")[["user_id", "anime_id", "rating", "split"]],
        "user_id int, anime_id int, rating int, split string",
    )
    pairs, plan = configured_pair_jaccard(spark, ratings, jaccard)
    pairs = pairs.cache()
    graded = configured_copromoted_pairs(pairs, anime, jaccard)
    out = graded.where("split = 'train'").toPandas()
    pairs.unpersist()
    plan.release()
    return out


def row_index(ids: np.ndarray, pairs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs as row indexes of ``ids`` (pairs with a title without a vector dropped)."""
    return pair_rows(ids, pairs["anime_a"], pairs["anime_b"], pairs["jaccard"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--root", required=True, help="a tools.quality set folder")
    parser.add_argument("--sizes", default="1000,2500,5000,0")
    parser.add_argument("--embedder", default="base_minilm_128")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--conf", default=str(REPO / "conf" / "local.yaml"))
    parser.add_argument("--out", default=str(REPO / "build" / "learning_curve"))
    args = parser.parse_args(argv)

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

    val = lake.copromoted[lake.copromoted["split"] == tables.VAL]
    va, vb, vj = row_index(ids, val)
    settings_by_objective = objective_settings(args.conf)
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
            "objective": "base",
            "train": 0,
            "ndcg3": ndcg(vectors),
            "spearman": rank_corr(vectors),
        }
    ]
    for size in sizes:
        started = time.perf_counter()
        pairs = subset_pairs(spark, lake, anime, order[:size], config.jaccard)
        ta, tb, tj = row_index(ids, pairs)
        for objective, (settings, candidates) in settings_by_objective.items():
            if objective == "in_batch":
                examples = TrainExamples.pairs(ta, tb)
                measure = rank_corr
            else:
                examples = listwise_examples(vectors, ta, tb, tj, candidates)
                measure = ndcg
            result = train_adapter(vectors, examples, measure, settings)
            adapted = adapt(vectors, result.a, result.b)
            name = f"{objective}@{size}"
            neighbours[name] = content_neighbors(ids, adapted, k)
            rows.append(
                {
                    "users": size,
                    "objective": objective,
                    "train": len(examples),
                    "ndcg3": ndcg(adapted),
                    "spearman": rank_corr(adapted),
                    "best_epoch": result.best_epoch,
                }
            )
        print(
            f"{size} users: {len(pairs)} train pairs, {time.perf_counter() - started:.0f}s",
            flush=True,
        )
    spark.stop()

    evaluation = evaluate(lake, neighbours, n_max=max(NS), k=k)
    table = pd.DataFrame(rows)
    for n in NS:
        at = evaluation[evaluation["n"] == n].set_index("recommender")
        names = [
            "base" if r.objective == "base" else f"{r.objective}@{r.users}"
            for r in table.itertuples()
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

    base = table[table["objective"] == "base"].iloc[0]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, column in zip(axes, ("ndcg3", "NPS@10", "P@10"), strict=True):
        for objective, rows in table[table["objective"] != "base"].groupby("objective"):
            ax.plot(rows["users"], rows[column], marker="o", label=f"adapter ({objective})")
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
