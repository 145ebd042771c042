"""Exact promoter Jaccard over all title pairs, and the labelled fine-tuning pairs.

Reads ``ratings`` (train split; promoters are ratings >= 9) and ``anime`` (``has_description``);
writes ``anime_pair_jaccard`` (every pair ``anime_a < anime_b`` sharing at least
``jaccard.min_intersection`` promoters) and ``training_pairs`` (``anime_a, anime_b, jaccard,
label, split``), both overwritten. Stage code: ``anime_recs.similarity.stage``.

Local:   python jobs/jaccard.py --conf conf/local.yaml [--set jaccard.title_blocks=16]
Cluster: spark-submit --master spark://HOST:7077 --packages io.delta:delta-spark_2.13:4.0.0 \\
           jobs/jaccard.py --conf conf/cluster.yaml
"""

from __future__ import annotations

from anime_recs.cli import job_parser, run_main, session, start_job
from anime_recs.similarity import stage


def main(argv: list[str] | None = None) -> int:
    config = start_job("jaccard", job_parser(__doc__).parse_args(argv))
    stage.run(session(config), config)
    return 0


if __name__ == "__main__":
    run_main(main)
