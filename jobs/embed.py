"""Embed every titled anime's description with each configured embedder.

Reads:  ``anime`` (anime_id, description, has_description; only has_description rows).
Writes: ``anime_embeddings`` (one row per embedder x titled anime, unit-norm vectors; each
        embedder's rows are rewritten with ``replaceWhere embedder = '<name>'`` so the other
        embedders' rows stay untouched; partitioned by ``embedder``) and, for OpenAI
        embedders, ``embedding_cache`` (vectors keyed by (model, text_hash), merged as batches
        complete, so a rerun only pays for texts not cached yet).

Embedders come from ``embed.embedders`` (``embed.run`` picks which to compute; [] = all):
``sentence-transformers`` ones run inside Spark in an iterator pandas UDF (model loaded once per
Python worker; see ``anime_recs.embeddings.sentence``), ``openai`` ones run on the driver with a
bounded thread pool (see ``anime_recs.embeddings.openai_embedder``). ``optional: true``
embedders whose model cannot be resolved (fine-tuned model not registered yet, no
``OPENAI_API_KEY``) are skipped with a warning; the rest of the job runs.

Local:   python jobs/embed.py --conf conf/local.yaml [--set embed.run=[base_minilm_128]]
Cluster: OPENAI_API_KEY=... spark-submit --master spark://HOST:7077 \\
           --packages io.delta:delta-spark_2.13:4.0.0 jobs/embed.py --conf conf/cluster.yaml
         (the key is only needed by the driver: OpenAI calls never run on executors)
GPU:     spark-submit --master spark://HOST:7077 --packages io.delta:delta-spark_2.13:4.0.0 \\
           jobs/embed.py --conf conf/cluster-gpu.yaml
"""

from __future__ import annotations

import logging

from anime_recs import tables
from anime_recs.cli import JobError, job_parser, run_main, session, start_job, step
from anime_recs.config import AppConfig, EmbedderConfig
from anime_recs.lakehouse import read_table, table_version, write_table

log = logging.getLogger("anime_recs.jobs.embed")

ARROW_BATCH_CONF = "spark.sql.execution.arrow.maxRecordsPerBatch"


class EmbedderSkipped(Exception):
    """An optional embedder cannot run (model not resolvable, no API key)."""


def _sql_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _resolve_model(config: AppConfig, spec: str, optional: bool) -> str:
    """Driver-side resolution of a model spec to a folder (or HF id); skip/fail on errors."""
    from anime_recs.models import is_mlflow_uri, resolve_model_path
    from anime_recs.tracking import keep_logging, set_mlflow_uris

    try:
        if is_mlflow_uri(spec):
            set_mlflow_uris(config.mlflow)
        with keep_logging():
            return resolve_model_path(spec)
    except Exception as exc:  # noqa: BLE001 - ModelNotAvailable, ImportError, MlflowException
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        if optional:
            raise EmbedderSkipped(f"model {spec!r} not available ({reason})") from None
        raise JobError(f"model {spec!r} cannot be resolved: {reason}") from None


def embed_sentence_transformer(spark, config: AppConfig, name: str, cfg: EmbedderConfig, texts):
    """anime_embeddings rows for one sentence-transformers embedder (a lazy DataFrame)."""
    from anime_recs.embeddings.sentence import (
        embed_texts,
        local_cores,
        model_fingerprint,
        with_identity,
        worker_threads,
    )
    from anime_recs.models import is_mlflow_uri

    path = _resolve_model(config, cfg.model, cfg.optional)
    master = spark.sparkContext.master
    cores = local_cores(master)
    partitions = config.embed.partitions or spark.sparkContext.defaultParallelism
    if cores is not None:  # local mode: the tasks share this machine's cores
        threads = worker_threads(cores, min(cores, partitions))
        # workers see the driver's files: hand them the folder the driver resolved
        worker_spec = path if is_mlflow_uri(cfg.model) else cfg.model
    else:  # cluster: each task owns spark.task.cpus cores; executors resolve the spec
        threads = int(spark.sparkContext.getConf().get("spark.task.cpus", "1"))
        worker_spec = cfg.model
    log.info(
        "embedder %s: model %s, %d partitions, %d torch threads per worker, max_seq_length %d",
        name,
        cfg.model,
        partitions,
        threads,
        cfg.max_seq_length,
    )
    vectors = embed_texts(
        texts, worker_spec, cfg.max_seq_length, cfg.batch_size, partitions, num_threads=threads
    )
    version = model_fingerprint(path)
    return with_identity(vectors, name, cfg.model, version)


