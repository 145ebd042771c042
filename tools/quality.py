"""Recommendation quality on real MyAnimeList ratings: the whole pipeline per real rating set.

For each real rating file in ``--shared`` (the 2016 random-user sample and the 2020 head
sample, see ``../shared/data/README.md``), with the complete 2020 ``anime.csv`` and
``anime_with_synopsis.csv``:

1. a raw folder under ``--out`` (outside the repository): the rating file as a symbolic link and,
   with ``--titles rated`` (the default), the two anime files reduced to the titles someone in
   the set rated (any split), so the three encoders embed ~7k titles instead of 17.6k per set
   on a CPU; ``--titles all`` links the complete anime files;
2. ``jobs/pipeline.py`` with ``conf/quality.yaml`` (or ``--conf``) but its customization
   stages, every output (lake, reports, checkpoints, MLflow store) under ``--out/<set>``;
3. the customization recipes side by side (:data:`VARIANTS`, ``--recipes``): the finetune,
   embed_finetuned and recommend stages per recipe, each registered as its own model and
   embedded as its own embedder (the default recipe's too, under its recipe's name), so
   ``evaluation`` holds every customized embedder next to the base one;
4. ``--out/<set>/quality.md``: NPS@1/5/10 with 95% CIs, precision/recall/nDCG@10, cold-start
   hits, the enthusiasm of the hits, each recipe's MLflow record and the held-out-title
   measures of every content embedder's stored vectors (:func:`held_out_lines`: the measures
   the default recipe is chosen by), printed as well.

Usage (``make quality``)::

    python -m tools.quality --shared ../shared/data --out build/quality [--sets mal2016_sample]
"""

from __future__ import annotations

import argparse
import csv
import functools
import os
import subprocess
import sys
from pathlib import Path

from anime_recs.tables import ALL, COLD, WARM

REPO = Path(__file__).resolve().parents[1]
# the fine-tune budget the quality figures are measured with (conf/local.yaml is make run's)
QUALITY_CONF = str(REPO / "conf" / "quality.yaml")
ANIME_FILES = ("mal2020/anime.csv", "mal2020/anime_with_synopsis.csv")
# name -> its rating files; a set of several files is their union, each file's user ids moved
# into a range of their own (USER_ID_STRIDE apart), since the files number users independently
REAL_SETS = {
    "mal2016_combined": (
        "mal2016_sample/rating_complete.csv",
        "mal2016_head/rating_complete.csv",
    ),
    "mal2020_head": ("mal2020/rating_complete_head_fullusers.csv",),
    "mal2016_sample": ("mal2016_sample/rating_complete.csv",),
}
DEFAULT_SETS = ("mal2016_combined", "mal2020_head")
USER_ID_STRIDE = 1_000_000


def registered_embedder(kind: str, model: str, extra: str = "") -> str:
    return f'{{kind: {kind}, model: "models:/{model}/latest", optional: true{extra}}}'


# the customization recipes measured side by side: name -> (the embedder that holds its
# vectors, the overrides of its run); each registers a model of its own
VARIANTS = {
    "contrastive": ("finetuned_minilm", ("finetune.recipe=contrastive",)),
    "case_study": (
        "finetuned_case_study",
        (
            "finetune.recipe=case_study",
            "finetune.registered_model=anime_encoder_case_study",
            "embed.embedders.finetuned_case_study="
            + registered_embedder("sentence-transformers", "anime_encoder_case_study"),
        ),
    ),
    "lora": (
        "finetuned_lora",
        (
            "finetune.recipe=lora",
            "finetune.registered_model=anime_encoder_lora",
            "embed.embedders.finetuned_lora="
            + registered_embedder("sentence-transformers", "anime_encoder_lora"),
        ),
    ),
}


def default_variant(conf: str) -> str:
    """The :data:`VARIANTS` entry of the config's ``finetune.recipe``."""
    from anime_recs.config import load_config

    return load_config(conf).finetune.recipe


