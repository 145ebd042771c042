"""Recommend titles to every test user and score the lists on warm and cold titles, with CIs.

Reads ``ratings``, ``anime_pair_jaccard``, ``anime_embeddings`` (when there: each embedder is a
recommender) and ``anime`` (when there: title names on the report page); writes
``anime_neighbors``, ``user_scores``, ``recommendations`` and ``evaluation``, a report with
charts and the page ``index.html`` in ``paths.reports`` and one MLflow run. Runs the
registry's ``recommend`` stage: recorded in ``pipeline_runs`` like a pipeline stage, so a later
pipeline run reruns it unless its settings and inputs are the same (``--force`` runs it
anyway). Stage code: ``anime_recs.recommend.stage``.

Local:   python jobs/recommend.py --conf conf/local.yaml [--set recommend.k=5]
Cluster: spark-submit --master spark://HOST:7077 --packages io.delta:delta-spark_2.13:4.0.0 \\
           jobs/recommend.py --conf conf/cluster.yaml
"""

from __future__ import annotations

from anime_recs.cli import run_job, run_main


def main(argv: list[str] | None = None) -> int:
    return run_job("recommend", argv, __doc__)


if __name__ == "__main__":
    run_main(main)
