"""Fine-tune the bi-encoder on promoter-Jaccard pairs on the driver; track and register it.

Reads ``training_pairs``, ``copromoted_pairs``, ``anime`` and the base encoder's vectors in
``anime_embeddings`` (run ``embed_base`` first); writes no Delta table but one MLflow run, the
model and a new version of ``finetune.registered_model``. Skipped when the same settings and input
contents were trained and registered already (``--set finetune.force=true`` trains again);
an interrupted run resumes from its last checkpoint. Stage code: ``anime_recs.training.stage``.

Local:   python jobs/finetune.py --conf conf/local.yaml
Cluster (the training runs on the driver; give it the GPU):
         spark-submit --master spark://HOST:7077 --packages io.delta:delta-spark_2.13:4.0.0 \\
           jobs/finetune.py --conf conf/cluster.yaml
"""

from __future__ import annotations

from anime_recs.cli import job_parser, run_main, session, start_job
from anime_recs.training import stage


def main(argv: list[str] | None = None) -> int:
    config = start_job("finetune", job_parser(__doc__).parse_args(argv))
    stage.run(session(config, "finetune"), config)
    return 0


if __name__ == "__main__":
    run_main(main)
