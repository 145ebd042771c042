"""Benchmark of the exact promoter Jaccard (issue 4); a script, not a test.

In one run on the same ingested lake (``ratings`` + ``anime`` Delta tables) it measures:

1. **job**: the job's computation end to end: read ``ratings`` -> the ``promoters`` table,
   then for each of ``--modes`` (both by default, side by side in one run) ``anime_pair_jaccard``
   from it and its Delta write: ``broadcast`` (collect to the driver, blocked sparse ``A^T A``
   on Spark tasks) and ``tiles`` (title-block tiles on the executors), with the digests of both
   tables (equal contents, equal digests); then ``training_pairs`` (labels, sampling, write);
2. **self-join**: the textbook Spark formulation (promoters self-joined on ``user_id``,
   ``a < b``, group by pair, join the promoter counts, Delta write) on a deterministic sample
   of ``--sample-users`` users, extrapolated to all users by the number of co-promoted triples:
   ``time x total_triples / sample_triples``;
3. **scipy**: single-process ``A.T @ A`` + Jaccard on the same promoter matrix, the local speed
   limit: count only, with the kept rows materialised as numpy arrays, and with those rows
   written as one Parquet file in the table's layout (the job's output, without Delta); plus
   the job's blocked kernel run in one process without Spark (the Spark/Delta overhead);
4. peak memory of each phase (RSS of this process + its children: the JVM and Python workers,
   sampled every 50 ms with psutil), and the row counts of both tables.

Prints a markdown table and writes JSON to ``bench/jaccard-<time>.json``.

    .venv/bin/python -m benchmarks.bench_jaccard --lake lakehouse --sample-users 20000

Without an ingested lake, ``--synthetic-users N`` first writes a synthetic one (promoters with a
lognormal per-user count and a Zipf title popularity, calibrated to ~52 promoted titles per
user as in MAL 2020) into ``--lake``; N=310059 approximates the full-scale promoter matrix.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import functions as F

from anime_recs import tables
from anime_recs.cli import session, setup_logging
from anime_recs.config import load_config
from anime_recs.lakehouse import read_table, table_digest, table_exists, write_table
from anime_recs.options import BROADCAST, TILES
from anime_recs.similarity.jaccard import (
    PAIR_ARROW_SCHEMA,
    block_pair_batches,
    jaccard_from_counts,
)
from anime_recs.similarity.labels import training_pairs
from anime_recs.similarity.matrix import (
    build_promoter_matrix,
    plan_blocks,
    title_costs,
    total_triples,
)
from anime_recs.similarity.promoters import promoters
from anime_recs.similarity.stage import configured_pair_jaccard, write_promoters
from benchmarks.bench_output import write_results

REPO_ROOT = Path(__file__).resolve().parents[1]


class PeakRss:
    """Samples the RSS of this process and all its descendants; keeps the maximum of the total
    and of each role: ``driver`` (this Python process: what the driver collects and builds),
    ``jvm`` (Spark's JVM; in local mode driver and executor in one), ``workers`` (the Python
    workers together: the executors' Python side, e.g. each task's copy of a broadcast) and
    ``worker_max`` (the largest single worker); other descendants (short-lived helpers) are
    left out."""

    ROLES = ("driver", "jvm", "workers", "worker_max")

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak = 0
        self.peak_by_role = dict.fromkeys(self.ROLES, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        me = psutil.Process()
        roles = dict.fromkeys(self.ROLES, 0)
        for proc in [me, *me.children(recursive=True)]:
            try:
                rss = proc.memory_info().rss
                name = proc.name()
            except psutil.Error:
                continue
            role = "driver" if proc.pid == me.pid else "jvm" if "java" in name else ""
            if role:
                roles[role] += rss
            elif name.startswith("python"):
                roles["workers"] += rss
                roles["worker_max"] = max(roles["worker_max"], rss)
            # else: a helper the JVM spawns (Hadoop's shell commands via jspawnhelper) shares
            # the JVM's pages until it execs; counting it would add the JVM's RSS once more
        for role, rss in roles.items():
            self.peak_by_role[role] = max(self.peak_by_role[role], rss)
        return roles["driver"] + roles["jvm"] + roles["workers"]

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        self.peak = self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())


@contextmanager
def measured(results: dict, name: str):
    """Record wall seconds, CPU seconds of this process and peak tree RSS under ``name``."""
    entry: dict = {}
    cpu0 = time.process_time()
    start = time.perf_counter()
    with PeakRss() as rss:
        yield entry
    entry["wall_s"] = round(time.perf_counter() - start, 2)
    entry["driver_cpu_s"] = round(time.process_time() - cpu0, 2)
    entry["peak_rss_gib"] = round(rss.peak / 2**30, 2)
    entry["peak_rss_by_role_gib"] = {k: round(v / 2**30, 2) for k, v in rss.peak_by_role.items()}
    results[name] = entry
    print(f"  {name}: {entry}", flush=True)  # noqa: T201 - a script's progress


# ------------------------------------------------------------------------------------------
# synthetic lake (only for trying the benchmark without an ingested lake)
# ------------------------------------------------------------------------------------------


def write_synthetic_lake(spark, lake: str, n_users: int, n_titles: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    sigma = 0.98  # E[d^2] / E[d]^2 = 2.6 as in the real head sample (3,628 pairs per user)
    deg = np.clip(rng.lognormal(np.log(52) - sigma**2 / 2, sigma, n_users), 1, n_titles // 2)
    deg = deg.astype(np.int64)
    weights = 1.0 / (np.arange(n_titles) + 20.0) ** 0.9
    probs = np.empty(n_titles)
    probs[rng.permutation(n_titles)] = weights / weights.sum()
    users = np.repeat(np.arange(1, n_users + 1, dtype=np.int32), deg)
    titles = rng.choice(n_titles, size=users.size, p=probs).astype(np.int32) + 1
    key = np.unique(users.astype(np.int64) * (n_titles + 1) + titles)  # one rating per pair
    users, titles = (
        (key // (n_titles + 1)).astype(np.int32),
        (key % (n_titles + 1)).astype(np.int32),
    )
    ratings = rng.choice([9, 10], size=users.size).astype(np.int32)
    split = np.where(rng.random(users.size) < 0.1, tables.TEST, tables.TRAIN)
    frame = pd.DataFrame({"user_id": users, "anime_id": titles, "rating": ratings, "split": split})
    df = spark.createDataFrame(frame)
    write_table(df, lake, tables.RATINGS, tables.RATINGS_SCHEMA)
    ids = list(range(1, n_titles + 1))
    anime = spark.createDataFrame(
        [(i, f"t{i}", i % 20 != 0) for i in ids],
        "anime_id int, name string, has_description boolean",
    )
    for field in tables.ANIME_SCHEMA.fields:
        if field.name not in anime.columns:
            anime = anime.withColumn(field.name, F.lit(None).cast(field.dataType))
    write_table(anime, lake, tables.ANIME, tables.ANIME_SCHEMA)


# ------------------------------------------------------------------------------------------
# the measured formulations
# ------------------------------------------------------------------------------------------


def naive_self_join(promo, min_intersection: int):
    """The textbook formulation: one row per co-promoted triple, shuffled and counted."""
    x = promo.select("user_id", F.col("anime_id").alias("anime_a"))
    y = promo.select("user_id", F.col("anime_id").alias("anime_b"))
    inter = (
        x.join(y, "user_id")
        .where(F.col("anime_a") < F.col("anime_b"))
        .groupBy("anime_a", "anime_b")
        .agg(F.count(F.lit(1)).cast("int").alias("intersection"))
        .where(F.col("intersection") >= min_intersection)
    )
    counts = promo.groupBy("anime_id").agg(F.count(F.lit(1)).cast("int").alias("n"))
    ca = counts.select(F.col("anime_id").alias("anime_a"), F.col("n").alias("promoters_a"))
    cb = counts.select(F.col("anime_id").alias("anime_b"), F.col("n").alias("promoters_b"))
    union = F.col("promoters_a") + F.col("promoters_b") - F.col("intersection")
    return (
        inter.join(ca, "anime_a")
        .join(cb, "anime_b")
        .withColumn("union", union)
        .withColumn("jaccard", F.col("intersection") / F.col("union"))
    )


def scipy_all_pairs(
    matrix, min_intersection: int, materialise: bool, parquet_dir: str | None = None
) -> dict:
    """Single-process ``A.T @ A`` (both triangles, as scipy does it) + upper-triangle Jaccard;
    ``parquet_dir``: also write the rows there as one Parquet file in the table's layout
    (:func:`write_pairs_parquet`)."""
    a = matrix.csr()
    counts = (a.T.tocsr() @ a).tocsr()
    n = counts.shape[0]
    rows = np.repeat(np.arange(n, dtype=np.int32), np.diff(counts.indptr))
    keep = (counts.indices > rows) & (counts.data >= min_intersection)
    del rows
    r = np.repeat(np.arange(n, dtype=np.int32), np.diff(counts.indptr))[keep]
    c = counts.indices[keep]
    inter = counts.data[keep]
    del counts, keep
    union, jac = jaccard_from_counts(inter, matrix.promoters[r], matrix.promoters[c])
    out = {"rows": int(r.size), "jaccard_sum": float(jac.sum())}
    if materialise:
        arrays = [
            matrix.title_ids[r],
            matrix.title_ids[c],
            matrix.promoters[r],
            matrix.promoters[c],
            inter.astype(np.int32),
            union.astype(np.int32),
            jac,
        ]
        out["bytes"] = int(sum(x.nbytes for x in arrays))
        if parquet_dir is not None:
            out["parquet_mb"] = write_pairs_parquet(arrays, parquet_dir)
    return out


def write_pairs_parquet(arrays: list[np.ndarray], folder: str) -> float:
    """The pair rows as one Parquet file with pyarrow in ``anime_pair_jaccard``'s layout
    (Parquet v2 pages, no dictionaries, snappy as Spark's default, statistics on the first
    two columns only); its size in MB. The single-process counterpart of the job's write."""
    table = pa.Table.from_arrays([pa.array(x) for x in arrays], schema=PAIR_ARROW_SCHEMA)
    path = Path(folder) / "pairs.parquet"
    pq.write_table(
        table,
        path,
        version="2.6",
        data_page_version="2.0",
        use_dictionary=False,
        compression="snappy",
        write_statistics=["anime_a", "anime_b"],
    )
    return round(path.stat().st_size / 1e6, 1)