def link_raw(shared: Path, ratings: tuple[str, ...], raw: Path, titles: str) -> None:
    """``raw`` holds the three files under the names the pipeline expects: links to the
    shared files, or (``titles == "rated"``) the anime files reduced to the rated titles; a
    set of several rating files gets their union (:func:`combine_ratings`)."""
    raw.mkdir(parents=True, exist_ok=True)
    targets = {Path(f).name: shared / f for f in ANIME_FILES}
    sources = [shared / f for f in ratings]
    for target in [*targets.values(), *sources]:
        if not target.is_file():
            raise SystemExit(f"error: {target} not found (is ../shared/data there?)")
    if len(sources) > 1:
        replace_if_changed(raw / "rating_complete.csv", functools.partial(combine_ratings, sources))
    else:
        targets["rating_complete.csv"] = sources[0]
    for name, target in targets.items():
        out = raw / name
        if titles == "rated" and name != "rating_complete.csv":
            rated = rated_titles(raw / "rating_complete.csv" if len(sources) > 1 else sources[0])
            replace_if_changed(out, functools.partial(keep_rated_titles, target, titles=rated))
        else:
            if out.is_symlink() and out.resolve() == target.resolve():
                continue
            out.unlink(missing_ok=True)
            out.symlink_to(target.resolve())


def replace_if_changed(out: Path, write) -> None:
    """``write(path)`` into a temporary file, renamed over ``out`` unless ``out`` already holds
    the same bytes (then ``out`` and its mtime, a pipeline input, stay)."""
    fresh = out.parent / f".{out.name}.tmp"
    write(fresh)
    if out.is_file() and not out.is_symlink() and out.read_bytes() == fresh.read_bytes():
        fresh.unlink()
    else:
        out.unlink(missing_ok=True)
        fresh.rename(out)


def combine_ratings(sources: list[Path], out: Path) -> None:
    """The union of rating files with the columns ``user_id,anime_id,rating``: file ``i``'s
    user ids become ``i * USER_ID_STRIDE + user_id``, so users of different files never
    share an id."""
    with open(out, "w", newline="", encoding="utf-8") as g:
        writer = csv.writer(g, lineterminator="\n")
        writer.writerow(["user_id", "anime_id", "rating"])
        for i, source in enumerate(sources):
            with open(source, newline="", encoding="utf-8-sig") as f:
                reader = csv.reader(f)
                header = [c.strip() for c in next(reader)]
                user, title, rating = (header.index(c) for c in ("user_id", "anime_id", "rating"))
                for row in reader:
                    uid = int(row[user])
                    if not 0 <= uid < USER_ID_STRIDE:
                        raise SystemExit(f"error: {source}: user_id {uid} outside the stride")
                    writer.writerow([i * USER_ID_STRIDE + uid, row[title], row[rating]])


