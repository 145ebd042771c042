"""Compare two runs' ``evaluation`` tables: is each NPS@N of the other run inside the base run's
95% CI, and how far do NPS and precision move, per recommender.

    python -m tools.compare_evaluations BASE_LAKE OTHER_LAKE [--base-version V]

For example, the int8 engine against the torch run of the same real rating set (both from
``make quality``, the second with the engine overrides): docs/performance.md.
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_lake")
    parser.add_argument("other_lake")
    parser.add_argument("--base-version", type=int, help="Delta version of the base table")
    parser.add_argument("--conf", default="conf/local.yaml", help="config (its spark settings)")
    args = parser.parse_args(argv)

    from anime_recs.config import load_config
    from anime_recs.lakehouse import read_table
    from anime_recs.spark import get_spark
    from anime_recs.tables import EVALUATION

    sets = ["spark.master=local[2]", "spark.shuffle_partitions=2"]
    spark = get_spark(load_config(args.conf, sets).spark, "ERROR", "compare-evaluations")
    base = read_table(spark, args.base_lake, EVALUATION, version=args.base_version).collect()
    other = read_table(spark, args.other_lake, EVALUATION).collect()
    base_rows = {(r.recommender, r.n): r for r in base}
    lines = [
        "| recommender | N compared | NPS@N outside the base CI | max abs NPS change | "
        "precision change (min..max) |",
        "|---|---:|---:|---:|---|",
    ]
    for recommender in sorted({r.recommender for r in other}):
        pairs = [
            (base_rows[(r.recommender, r.n)], r)
            for r in other
            if r.recommender == recommender and (r.recommender, r.n) in base_rows
        ]
        if not pairs:
            continue
        outside = [o.n for b, o in pairs if not b.nps_ci_low <= o.nps <= b.nps_ci_high]
        nps = max(abs(o.nps - b.nps) for b, o in pairs)
        precision = [o.precision - b.precision for b, o in pairs]
        lines.append(
            f"| {recommender} | {len(pairs)} | {outside or 'none'} | {nps:.3f} | "
            f"{min(precision):+.4f}..{max(precision):+.4f} |"
        )
    spark.stop()
    print("\n".join(lines))  # noqa: T201 - a command-line tool
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