def blocked_single_process(matrix, min_intersection: int, n_blocks: int, max_cells: int) -> int:
    bounds = plan_blocks(title_costs(matrix), n_blocks)
    rows = 0
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        for batch in block_pair_batches(matrix, int(lo), int(hi), min_intersection, max_cells):
            rows += batch.num_rows
    return rows


# ------------------------------------------------------------------------------------------
# support study: how noisy are labels of rarely promoted titles? (chooses the guard defaults)
# ------------------------------------------------------------------------------------------


def _half_pairs(users: np.ndarray, titles: np.ndarray, max_cells: int) -> dict:
    """All co-promoted pairs of one half: (anime_a, anime_b) -> (pa, pb, inter)."""
    matrix = build_promoter_matrix(users, titles)
    out = {}
    bounds = plan_blocks(title_costs(matrix), 1)
    for batch in block_pair_batches(matrix, 0, int(bounds[-1]), 1, max_cells):
        cols = [batch.column(i).to_numpy() for i in range(5)]
        for a, b, pa_, pb_, inter in zip(*cols, strict=True):
            out[(int(a), int(b))] = (int(pa_), int(pb_), int(inter))
    return out, dict(zip(matrix.title_ids.tolist(), matrix.promoters.tolist(), strict=True))


def support_study(
    users: np.ndarray,
    titles: np.ndarray,
    positive_threshold: float,
    negative_threshold: float,
    grid_promoters: list[int],
    grid_intersection: list[int],
    seed: int,
    max_cells: int,
) -> list[dict]:
    """Split-half reliability of the labels under each pair of support guards.

    Users are split in two halves at random (by seed). Labels are computed on each half with
    the guards ``(m, k)`` applied to that half's counts. For the positives of half 1 we report
    how many stay positive in half 2 (``pos_agree``) and how many flip to the negative band
    (``pos_flip``); a guard is good when it removes flips without removing most positives.
    The half-sample guards correspond to about twice those values on all users.
    """
    rng = np.random.default_rng(seed)
    uniq = np.unique(users)
    half = set(rng.choice(uniq, size=uniq.size // 2, replace=False).tolist())
    in_1 = np.array([u in half for u in users.tolist()])
    p1, n1 = _half_pairs(users[in_1], titles[in_1], max_cells)
    p2, n2 = _half_pairs(users[~in_1], titles[~in_1], max_cells)
    rows = []
    for m in grid_promoters:
        for k in grid_intersection:
            pos = agree = flip = 0
            for (a, b), (pa_, pb_, inter) in p1.items():
                if pa_ < m or pb_ < m or inter < k:
                    continue
                if inter / (pa_ + pb_ - inter) < positive_threshold:
                    continue
                pos += 1
                inter2 = p2.get((a, b), (0, 0, 0))[2]
                qa, qb = n2.get(a, 0), n2.get(b, 0)
                j2 = inter2 / (qa + qb - inter2) if qa + qb - inter2 > 0 else 0.0
                agree += j2 >= positive_threshold
                flip += j2 < negative_threshold
            rows.append(
                {
                    "half_min_promoters": m,
                    "half_min_positive_intersection": k,
                    "positives": pos,
                    "pos_agree": round(agree / pos, 3) if pos else None,
                    "pos_flip": round(flip / pos, 3) if pos else None,
                }
            )
    return rows


# ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", required=True, help="lake with ingested ratings and anime")
    parser.add_argument("--sample-users", type=int, default=20000, help="self-join user sample")
    parser.add_argument("--conf", default=str(REPO_ROOT / "conf" / "local.yaml"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--out", default=str(REPO_ROOT / "bench"))
    parser.add_argument("--synthetic-users", type=int, default=0, help="write a synthetic lake")
    parser.add_argument("--synthetic-titles", type=int, default=17000)
    parser.add_argument("--skip", action="append", default=[], help="selfjoin, scipy")
    parser.add_argument(
        "--modes", nargs="+", default=[BROADCAST, TILES], choices=[BROADCAST, TILES]
    )
    parser.add_argument(
        "--support-study",
        action="store_true",
        help="only run the split-half study of the support guards (on --lake or --ratings-csv)",
    )
    parser.add_argument("--ratings-csv", help="support study on a rating_complete-style CSV")
    args = parser.parse_args(argv)
    setup_logging()
    if args.support_study:
        return run_support_study(args)

    config = load_config(args.conf, [*args.overrides, f"paths.lake={args.lake}"])
    cfg = config.jaccard
    spark = session(config, "INFO", "bench-jaccard")
    lake = args.lake
    results: dict = {"lake": str(Path(lake).absolute()), "cores": psutil.cpu_count()}

    if args.synthetic_users:
        print(f"writing a synthetic lake with {args.synthetic_users} users", flush=True)
        write_synthetic_lake(spark, lake, args.synthetic_users, args.synthetic_titles, seed=1)
    if not table_exists(spark, lake, tables.RATINGS):
        raise SystemExit(f"no ratings table in {lake}: ingest first or pass --synthetic-users")

    ratings = read_table(spark, lake, tables.RATINGS)
    results["ratings_rows"] = ratings.count()

    print("1. job: promoters table, then A^T A in each mode + Delta write", flush=True)
    with measured(results, "job_promoters") as entry:
        version, promoter_pairs, n_blocks = write_promoters(
            spark, ratings, lake, cfg.block_promoters
        )
        entry.update(promoter_pairs=promoter_pairs, title_blocks=n_blocks)
    results["matrix"] = {"promoter_pairs": promoter_pairs, "title_blocks": n_blocks}
    digests, broadcast_blocks = {}, n_blocks
    for mode in args.modes:
        with measured(results, f"job_pair_jaccard_{mode}") as entry:
            promoter_table = read_table(spark, lake, tables.PROMOTERS, version)
            pairs, plan = configured_pair_jaccard(spark, promoter_table, n_blocks, mode, cfg)
            written_version = write_table(
                pairs, lake, tables.ANIME_PAIR_JACCARD, tables.ANIME_PAIR_JACCARD_SCHEMA
            )
            plan.release()
            entry["tasks"] = f"{plan.n_tiles} tiles" if mode == TILES else f"{plan.n_blocks} blocks"
        if mode == BROADCAST:
            results["matrix"].update(users=plan.n_users, titles=plan.n_titles, triples=plan.triples)
            broadcast_blocks = plan.n_blocks
        digests[mode] = table_digest(spark, lake, tables.ANIME_PAIR_JACCARD, written_version)
    results["anime_pair_jaccard_digests"] = digests
    results["modes_identical"] = len(set(digests.values())) == 1
    written = read_table(spark, lake, tables.ANIME_PAIR_JACCARD)
    results["anime_pair_jaccard_rows"] = written.count()
    with measured(results, "job_training_pairs"):
        labelled = training_pairs(
            written,
            read_table(spark, lake, tables.ANIME),
            positive_threshold=cfg.positive_threshold,
            negative_threshold=cfg.negative_threshold,
            negative_ratio=cfg.negative_ratio,
            min_promoters=cfg.min_promoters,
            min_positive_intersection=cfg.min_positive_intersection,
            val_fraction=cfg.val_fraction,
            seed=cfg.seed,
        )
        write_table(labelled, lake, tables.TRAINING_PAIRS, tables.TRAINING_PAIRS_SCHEMA)
    results["training_pairs"] = {
        f"{r['split']}_{int(r['label'])}": r["count"]
        for r in read_table(spark, lake, tables.TRAINING_PAIRS)
        .groupBy("split", "label")
        .count()
        .collect()
    }

    promo_table = promoters(ratings).toArrow()
    matrix = build_promoter_matrix(
        promo_table.column("user_id").to_numpy(), promo_table.column("anime_id").to_numpy()
    )
    del promo_table

    if "selfjoin" not in args.skip:
        print(f"2. naive self-join on {args.sample_users} sampled users", flush=True)
        rng = np.random.default_rng(cfg.seed)
        user_ids = np.array(
            [r[0] for r in promoters(ratings).select("user_id").distinct().collect()]
        )
        sample = np.sort(
            rng.choice(user_ids, size=min(args.sample_users, user_ids.size), replace=False)
        )
        sample_df = spark.createDataFrame([(int(u),) for u in sample], "user_id int")
        promo = promoters(ratings).join(F.broadcast(sample_df), "user_id")
        deg = np.array([r[1] for r in promo.groupBy("user_id").count().collect()], dtype=np.int64)
        sample_triples = int((deg * (deg - 1) // 2).sum())
        tmp = tempfile.mkdtemp(prefix="bench-selfjoin-")
        try:
            with measured(results, "selfjoin_sample") as entry:
                write_table(
                    naive_self_join(promo, cfg.min_intersection),
                    tmp,
                    "selfjoin",
                    tables.ANIME_PAIR_JACCARD_SCHEMA,
                )
            entry["rows"] = read_table(spark, tmp, "selfjoin").count()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        entry.update(sample_users=int(sample.size), sample_triples=sample_triples)
        triples = results["matrix"].get("triples", total_triples(matrix))
        entry["extrapolated_s"] = round(entry["wall_s"] * triples / max(sample_triples, 1), 1)

    if "scipy" not in args.skip:
        print("3. single-process scipy", flush=True)
        with measured(results, "scipy_count_only") as entry:
            entry.update(scipy_all_pairs(matrix, cfg.min_intersection, materialise=False))
        with measured(results, "scipy_materialised") as entry:
            entry.update(scipy_all_pairs(matrix, cfg.min_intersection, materialise=True))
        out_dir = tempfile.mkdtemp(prefix="bench-scipy-parquet-")
        try:
            with measured(results, "scipy_parquet") as entry:
                entry.update(
                    scipy_all_pairs(matrix, cfg.min_intersection, True, parquet_dir=out_dir)
                )
        finally:
            shutil.rmtree(out_dir, ignore_errors=True)
        with measured(results, "blocked_kernel_single_process") as entry:
            entry["rows"] = blocked_single_process(
                matrix, cfg.min_intersection, broadcast_blocks, cfg.max_block_cells
            )

    spark.stop()
    report(results)
    write_results(args.out, "jaccard", results)
    return 0


def run_support_study(args: argparse.Namespace) -> int:
    config = load_config(args.conf, [*args.overrides, f"paths.lake={args.lake}"])
    cfg = config.jaccard
    if args.ratings_csv:  # every row counts as train
        raw = pd.read_csv(args.ratings_csv)
        raw = raw[raw["rating"] >= 9]
        users, titles = raw["user_id"].to_numpy(), raw["anime_id"].to_numpy()
        source = args.ratings_csv
    else:
        spark = session(config, "INFO", "bench-jaccard-support")
        table = promoters(read_table(spark, args.lake, tables.RATINGS)).toArrow()
        users, titles = table.column("user_id").to_numpy(), table.column("anime_id").to_numpy()
        source = args.lake
    rows = support_study(
        users,
        titles,
        cfg.positive_threshold,
        cfg.negative_threshold,
        grid_promoters=[1, 3, 5, 10, 20],
        grid_intersection=[1, 2, 3, 5],
        seed=cfg.seed,
        max_cells=cfg.max_block_cells,
    )
    print(f"support study on {source}: {np.unique(users).size:,} users, {users.size:,} promoters")
    header = "| half min_promoters | half min_positive_intersection | positives |"
    print(header + " stay positive | flip to negative |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['half_min_promoters']} | {r['half_min_positive_intersection']} | "
            f"{r['positives']:,} | {r['pos_agree']} | {r['pos_flip']} |"
        )
    write_results(args.out, "jaccard-support", {"source": str(source), "rows": rows})
    return 0


def _count(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def report(results: dict) -> None:
    m = results["matrix"]
    modes = [k.removeprefix("job_pair_jaccard_") for k in results if k.startswith("job_pair_")]
    job = results[f"job_pair_jaccard_{modes[0]}"]
    lines = [
        f"ratings rows: {results['ratings_rows']:,}; promoter matrix: "
        f"{_count(m.get('users'))} users x {_count(m.get('titles'))} titles, "
        f"{m['promoter_pairs']:,} promoter pairs, {_count(m.get('triples'))} co-promoted "
        f"triples, {m['title_blocks']} title blocks; cores: {results['cores']}; modes give "
        f"identical tables: {results['modes_identical']}",
        "",
        "| measurement | wall s | driver CPU s | peak RSS GiB | rows | notes |",
        "|---|---:|---:|---:|---:|---|",
    ]
    pr = results["job_promoters"]
    lines.append(
        f"| job: promoters table (Spark group-by, Delta write) | {pr['wall_s']} | "
        f"{pr['driver_cpu_s']} | {pr['peak_rss_gib']} | | {m['title_blocks']} title blocks |"
    )
    for mode in modes:
        e = results[f"job_pair_jaccard_{mode}"]
        lines.append(
            f"| job: anime_pair_jaccard, {mode} (Delta write) | {e['wall_s']} | "
            f"{e['driver_cpu_s']} | {e['peak_rss_gib']} | "
            f"{results['anime_pair_jaccard_rows']:,} | {e['tasks']} |"
        )
    role_note = "; ".join(
        f"{mode}: "
        + ", ".join(
            f"{k} {v}"
            for k, v in results[f"job_pair_jaccard_{mode}"]["peak_rss_by_role_gib"].items()
        )
        for mode in modes
    )
    tp = results["job_training_pairs"]
    n_training = sum(results["training_pairs"].values())
    lines.append(
        f"| job: training_pairs (labels, sampling, Delta write) | {tp['wall_s']} | "
        f"{tp['driver_cpu_s']} | {tp['peak_rss_gib']} | {n_training:,} "
        f"| {results['training_pairs']} |"
    )
    if "selfjoin_sample" in results:
        sj = results["selfjoin_sample"]
        lines.append(
            f"| naive self-join, {sj['sample_users']:,} users sample | {sj['wall_s']} | "
            f"{sj['driver_cpu_s']} | {sj['peak_rss_gib']} | {sj['rows']:,} | "
            f"{sj['sample_triples']:,} triples; extrapolated to all: {sj['extrapolated_s']} s "
            f"= {sj['extrapolated_s'] / job['wall_s']:.1f}x the job |"
        )
    for name, label in (
        ("scipy_count_only", "single-process scipy A.T@A + Jaccard, count only"),
        ("scipy_materialised", "single-process scipy A.T@A + Jaccard, rows as numpy arrays"),
        (
            "scipy_parquet",
            "single-process scipy A.T@A + Jaccard + the rows written as Parquet (pyarrow)",
        ),
        ("blocked_kernel_single_process", "job's blocked kernel, one process, no Spark"),
    ):
        if name in results:
            e = results[name]
            ratio = job["wall_s"] / e["wall_s"] if e["wall_s"] else float("nan")
            lines.append(
                f"| {label} | {e['wall_s']} | {e['driver_cpu_s']} | {e['peak_rss_gib']} | "
                f"{e['rows']:,} | job / this = {ratio:.2f} |"
            )
    lines += ["", f"peak RSS by process role (GiB, each its own peak): {role_note}"]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