def rated_titles(ratings: Path) -> set[str]:
    """The ``anime_id`` values of a ratings file, as the text they have in the anime files."""
    with open(ratings, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        column = next(reader).index("anime_id")
        return {row[column].strip() for row in reader if len(row) > column}


def keep_rated_titles(source: Path, out: Path, titles: set[str]) -> None:
    """Copy the header and the rows whose first column (``MAL_ID``) is a rated title."""
    with (
        open(source, newline="", encoding="utf-8-sig") as f,
        open(out, "w", newline="", encoding="utf-8") as g,
    ):
        reader, writer = csv.reader(f), csv.writer(g, lineterminator="\n")
        writer.writerow(next(reader))
        writer.writerows(row for row in reader if row and row[0].strip() in titles)


def paths_overrides(root: Path) -> list[str]:
    return [
        f"paths.raw={root / 'raw'}",
        f"paths.lake={root / 'lake'}",
        f"paths.reports={root / 'reports'}",
        f"paths.checkpoints={root / 'checkpoints'}",
        f"mlflow.tracking_uri=sqlite:///{root / 'mlruns.db'}",
        f"mlflow.artifact_location={root / 'mlartifacts'}",
    ]


def variant_overrides(name: str) -> list[str]:
    embedder, overrides = VARIANTS[name]
    return [*overrides, f"embed.run=[{embedder}]"]


def run_pipeline(conf: str, overrides: list[str], *stages: str, skip: tuple[str, ...] = ()) -> None:
    argv = [sys.executable, str(REPO / "jobs" / "pipeline.py"), "--conf", conf]
    for item in overrides:
        argv += ["--set", item]
    if stages:
        argv += ["--only", *stages]
    if skip:
        argv += ["--skip", *skip]
    print("+", " ".join(argv), flush=True)  # noqa: T201 - a command-line tool
    subprocess.run(argv, check=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def summary(root: Path, name: str) -> str:
    """The quality section of one real set, from its lake and MLflow store."""
    from pyspark.sql import functions as F

    from anime_recs import tables
    from anime_recs.config import load_config
    from anime_recs.evaluation.evaluate import flat_lists
    from anime_recs.lakehouse import read_table
    from anime_recs.spark import get_spark

    overrides = ["spark.master=local[2]", "spark.app_name=quality-summary"]
    settings = load_config(QUALITY_CONF, overrides)
    spark = get_spark(settings.spark, "ERROR")
    lake = str(root / "lake")
    evaluation = read_table(spark, lake, tables.EVALUATION).toPandas()
    ratings = read_table(spark, lake, tables.RATINGS)
    counts = {r["split"]: r["count"] for r in ratings.groupBy("split").count().collect()}
    users = ratings.select("user_id").distinct().count()
    train_titles = ratings.where(F.col("split") == tables.TRAIN).select("anime_id").distinct()
    cold_ratings = ratings.where(F.col("split") == tables.TEST).join(
        train_titles, "anime_id", "left_anti"
    )
    cold_titles = cold_ratings.select("anime_id").distinct().count()
    view_users = evaluation.groupby("view")["users_total"].max()
    lines = [
        f"### {name}",
        "",
        f"{users:,} users, {counts.get('train', 0):,} train and {counts.get('test', 0):,} test "
        f"ratings. Cold titles (the newest, no train rating): {cold_titles:,}, with "
        f"{cold_ratings.count():,} test ratings. Test users: {int(view_users[ALL]):,}; with a "
        f"warm test rating {int(view_users[WARM]):,}; with a cold one "
        f"{int(view_users.get(COLD, 0)):,}.",
    ]
    for view, title in (
        (WARM, "Warm titles: ranked among and scored on the titles with train ratings"),
        (COLD, "Cold titles: ranked among and scored on the newest titles (no train rating)"),
        (ALL, "The lists as made (warm and cold titles, every test rating)"),
    ):
        lines += [
            "",
            f"**{title}** (95% CIs: bootstrap over users)",
            "",
            *view_lines(evaluation, view),
        ]
    lines += ["", *target_lines(evaluation)]
    flat = flat_lists(read_table(spark, lake, tables.USER_SCORES), 10).toPandas()
    base = settings.finetune.content_neighbours_embedder
    lines += ["", *customization_lines(flat, evaluation, base, settings.recommend)]
    lines += ["", *recipe_lines(root)]
    lines += ["", *held_out_lines(spark, lake, settings)]
    spark.stop()
    return "\n".join(lines) + "\n"


def view_lines(evaluation, view: str) -> list[str]:
    """Markdown lines: one view's precision@1/5/10 with CIs, net promoter hits@10, promoter
    share@10, NPS@1/10 with CIs and the share of cold slots at N = 10, best precision@10
    first."""
    rows = evaluation[evaluation["view"] == view]
    lines = [
        "| recommender | P@1 [95% CI] | P@5 [95% CI] | P@10 [95% CI] | net promoter hits@10 | "
        "promoter share@10 | NPS@1 [95% CI] | NPS@10 [95% CI] | cold slots@10 |",
        "|---|---|---|---|---:|---:|---|---|---:|",
    ]
    at10 = rows[rows["n"] == 10].sort_values("precision", ascending=False)
    for rec in at10["recommender"]:
        r = rows[rows["recommender"] == rec].set_index("n")

        def ci(metric: str, n: int, r=r) -> str:
            low, high = r[f"{metric}_ci_low"][n], r[f"{metric}_ci_high"][n]
            return f"{r[metric][n]:.4f} [{low:.4f}, {high:.4f}]"

        lines.append(
            f"| {rec} | {ci('precision', 1)} | {ci('precision', 5)} | {ci('precision', 10)} | "
            f"{r.net_promoter_hits[10]:.3f} | {r.promoter_share[10]:.3f} | {ci('nps', 1)} | "
            f"{ci('nps', 10)} | {r.cold_share[10]:.3f} |"
        )
    return lines


def target_lines(evaluation) -> list[str]:
    """Markdown lines: the served ``hybrid`` against every other recommender on warm
    precision@N and against the base encoder on cold precision@N: at how many N it is at or
    above, and the lowest difference (the largest shortfall when negative)."""
    from anime_recs.tables import HYBRID

    ns = sorted(set(evaluation["n"]))
    lines = [
        f"| view | hybrid against | N (of {len(ns)}) with precision at or above | "
        "lowest precision difference |",
        "|---|---|---:|---:|",
    ]
    for view in (WARM, COLD):
        rows = evaluation[evaluation["view"] == view]
        if HYBRID not in set(rows["recommender"]):
            continue
        mine = rows[rows["recommender"] == HYBRID].set_index("n")["precision"]
        for other in sorted(set(rows["recommender"]) - {HYBRID}):
            theirs = rows[rows["recommender"] == other].set_index("n")["precision"]
            gap = (mine - theirs).loc[ns]
            lines.append(
                f"| {view} | {other} | {int((gap >= -1e-12).sum())} | "
                f"{gap.min():+.4f} (N = {int(gap.idxmin())}) |"
            )
    return lines


def customization_lines(flat, evaluation, base: str, rc) -> list[str]:
    """Markdown lines: each customized content embedder against ``base`` (the encoder it
    customizes), on warm and on cold titles: the precision@5 and @10 difference, mean over
    users with a paired bootstrap 95% CI (the same resampled users for both)."""
    from anime_recs.evaluation.bootstrap import paired_difference_ci
    from anime_recs.evaluation.metrics import user_stats
    from anime_recs.recommend.registry import REGISTRY

    names = sorted(set(evaluation["recommender"]) - {base, *REGISTRY})
    lines = [
        f"| embedder | view | P@5 - {base} [95% CI] | P@10 - {base} [95% CI] |",
        "|---|---|---|---|",
    ]
    for name in names:
        for view in (WARM, COLD):
            rows = flat[flat["view"] == view]
            mine = rows[rows["recommender"] == name].sort_values("user_id")
            theirs = rows[rows["recommender"] == base].sort_values("user_id")
            cells = []
            for n in (5, 10):
                liked = [
                    user_stats(frame[[f"t{i}" for i in range(n)]].to_numpy(), n)[2] / n
                    for frame in (mine, theirs)
                ]
                mean, low, high = paired_difference_ci(*liked, rc.bootstrap_samples, rc.seed)
                cells.append(f"{mean:+.4f} [{low:+.4f}, {high:+.4f}]")
            lines.append(f"| {name} | {view} | {cells[0]} | {cells[1]} |")
    return lines


def recipe_lines(root: Path) -> list[str]:
    """Markdown lines: per registered model, the newest finished fine-tune run of the set's
    MLflow store, its examples and its held-out measures before -> after training, as
    logged."""
    import mlflow

    def change(metrics: dict, name: str) -> str:
        before, after = metrics.get(f"val_{name}_before"), metrics.get(f"val_{name}_after")
        return "" if before is None or after is None else f"{before:.4f} -> {after:.4f}"

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlruns.db'}")
    lines = [
        "| fine-tuning recipe | registered model | train pairs | val pairs | "
        "val Spearman before -> after | val NDCG before -> after |",
        "|---|---|---:|---:|---|---|",
    ]
    latest = {}  # registered model -> its newest finished run's row
    for experiment in client.search_experiments():
        for run in client.search_runs(
            [experiment.experiment_id], order_by=["attributes.start_time ASC"]
        ):
            params, metrics = run.data.params, run.data.metrics
            if "finetune.recipe" not in params or run.info.status != "FINISHED":
                continue  # not a fine-tune, or one interrupted before it registered a model
            recipe = params["finetune.recipe"]
            model = params.get("finetune.registered_model")
            latest[model] = (
                f"| {recipe} | {model} | {params.get('data.train_pairs')} | "
                f"{params.get('data.val_pairs')} | {change(metrics, 'spearman')} | "
                f"{change(metrics, 'ndcg')} |"
            )
    lines += [latest[model] for model in sorted(latest)]
    return lines


def held_out_lines(spark, lake: str, config) -> list[str]:
    """Markdown lines: the held-out-title measures of every embedder's stored vectors, on the
    fine-tune's validation pairs (the ``val`` rows of ``copromoted_pairs``, sampled as the
    finetune stage samples them): Spearman of cosine vs Jaccard over the pairs, and
    NDCG@``validation_k`` of each held-out title's ``validation_candidates`` nearest held-out
    titles by the base encoder's vectors (``finetune.content_neighbours_embedder``: the same
    lists for every embedder), re-ranked by its own, with a paired bootstrap CI of its
    difference to the base's."""
    import numpy as np
    from pyspark.sql import functions as F

    from anime_recs import tables
    from anime_recs.evaluation.bootstrap import bootstrap_ratio_ci
    from anime_recs.lakehouse import read_table
    from anime_recs.training.held_out import held_out_of
    from anime_recs.training.inputs import collect_pairs, collect_vectors
    from anime_recs.training.pairs import sample_pair_rows

    ft = config.finetune
    base = ft.content_neighbours_embedder
    copromoted = read_table(spark, lake, tables.COPROMOTED_PAIRS)
    val = collect_pairs(
        sample_pair_rows(copromoted.where(F.col("split") == tables.VAL), ft.max_val_pairs, ft.seed)
    )
    embeddings = read_table(spark, lake, tables.ANIME_EMBEDDINGS)
    names = sorted(r.embedder for r in embeddings.select("embedder").distinct().collect())
    if base not in names:
        return []
    ids, source = collect_vectors(embeddings.where(F.col("embedder") == base))
    held_out = held_out_of(ids, source, val, ft.validation_candidates, ft.validation_k)

    k = ft.validation_k
    measures, per_title = {}, {}
    for name in names:
        own_ids, own = collect_vectors(embeddings.where(F.col("embedder") == name))
        aligned = np.zeros((ids.size, own.shape[1]), np.float32)
        at = np.searchsorted(own_ids, ids).clip(0, max(own_ids.size - 1, 0))
        found = own_ids[at] == ids
        aligned[found] = own[at[found]]
        measures[name] = held_out.measures(aligned)
        per_title[name] = held_out.anchor_ndcgs(aligned)
    # paired: the same resampled held-out titles for every embedder's difference to the source
    diffs = np.column_stack([per_title[n] - per_title[base] for n in names])
    low, high = bootstrap_ratio_ci(
        diffs, np.ones_like(diffs), config.recommend.bootstrap_samples, config.recommend.seed
    )
    lines = [
        f"Held-out titles: {held_out.titles:,} titles, {held_out.pair_a.size:,} val pairs; "
        f"NDCG@{k} over each one's {ft.validation_candidates} nearest by {base} "
        f"({diffs.shape[0]:,} titles with a valued candidate; 95% CI: bootstrap over them).",
        "",
        f"| embedder | val Spearman | val NDCG@{k} | NDCG@{k} - {base} [95% CI] |",
        "|---|---:|---:|---|",
    ]
    for i, name in enumerate(names):
        spearman, ndcg = measures[name]["spearman"], measures[name]["ndcg"]
        cells = [f"{v:.4f}" if v is not None else "" for v in (spearman, ndcg)]
        gap = f"{diffs[:, i].mean():+.4f} [{low[i]:+.4f}, {high[i]:+.4f}]"
        lines.append(f"| {name} | {' | '.join(cells)} | {gap} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--out", default=str(REPO / "build" / "quality"))
    parser.add_argument("--conf", default=QUALITY_CONF)
    parser.add_argument("--sets", nargs="+", choices=sorted(REAL_SETS), default=list(DEFAULT_SETS))
    parser.add_argument("--titles", choices=("rated", "all"), default="rated")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--summary-only", action="store_true", help="only rewrite quality.md")
    parser.add_argument(
        "--skip",
        nargs="+",
        default=[],
        help="pipeline stages not to run (e.g. finetune embed_finetuned: no customized "
        "embedders, and no recipe runs)",
    )
    parser.add_argument(
        "--recipes",
        nargs="+",
        choices=sorted(VARIANTS),
        help="the customization recipes to run side by side (default: the config's "
        "finetune.recipe; the encoder fine-tunes take tens of CPU-minutes per set)",
    )
    args = parser.parse_args(argv)
    args.recipes = args.recipes or [default_variant(args.conf)]
    for name in args.sets:
        root = Path(args.out).resolve() / name
        overrides = paths_overrides(root) + args.overrides
        if not args.summary_only:
            link_raw(Path(args.shared), REAL_SETS[name], root / "raw", args.titles)
            # the customized embedders come from the recipe runs below, each under its
            # recipe's own names (VARIANTS), whatever finetune.recipe the config defaults to
            main_skip = {*args.skip, "finetune", "embed_finetuned"}
            run_pipeline(args.conf, overrides, skip=tuple(sorted(main_skip)))
            if "finetune" not in args.skip:
                for variant in args.recipes:
                    run_pipeline(
                        args.conf,
                        overrides + variant_overrides(variant),
                        "finetune",
                        "embed_finetuned",
                        "recommend",
                    )
        text = summary(root, name)
        (root / "quality.md").write_text(text)
        print(text, flush=True)  # noqa: T201 - a command-line tool
    return 0


if __name__ == "__main__":
    sys.exit(main())
