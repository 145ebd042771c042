"""Where the Jaccard job's write time goes (issue 4); a script, not a test.

Two comparisons, each within one run on the same lake:

1. ``layouts`` (default): the job's pair DataFrame (``pair_jaccard`` on the lake's ``ratings``)
   is written to a scratch Delta table under each table layout, interleaved and repeated, plus
   a no-op sink (the computation and the Arrow hand-over alone). Layouts are Delta table
   properties, the mechanism ``tables.TABLE_PROPERTIES`` uses for ``anime_pair_jaccard``.
2. ``--cold-scan``: Delta's first access to a table in a fresh process (file-list rebuild,
   ``spark.databricks.delta.snapshotPartitions``) for each value, one process per run.

    .venv/bin/python -m benchmarks.bench_jaccard_write --lake $FULL/lake --repeats 2
    .venv/bin/python -m benchmarks.bench_jaccard_write --lake $FULL/lake --cold-scan

Prints a markdown table and writes JSON to ``bench/jaccard-write-<time>.json``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from anime_recs import tables
from anime_recs.cli import session, setup_logging
from anime_recs.config import load_config
from anime_recs.lakehouse import conform, ensure_properties, read_table, table_path
from anime_recs.similarity.jaccard import pair_jaccard
from anime_recs.similarity.promoters import promoters
from benchmarks.bench_output import write_results

REPO_ROOT = Path(__file__).resolve().parents[1]

STATS_2 = {"delta.dataSkippingNumIndexedCols": "2"}
LAYOUTS: dict[str, dict[str, str] | None] = {
    "noop sink (compute + hand-over only)": None,
    "Delta defaults (statistics on all 7 columns)": {},
    "statistics on anime_a, anime_b": STATS_2,
    "+ Parquet v2 pages with dictionaries": {**STATS_2, "parquet.writer.version": "v2"},
    "+ Parquet v2 pages, no dictionaries (the contract)": tables.TABLE_PROPERTIES[
        tables.ANIME_PAIR_JACCARD
    ],
}


def folder_mb(path: str) -> float:
    return round(sum(p.stat().st_size for p in Path(path).rglob("*.parquet")) / 1e6, 1)


def run_layouts(args: argparse.Namespace) -> dict:
    config = load_config(args.conf, [f"paths.lake={args.lake}"])
    spark = session(config, "INFO", "bench-jaccard-write")
    ratings = read_table(spark, args.lake, tables.RATINGS)
    cfg = config.jaccard
    pairs, plan = pair_jaccard(
        spark, promoters(ratings), 1, cfg.title_blocks, cfg.max_block_cells, cfg.device
    )
    pairs = conform(pairs, tables.ANIME_PAIR_JACCARD_SCHEMA)
    scratch = tempfile.mkdtemp(prefix="bench-jaccard-write-", dir=args.scratch)
    times: dict[str, list[float]] = {name: [] for name in LAYOUTS}
    sizes: dict[str, float] = {}
    try:
        pairs.write.format("noop").mode("overwrite").save()  # warm-up: workers, broadcast
        order = list(LAYOUTS)
        for rep in range(args.repeats):
            for name in order if rep % 2 == 0 else order[::-1]:
                properties = LAYOUTS[name]
                lake = f"{scratch}/{rep}"
                table = f"t{order.index(name)}"
                start = time.perf_counter()
                if properties is None:
                    pairs.write.format("noop").mode("overwrite").save()
                else:
                    if properties:
                        schema = tables.ANIME_PAIR_JACCARD_SCHEMA
                        ensure_properties(spark, lake, table, schema, properties)
                    pairs.write.format("delta").mode("overwrite").save(table_path(lake, table))
                times[name].append(round(time.perf_counter() - start, 1))
                if properties is not None:
                    sizes[name] = folder_mb(table_path(lake, table))
                    shutil.rmtree(table_path(lake, table))
                print(f"  {name}: {times[name][-1]} s", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        plan.release()
        spark.stop()
    rows = [
        {
            "layout": name,
            "properties": LAYOUTS[name],
            "wall_s": times[name],
            "median_s": round(statistics.median(times[name]), 1),
            "mb": sizes.get(name),
        }
        for name in LAYOUTS
    ]
    print("\n| layout | wall s (each run) | median s | Parquet MB |")
    print("|---|---|---:|---:|")
    for r in rows:
        print(f"| {r['layout']} | {r['wall_s']} | {r['median_s']} | {r['mb'] or ''} |")
    return {"lake": args.lake, "repeats": args.repeats, "rows": rows}


COLD_SCAN = """
import sys, time
from anime_recs.config import load_config
from anime_recs.spark import get_spark
from anime_recs.lakehouse import read_table
extra = "spark.extra={spark.databricks.delta.snapshotPartitions: '%s'}" % sys.argv[2]
spark = get_spark(load_config(sys.argv[3], [extra]).spark, "ERROR")
start = time.perf_counter()
read_table(spark, sys.argv[1], "anime").select("anime_id").toArrow()
print("first scan", time.perf_counter() - start)
"""


def run_cold_scan(args: argparse.Namespace) -> dict:
    rows = []
    for rep in range(args.repeats):
        for value in args.snapshot_partitions if rep % 2 == 0 else args.snapshot_partitions[::-1]:
            out = subprocess.run(
                [sys.executable, "-c", COLD_SCAN, args.lake, value, args.conf],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            seconds = round(float(out.split("first scan")[-1]), 2)
            rows.append({"snapshotPartitions": value, "first_scan_s": seconds})
            print(f"  snapshotPartitions={value}: first scan of anime {seconds} s", flush=True)
    print("\n| snapshotPartitions | first scan s (each run) | median s |")
    print("|---:|---|---:|")
    for value in args.snapshot_partitions:
        runs = [r["first_scan_s"] for r in rows if r["snapshotPartitions"] == value]
        print(f"| {value} | {runs} | {round(statistics.median(runs), 2)} |")
    return {"lake": args.lake, "cold_scan": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", required=True, help="lake with ingested ratings and anime")
    parser.add_argument("--conf", default=str(REPO_ROOT / "conf" / "local.yaml"))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--scratch", default=None, help="folder for the scratch tables")
    parser.add_argument("--cold-scan", action="store_true")
    parser.add_argument("--snapshot-partitions", nargs="+", default=["1", "50"])
    parser.add_argument("--out", default=str(REPO_ROOT / "bench"))
    args = parser.parse_args(argv)
    setup_logging()
    results = run_cold_scan(args) if args.cold_scan else run_layouts(args)
    write_results(args.out, "jaccard-write", results)
    return 0


if __name__ == "__main__":
    main()
