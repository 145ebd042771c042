"""Fine-tune the bi-encoder on promoter-Jaccard pairs on the driver; track and register it.

Reads ``training_pairs``, ``copromoted_pairs``, ``anime`` and the base encoder's vectors in
``anime_embeddings`` (run ``embed_base`` first); writes no Delta table but one MLflow run, the
model and a new version of ``finetune.registered_model``. Runs the registry's ``finetune``
stage: recorded in ``pipeline_runs``, skipped when the same settings and input contents were
trained already (``--force`` or ``--set finetune.force=true`` trains again); an interrupted run
resumes from its last checkpoint. Stage code: ``anime_recs.training.stage``.

Local:   python jobs/finetune.py --conf conf/local.yaml
Cluster (the training runs on the driver; give it the GPU):
         spark-submit --master spark://HOST:7077 --packages io.delta:delta-spark_2.13:4.0.0 \\
           jobs/finetune.py --conf conf/cluster.yaml
"""

from __future__ import annotations

from anime_recs.cli import run_job, run_main


def main(argv: list[str] | None = None) -> int:
    return run_job("finetune", argv, __doc__)


if __name__ == "__main__":
    run_main(main)
