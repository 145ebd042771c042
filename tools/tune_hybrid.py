"""Choose the hybrid's fusion weights on validation users of a real-data lake.

The test users of a ``tools.quality`` lake are split by a seeded draw into validation users
(``--val-fraction``) and the rest. On the validation users every setting of the grid
(``weight_cf`` x ``prior_weight``; fusion ``score``, ``depth`` and ``prior_strength`` as
given) is scored against ``jaccard_cf`` with the product's scoring (:mod:`tools.offline_eval`).
Rule: among the settings whose precision@N is at or above ``jaccard_cf``'s at every
N = 1..n_max, the one with the largest summed NPS@N difference to ``jaccard_cf`` (no setting
qualifies: the largest summed precision difference). The chosen setting and the current
config's are then reported on the other users, which took no part in the choice.

Usage::

    python -m tools.tune_hybrid --root build/quality/mal2016_combined \
        --content base_minilm_128 [--weights 0.8,0.9,0.95] [--priors 0,0.05,0.1,0.15,0.2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from anime_recs.recommend.fusion import TitlePrior, title_priors_of_counts
from anime_recs.recommend.hybrid import hybrid_neighbors
from anime_recs.tables import DETRACTOR_MAX_RATING, PROMOTER_MIN_RATING
from tools.offline_eval import (
    Lake,
    content_neighbors,
    evaluate,
    jaccard_cf_neighbors,
    load_lake,
    side_by_side,
)


def lake_prior(lake: Lake, strength: float) -> TitlePrior:
    """The title prior of the lake's train ratings (as ``popularity.title_priors``)."""
    train = lake.ratings[~lake.ratings["is_test"]]
    stats = (
        train.assign(
            promoter=(train["rating"] >= PROMOTER_MIN_RATING).astype(np.int64),
            detractor=(train["rating"] <= DETRACTOR_MAX_RATING).astype(np.int64),
        )
        .groupby("anime_id")
        .agg(
            promoters=("promoter", "sum"),
            detractors=("detractor", "sum"),
            raters=("rating", "size"),
        )
        .reset_index()
        .sort_values("anime_id")
    )
    return title_priors_of_counts(
        stats["anime_id"].to_numpy(),
        stats["promoters"].to_numpy(),
        stats["detractors"].to_numpy(),
        stats["raters"].to_numpy(),
        strength,
    )


def split_users(lake: Lake, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    users = np.sort(lake.ratings["user_id"].unique())
    rng = np.random.default_rng(seed)
    chosen = np.zeros(users.size, dtype=bool)
    chosen[rng.choice(users.size, int(round(users.size * fraction)), replace=False)] = True
    return users[chosen], users[~chosen]


def gaps(evaluation: pd.DataFrame, name: str) -> tuple[float, float, bool]:
    """(summed NPS@N difference, summed precision@N difference, precision at or above at
    every N) of recommender ``name`` against ``jaccard_cf``."""
    mine = evaluation[evaluation["recommender"] == name].set_index("n")
    cf = evaluation[evaluation["recommender"] == "jaccard_cf"].set_index("n")
    nps = float((mine["nps"] - cf["nps"]).sum())
    precision = mine["precision"] - cf["precision"]
    return nps, float(precision.sum()), bool((precision >= 0).all())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--root", required=True, help="a tools.quality set folder")
    parser.add_argument("--content", default="base_minilm_128")
    parser.add_argument("--weights", default="0.8,0.9,0.95")
    parser.add_argument("--priors", default="0,0.05,0.1,0.15,0.2")
    parser.add_argument("--strength", type=float, default=10.0)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--current", default="0.9,0", help="weight_cf,prior_weight to compare")
    parser.add_argument("--val-fraction", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)

    lake = load_lake(Path(args.root))
    ids, vectors = lake.vectors[args.content]
    cf = jaccard_cf_neighbors(lake.jaccard, args.depth)
    content = content_neighbors(ids, vectors, args.depth)
    prior = lake_prior(lake, args.strength)
    val_users, other_users = split_users(lake, args.val_fraction, args.seed)

    def hybrid(weight: float, prior_weight: float) -> pd.DataFrame:
        return hybrid_neighbors(
            cf, content, args.k, "score", weight, 60, prior=prior, prior_weight=prior_weight
        )

    grid = [(float(w), float(p)) for w in args.weights.split(",") for p in args.priors.split(",")]
    neighbours = {"jaccard_cf": cf[cf["rank"] <= args.k]}
    neighbours.update({f"w{w}_p{p}": hybrid(w, p) for w, p in grid})
    val = evaluate(lake, neighbours, bootstrap_samples=0, k=args.k, users=val_users)
    rows = []
    for w, p in grid:
        nps, precision, qualifies = gaps(val, f"w{w}_p{p}")
        rows.append((w, p, nps, precision, qualifies))
    table = pd.DataFrame(rows, columns=["weight_cf", "prior_weight", "nps_gap", "p_gap", "ok"])
    print(f"validation users: {val_users.size:,}; summed gaps to jaccard_cf over N = 1..10")
    print(table.round(4).to_string(index=False))
    pool = table[table["ok"]] if table["ok"].any() else table
    key = "nps_gap" if table["ok"].any() else "p_gap"
    best = pool.sort_values([key, "weight_cf", "prior_weight"], ascending=False).iloc[0]
    chosen = (float(best["weight_cf"]), float(best["prior_weight"]))
    current = tuple(float(x) for x in args.current.split(","))
    print(f"chosen on validation users: weight_cf={chosen[0]} prior_weight={chosen[1]}")

    report = {"jaccard_cf": neighbours["jaccard_cf"]}
    report[f"hybrid (current {current[0]}, {current[1]})"] = hybrid(*current)
    report[f"hybrid (chosen {chosen[0]}, {chosen[1]})"] = hybrid(*chosen)
    held_out = evaluate(lake, report, k=args.k, users=other_users)
    print(f"\nthe other {other_users.size:,} users (not used to choose):")
    print(side_by_side(held_out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
