"""How many title pairs pass the case-study label rule on generated data (a script, not a test).

Generates the ratings of the first ``--blocks`` user blocks in memory (no files), holds out a
random ``--held-out`` share of the ratings (like the test split), and counts the pairs with
promoter Jaccard >= 0.1 / 0.2 / 0.3 that pass the support guards (``jaccard.min_promoters`` and
``jaccard.min_positive_intersection`` of the config, scaled down by the share of users
generated). This is the measurement behind
``ModelParams.franchise_taste_sd`` and the threshold in ``conf/local.yaml``:

    .venv/bin/python -m benchmarks.label_yield --scale full --blocks 303 \\
        --set franchise_taste_sd=2.85
    .venv/bin/python -m benchmarks.label_yield --scale sample --blocks 1
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from anime_recs.config import load_config
from anime_recs.similarity.jaccard import block_pair_batches
from anime_recs.similarity.matrix import build_promoter_matrix, plan_blocks, title_costs
from anime_recs.tables import PROMOTER_MIN_RATING
from malgen import generate as g

THRESHOLDS = (0.1, 0.2, 0.3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(g.SCALES), default="full")
    parser.add_argument("--blocks", type=int, default=303, help="user blocks of 1,024 users")
    parser.add_argument("--held-out", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--set", dest="params", action="append", default=[], help="k=v")
    parser.add_argument("--conf", default="conf/local.yaml", help="config (jaccard settings)")
    args = parser.parse_args(argv)
    jc = load_config(args.conf).jaccard
    overrides = {k: float(v) for k, v in (p.split("=", 1) for p in args.params)}
    params = dataclasses.replace(g.ModelParams(), **overrides)
    scale = g.SCALES[args.scale]
    start = time.perf_counter()
    titles = g.build_titles(scale.titles, args.seed, params)
    users = g.build_users(scale.users, scale.ratings, titles, args.seed, params)
    sampler = g.RatingSampler(titles, users, args.seed, params)
    n_blocks = min(args.blocks, -(-scale.users // g.BLOCK_USERS))
    pilot = np.concatenate([sampler.block(b)[2] for b in range(min(g.PILOT_BLOCKS, n_blocks))])
    cuts = g.rating_cut_points(pilot)
    user_rows, title_rows = [], []
    for b in range(n_blocks):
        rows, tix, latent = sampler.block(b)
        rating = g.ratings_of(latent, cuts)
        promoted = rating >= PROMOTER_MIN_RATING
        keep = promoted & (np.random.default_rng(b).random(rating.size) >= args.held_out)
        user_rows.append(rows[keep])
        title_rows.append(tix[keep])
    matrix = build_promoter_matrix(np.concatenate(user_rows), np.concatenate(title_rows))
    share = min(1.0, n_blocks * g.BLOCK_USERS / scale.users)
    min_promoters = max(2, round(jc.min_promoters * share))
    min_intersection = max(2, round(jc.min_positive_intersection * share))
    passing = dict.fromkeys(THRESHOLDS, 0)
    bounds = plan_blocks(title_costs(matrix), 16)
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        for batch in block_pair_batches(matrix, int(lo), int(hi), 1, jc.max_block_cells):
            pa_, pb = batch.column("promoters_a").to_numpy(), batch.column("promoters_b").to_numpy()
            inter, jac = batch.column("intersection").to_numpy(), batch.column("jaccard").to_numpy()
            guarded = (pa_ >= min_promoters) & (pb >= min_promoters) & (inter >= min_intersection)
            for t in THRESHOLDS:
                passing[t] += int((guarded & (jac >= t)).sum())
    print(
        f"{args.scale} {n_blocks} blocks ({share:.0%} of users), params {overrides}, guards "
        f"{min_promoters}/{min_intersection}: pairs passing by threshold {passing} "
        f"({time.perf_counter() - start:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
