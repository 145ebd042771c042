"""Choose the recommenders' settings on a validation carve of the train split, never on test.

On a lake of a real rating set (a ``tools.quality`` set folder), the train ratings are split
once more exactly as ingest splits all ratings: the newest ``ingest.cold_title_fraction`` of
the titles rated in train become the validation's cold titles (every train rating of them is a
validation rating) and a seeded ``ingest.test_fraction`` of the other train ratings too
(:func:`validation_carve`). Every recommender is fitted on the rest with the product's own
functions (``recommend.fitting.recommender_models``, the jaccard stage's promoter Jaccard, the
peers' fits) and scored with the product's scoring and evaluation (one ``score_users`` pass,
``evaluation_table``) against the validation ratings:

- ``ease`` over ``--ease-l2``; ``als`` over ``--als-rank`` x ``--als-reg`` x ``--als-alpha``;
  each with ``jaccard_cf`` beside it, by the mean of the warm precision@N over N = 1..n_max;
- ``hybrid`` over ``--cold-slots`` x ``--min-similarity`` on the chosen collaborative side,
  by the mean precision@N of its lists as made (warm and cold hits together).

Every candidate is logged as an MLflow run (experiment ``tuning`` of the set's store); the
table and the chosen settings are printed, to be written into ``conf/base.yaml`` by hand.

Usage::

    python -m tools.tune --root build/quality/mal2016_combined
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
CONF = str(REPO / "conf" / "quality.yaml")  # as make quality, which made the lake


def validation_carve(train, anime, test_fraction: float, seed: int, cold_fraction: float):
    """The train ratings split again as ingest splits all ratings (``split`` relabelled
    ``train`` = fit, ``test`` = validation), with its validation cold titles."""
    from anime_recs.data.split import assign_split, newest_titles, start_month

    rated = [r[0] for r in train.select("anime_id").distinct().collect()]
    starts = {
        r.anime_id: start_month(r.aired, r.premiered)
        for r in anime.select("anime_id", "aired", "premiered").collect()
    }
    cold = newest_titles(starts, rated, cold_fraction)
    carve = train.select("user_id", "anime_id", "rating").transform(
        assign_split, test_fraction, seed, cold
    )
    return carve, cold


def mean_precision(evaluation: pd.DataFrame, view: str) -> pd.Series:
    rows = evaluation[evaluation["view"] == view]
    return rows.groupby("recommender")["precision"].mean()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--root", required=True, help="a tools.quality set folder")
    parser.add_argument("--conf", default=CONF)
    parser.add_argument("--ease-l2", type=float, nargs="+", default=[50, 200, 500, 1000, 2000])
    parser.add_argument("--als-rank", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--als-reg", type=float, nargs="+", default=[0.1, 1.0])
    parser.add_argument("--als-alpha", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument(
        "--cold-slots", nargs="+", default=["", "10", "5,10", "3,6,9", "2,4,6,8,10"]
    )
    parser.add_argument("--min-similarity", type=float, nargs="+", default=[0.4, 0.5, 0.6, 0.7])
    args = parser.parse_args(argv)

    import mlflow
    from pyspark.sql import functions as F

    from anime_recs import tables
    from anime_recs.config import load_config
    from anime_recs.evaluation.evaluate import evaluation_table, flat_lists
    from anime_recs.lakehouse import read_table
    from anime_recs.recommend.fitting import recommender_models
    from anime_recs.recommend.peers import fit_als, fit_ease
    from anime_recs.recommend.popularity import promoter_counts
    from anime_recs.recommend.registry import REGISTRY, embedder
    from anime_recs.recommend.scoring import HybridParts, build_model, score_users
    from anime_recs.similarity.stage import configured_pair_jaccard, promoter_table
    from anime_recs.spark import get_spark
    from anime_recs.tables import ALL, COLD, JACCARD_CF, TRAIN, WARM

    root = Path(args.root).resolve()
    config = load_config(
        args.conf,
        [f"paths.lake={root / 'lake'}", f"mlflow.tracking_uri=sqlite:///{root / 'mlruns.db'}"],
    )
    rc, ic = config.recommend, config.ingest
    spark = get_spark(config.spark, "WARN", "tune")
    lake = config.paths.lake
    train = read_table(spark, lake, tables.RATINGS).filter(F.col("split") == TRAIN)
    anime = read_table(spark, lake, tables.ANIME)
    carve, cold = validation_carve(
        train, anime, ic.test_fraction, ic.split_seed + 1, ic.cold_title_fraction
    )
    carve = carve.cache()
    fit = carve.filter(F.col("split") == TRAIN)
    promoters = promoter_counts(carve).toPandas()
    warm = np.sort(promoters["anime_id"].to_numpy(np.int64))
    print(f"validation carve: {len(cold)} cold titles, {warm.size} warm titles", flush=True)

    table, _, blocks = promoter_table(fit, config.jaccard.block_promoters)
    pairs, _ = configured_pair_jaccard(spark, table, blocks, "broadcast", config.jaccard)
    embeddings = read_table(spark, lake, tables.ANIME_EMBEDDINGS)
    content = rc.hybrid.content

    def vectors_of(name: str) -> pd.DataFrame:
        rows = embeddings.filter(F.col("embedder") == name)
        return rows.select("anime_id", "embedding").toPandas()

    fitted = [REGISTRY[JACCARD_CF], embedder(content)]
    views, _ = recommender_models(fitted, rc, warm, fit, pairs, vectors_of)
    dense = {}
    for l2 in args.ease_l2:
        dense[f"ease(l2={l2:g})"] = fit_ease(fit, l2, rc.ease.max_titles)
    for rank, reg, alpha in itertools.product(args.als_rank, args.als_reg, args.als_alpha):
        name = f"als(rank={rank},reg={reg:g},alpha={alpha:g})"
        dense[name] = fit_als(fit, rank, reg, alpha, rc.als.max_iter, rc.als.seed)
        print(f"fitted {name}", flush=True)

    def evaluate(lists, hybrids) -> pd.DataFrame:
        model = build_model(lists, views, promoters, rc.k, dense, hybrids)
        scored = score_users(
            spark, carve, model, rc.k, rc.n_max, rc.frequency_bonus
        )
        flat = flat_lists(scored, rc.n_max).toPandas()
        by_view = {view: [n for n, v in lists if v == view] for view in (ALL, WARM, COLD)}
        cold_ids = np.setdiff1d(model.universe, warm)
        return evaluation_table(flat, rc.n_max, by_view, cold_ids, 0, rc.seed)

    collaborative = [JACCARD_CF, *dense]
    evaluation = evaluate([(n, WARM) for n in collaborative] + [(content, COLD)], {})
    warm_scores = mean_precision(evaluation, WARM).sort_values(ascending=False)
    best = {
        kind: next(n for n in warm_scores.index if n.startswith(kind)) for kind in ("ease", "als")
    }

    hybrids = {}
    for slots, threshold in itertools.product(args.cold_slots, args.min_similarity):
        positions = tuple(int(p) for p in slots.split(",") if p)
        if not positions and threshold != args.min_similarity[0]:
            continue  # without slots the threshold changes nothing
        name = f"hybrid(slots=[{slots}],min={threshold:g})"
        hybrids[name] = HybridParts(best["ease"], content, positions, threshold)
    hybrid_eval = evaluate([(n, ALL) for n in hybrids], hybrids)
    hybrid_scores = mean_precision(hybrid_eval, ALL).sort_values(ascending=False)

    mlflow.set_tracking_uri(config.mlflow.tracking_uri)
    mlflow.set_experiment("tuning")
    for frame, view in ((evaluation, WARM), (hybrid_eval, ALL)):
        for name, rows in frame[frame["view"] == view].groupby("recommender"):
            with mlflow.start_run(run_name=name):
                mlflow.log_params(
                    {"candidate": name, "view": view, "carve_seed": ic.split_seed + 1}
                )
                for row in rows.itertuples():
                    mlflow.log_metric("precision", row.precision, step=int(row.n))
                mlflow.log_metric("mean_precision", float(rows["precision"].mean()))

    def show(frame: pd.DataFrame, view: str) -> None:
        rows = frame[(frame["view"] == view) & frame["n"].isin([1, 5, 10])]
        wide = rows.pivot(index="recommender", columns="n", values="precision")
        wide["mean P@1..10"] = mean_precision(frame, view)
        print(wide.sort_values("mean P@1..10", ascending=False).round(4).to_string(), flush=True)

    print(f"\nwarm precision@N on the validation carve of {root.name}:")
    show(evaluation, WARM)
    print(f"\nhybrid lists as made (precision@N, warm and cold hits) on {root.name}:")
    show(hybrid_eval, ALL)
    chosen = hybrids[hybrid_scores.index[0]]
    print(
        f"\nchosen: {best['ease']}, {best['als']}, collaborative side {warm_scores.index[0]}, "
        f"hybrid cold_slots {list(chosen.cold_slots)} min_similarity {chosen.min_similarity}"
    )
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
