"""Exact promoter Jaccard over all title pairs, and the labelled fine-tuning pairs.

Reads ``ratings`` (train split; promoters are ratings >= 9) and ``anime`` (``has_description``);
writes ``promoters`` (one row per title: its promoters, its title block), then from it
``anime_pair_jaccard`` (every pair ``anime_a < anime_b`` sharing at least
``jaccard.min_intersection`` promoters), ``training_pairs`` (the case study's labelled pairs:
``anime_a, anime_b, jaccard, label, split``) and ``copromoted_pairs`` (the graded pairs of the
contrastive recipe), each overwritten. ``jaccard.mode``: ``broadcast`` (the matrix collected
and broadcast), ``tiles`` (title-block tiles on the executors, nothing collected) or ``auto``
(tiles past ``jaccard.broadcast_memory_gb``). Runs the registry's ``jaccard`` stage: recorded in
``pipeline_runs``, skipped when unchanged (``--force`` runs it anyway). Stage code:
``anime_recs.similarity.stage``.

Local:   python jobs/jaccard.py --conf conf/local.yaml [--set jaccard.mode=tiles]
Cluster: spark-submit --master spark://HOST:7077 --packages io.delta:delta-spark_2.13:4.0.0 \\
           jobs/jaccard.py --conf conf/cluster.yaml
"""

from __future__ import annotations

from anime_recs.cli import run_job, run_main


def main(argv: list[str] | None = None) -> int:
    return run_job("jaccard", argv, __doc__)


if __name__ == "__main__":
    run_main(main)
