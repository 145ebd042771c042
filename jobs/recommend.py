"""Recommend titles to every test user and score the lists: neighbours, NPS@N, baselines, CIs.

Reads ``ratings``, ``anime_embeddings``, ``anime_pair_jaccard``; writes ``anime_neighbors``,
``user_scores``, ``recommendations`` and ``evaluation``, a report with charts in
``paths.reports`` and one MLflow run. Stage code: ``anime_recs.recommend.stage``.

Local:   python jobs/recommend.py --conf conf/local.yaml [--set recommend.k=5]
Cluster: spark-submit --master spark://HOST:7077 --packages io.delta:delta-spark_2.13:4.0.0 \\
           jobs/recommend.py --conf conf/cluster.yaml
"""

from __future__ import annotations

from anime_recs.cli import job_parser, run_main, session, start_job
from anime_recs.recommend import stage


def main(argv: list[str] | None = None) -> int:
    config = start_job("recommend", job_parser(__doc__).parse_args(argv))
    stage.run(session(config, "recommend"), config)
    return 0


if __name__ == "__main__":
    run_main(main)
