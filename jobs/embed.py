"""Embed every titled anime's description with each configured embedder.

Reads ``anime`` (and, for embedders of registered models, the model version); writes
``anime_embeddings`` (each embedder's rows replaced, the others kept) and, for OpenAI embedders,
``embedding_cache``. ``embed.run`` picks the embedders ([] = all); optional ones whose model
cannot be resolved are skipped with a warning. Runs the registry's ``embed_base`` stage (base
models) and then ``embed_finetuned`` (registered models), each recorded in ``pipeline_runs``
and skipped when unchanged (``--force`` runs them anyway). Stage code:
``anime_recs.embeddings.stage``.

Local:   python jobs/embed.py --conf conf/local.yaml [--set embed.run=[base_minilm_128]]
Cluster: OPENAI_API_KEY=... spark-submit --master spark://HOST:7077 \\
           --packages io.delta:delta-spark_2.13:4.0.0 jobs/embed.py --conf conf/cluster.yaml
         (the key is only needed by the driver: OpenAI calls never run on executors)
GPU:     spark-submit --master spark://HOST:7077 --packages io.delta:delta-spark_2.13:4.0.0 \\
           jobs/embed.py --conf conf/cluster-gpu.yaml
"""

from __future__ import annotations

from anime_recs.cli import run_job, run_main


def main(argv: list[str] | None = None) -> int:
    return run_job("embed", argv, __doc__)


if __name__ == "__main__":
    run_main(main)
