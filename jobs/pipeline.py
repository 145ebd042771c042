"""Run the whole batch pipeline with one config and session, resuming after a failure.

Stages and their tables: ``anime_recs.stages`` (``--list`` prints them). Every stage's run is
recorded in ``pipeline_runs`` with a fingerprint of its config and inputs; a rerun skips the
unchanged stages (``--force`` runs them anyway), so after a failure it resumes from the failed
stage. Reads the raw MAL files (generated with ``--generate SCALE`` when ``paths.raw`` lacks
them), writes every stage's tables, prints the evaluation table.

Local:   python jobs/pipeline.py --conf conf/local.yaml --generate sample
Cluster: spark-submit --master spark://HOST:7077 --packages io.delta:delta-spark_2.13:4.0.0 \\
           jobs/pipeline.py --conf conf/cluster.yaml
"""

from __future__ import annotations

import time

from anime_recs import pipeline, stages
from anime_recs.cli import job_parser, run_main, session, start_job
from malgen.generate import SCALES, generate_dataset  # test-data generator (not in anime_recs)


def generate(out: str, scale: str, seed: int) -> None:
    """The generator's files at a named scale (what ``jobs/generate.py --scale`` writes)."""
    sizes = SCALES[scale]
    generate_dataset(out, sizes.users, sizes.titles, sizes.ratings, seed=seed)


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(__doc__)
    parser.add_argument("--generate", choices=sorted(SCALES), help="generate raw data if missing")
    parser.add_argument("--seed", type=int, default=42, help="generator seed (with --generate)")
    parser.add_argument("--only", nargs="+", default=[], metavar="STAGE", help="run only these")
    parser.add_argument("--skip", nargs="+", default=[], metavar="STAGE", help="skip stages")
    parser.add_argument("--force", action="store_true", help="rerun stages even if unchanged")
    parser.add_argument("--list", action="store_true", help="print the stages and exit")
    args = parser.parse_args(argv)
    if args.list:
        print(stages.catalogue())
        return 0
    config = start_job("pipeline", args)
    pipeline.check_stage_names(config, args.only + args.skip)
    pipeline.ensure_raw_data(config, args.generate, args.seed, generate)
    spark, start = session(config, "pipeline"), time.perf_counter()
    timings = pipeline.run_pipeline(spark, config, args.only, args.skip, args.force)
    print("\n" + pipeline.timings_table(timings, time.perf_counter() - start))
    if summary := pipeline.evaluation_summary(spark, config):
        print("\n" + summary)
    return 0


if __name__ == "__main__":
    run_main(main)