def embed_openai(spark, config: AppConfig, name: str, cfg: EmbedderConfig, texts):
    """anime_embeddings rows for one OpenAI embedder; fills embedding_cache as it goes."""
    from anime_recs.embeddings.cache import (
        CacheWriter,
        cache_model_key,
        missing_texts,
        vectors_from_cache,
    )
    from anime_recs.embeddings.openai_embedder import (
        API_KEY_ENV,
        EmbeddingRequestError,
        RetryPolicy,
        api_key_from_env,
        embed_all,
        l2_normalise,
        make_client,
    )
    from anime_recs.embeddings.sentence import with_identity

    api_key = api_key_from_env()
    if api_key is None:  # optional or not: the rest of the job still runs
        raise EmbedderSkipped(f"{API_KEY_ENV} is not set in the environment")
    lake = config.paths.lake
    model_key = cache_model_key(cfg.model, cfg.dimensions)
    todo = missing_texts(spark, lake, model_key, texts)
    log.info("embedder %s: %d texts not in %s", name, len(todo), tables.EMBEDDING_CACHE)
    if todo:
        client = make_client(api_key, cfg.base_url, cfg.timeout_s)
        writer = CacheWriter(spark, lake, model_key)
        try:
            embed_all(
                client,
                cfg.model,
                todo,
                on_batch=lambda keys, vectors: writer.add(keys, l2_normalise(vectors)),
                dimensions=cfg.dimensions,
                max_batch_inputs=cfg.max_batch_inputs,
                max_batch_tokens=cfg.max_batch_tokens,
                max_concurrency=cfg.max_concurrency,
                policy=RetryPolicy(cfg.max_retries, cfg.backoff_base_s, cfg.backoff_max_s),
            )
        except EmbeddingRequestError as exc:
            raise JobError(f"embedder {name}: {exc}") from None
        finally:
            writer.flush()  # whatever completed is paid for: keep it
            client.close()
    vectors = vectors_from_cache(spark, lake, model_key, texts)
    return with_identity(vectors, name, cfg.model, model_key if cfg.dimensions else None)


def main(argv: list[str] | None = None) -> int:
    args = job_parser(__doc__).parse_args(argv)
    config = start_job("embed", args)
    spark = session(config)
    lake = config.paths.lake
    names = config.embed.run or sorted(config.embed.embedders)
    if not names:
        raise JobError("embed.embedders is empty: nothing to embed")

    with step("read anime") as facts:
        from anime_recs.embeddings.text import titles_to_embed

        facts["version"] = table_version(spark, lake, tables.ANIME)
        anime = read_table(spark, lake, tables.ANIME)
        try:
            texts = titles_to_embed(anime).cache()
        except ValueError as exc:
            raise JobError(str(exc)) from None
        facts["titles"] = texts.count()

    previous_batch = spark.conf.get(ARROW_BATCH_CONF)
    spark.conf.set(ARROW_BATCH_CONF, str(config.embed.arrow_batch_size))
    done, skipped = [], []
    try:
        for name in names:
            cfg = config.embed.embedders[name]
            with step(f"embed {name}") as facts:
                try:
                    if cfg.kind == "openai":
                        rows = embed_openai(spark, config, name, cfg, texts)
                    else:
                        rows = embed_sentence_transformer(spark, config, name, cfg, texts)
                except EmbedderSkipped as why:
                    log.warning("embedder %s skipped: %s", name, why)
                    skipped.append(name)
                    continue
                version = write_table(
                    rows,
                    lake,
                    tables.ANIME_EMBEDDINGS,
                    tables.ANIME_EMBEDDINGS_SCHEMA,
                    replace_where=f"embedder = {_sql_literal(name)}",
                    partition_by=["embedder"],
                )
                written = (
                    read_table(spark, lake, tables.ANIME_EMBEDDINGS, version=version)
                    .filter(f"embedder = {_sql_literal(name)}")
                    .count()
                )
                facts.update(table=tables.ANIME_EMBEDDINGS, version=version, rows=written)
                done.append(name)
    finally:
        spark.conf.set(ARROW_BATCH_CONF, previous_batch)
        texts.unpersist()
    log.info(
        "embed: wrote %s for %s (skipped: %s) -> version %s",
        tables.ANIME_EMBEDDINGS,
        done or "none",
        skipped or "none",
        table_version(spark, lake, tables.ANIME_EMBEDDINGS),
    )
    return 0


if __name__ == "__main__":
    run_main(main)
