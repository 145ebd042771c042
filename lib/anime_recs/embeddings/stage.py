"""The embed stages: vectors of every titled anime's description, one embedder at a time.

Reads ``anime``; writes ``anime_embeddings`` (each embedder's rows rewritten with
``replaceWhere embedder = '<name>'``, the others untouched) and, for OpenAI embedders,
``embedding_cache`` (merged as batches complete, so a rerun only pays for missing texts).

``sentence-transformers`` embedders run inside Spark in an iterator pandas UDF
(:mod:`anime_recs.embeddings.sentence`) for the titles whose (encoder version, ``text_hash``)
has no vector of that embedder yet (the others are reused, so a scheduled rerun after a few new
titles embeds only those; a new model version or ``max_seq_length`` re-embeds all); each
embedder's step logs how many were reused and computed. ``openai`` ones run on the driver
with a bounded thread pool (:mod:`anime_recs.embeddings.openai_embedder`). ``optional``
embedders whose model cannot be resolved (fine-tuned model not registered yet, no
``OPENAI_API_KEY``) are skipped with a warning. The pipeline runs the embedders in two stages:
those of base models before the fine-tune, those of registered (MLflow) models after it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from anime_recs import tables
from anime_recs.config import (
    AppConfig,
    OpenAIEmbedderConfig,
    SentenceTransformersEmbedderConfig,
)
from anime_recs.embeddings.cache import (
    CacheWriter,
    cache_model_key,
    missing_texts,
    vectors_from_cache,
)
from anime_recs.embeddings.encode import SPARK_FILES_PREFIX, local_cores, worker_threads
from anime_recs.embeddings.engine import engine_tag, export_archive, exported_folder
from anime_recs.embeddings.openai_embedder import (
    API_KEY_ENV,
    EmbeddingRequestError,
    api_key_from_env,
    embed_all,
    l2_normalise,
    make_client,
)
from anime_recs.embeddings.sentence import (
    encode_partitions,
    encoder_version,
    model_fingerprint,
    partition_sizes,
    partition_texts,
    split_reusable,
    with_identity,
)
from anime_recs.embeddings.text import titles_to_embed
from anime_recs.errors import JobError
from anime_recs.lakehouse import read_table, table_exists, table_version, write_table
from anime_recs.models import (
    is_mlflow_uri,
    model_cache_root,
    pinned_model_uri,
    resolve_model_path,
)
from anime_recs.runlog import StageRun
from anime_recs.steps import step
from anime_recs.tracking import keep_logging, set_mlflow_uris

log = logging.getLogger(__name__)

ARROW_BATCH_CONF = "spark.sql.execution.arrow.maxRecordsPerBatch"


class EmbedderSkipped(Exception):
    """An optional embedder cannot run (model not resolvable, no API key)."""


def _sql_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _resolve_model(config: AppConfig, spec: str, optional: bool) -> str:
    """Driver-side resolution of a model spec to a folder (or HF id); skip/fail on errors."""
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


def embed_sentence_transformer(
    spark: SparkSession,
    config: AppConfig,
    name: str,
    cfg: SentenceTransformersEmbedderConfig,
    texts: DataFrame,
    counts: dict,
) -> DataFrame:
    """anime_embeddings rows for one sentence-transformers embedder (a lazy DataFrame).

    Titles whose (encoder version, ``text_hash``) already has a vector of this embedder are
    reused (:func:`~anime_recs.embeddings.sentence.split_reusable`); ``counts`` gets
    ``reused``, an accumulator ``encoded`` (texts the encoder computed) and ``cached`` (the
    frames to unpersist once written).

    Thread policy: in local mode the tasks share this machine's cores, so each Python worker
    gets its share (:func:`worker_threads`); on a cluster each task owns ``spark.task.cpus``.
    """
    path = _resolve_model(config, cfg.model, cfg.optional)
    fingerprint = model_fingerprint(path)
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
    engine = engine_tag(cfg.backend, cfg.quantize)
    version = encoder_version(fingerprint, cfg.max_seq_length, engine)
    lake = config.paths.lake
    existing = None
    if table_exists(spark, lake, tables.ANIME_EMBEDDINGS):
        existing = read_table(spark, lake, tables.ANIME_EMBEDDINGS)
    reused, todo = split_reusable(texts, existing, name, version)
    # both are read again by the write after this table's replaceWhere: materialise them now;
    # the texts to encode are cached already spread over the tasks, so the shuffle runs once
    spread = partition_texts(todo, partitions).cache()
    counts["cached"] = [spread]
    if reused is not None:
        reused = reused.cache()
        counts["cached"].append(reused)
    counts["reused"] = reused.count() if reused is not None else 0
    sizes = partition_sizes(spread)
    to_compute = sum(sizes.values())
    log.info(
        "embedder %s: model %s (version %s, %s %s), %d partitions, %d threads per worker, "
        "max_seq_length %d: %d titles reused, %d to compute",
        name,
        cfg.model,
        version,
        cfg.backend,
        cfg.quantize,
        partitions,
        threads,
        cfg.max_seq_length,
        counts["reused"],
        to_compute,
    )
    encoded = spark.sparkContext.accumulator(0)
    counts["encoded"] = encoded
    vectors = None
    if to_compute or reused is None:
        if cfg.backend == "onnx":  # exported (or found in the cache) only when there is work
            worker_spec = _onnx_worker_spec(spark, name, path, fingerprint, cfg.quantize, cores)
        vectors = encode_partitions(
            spread,
            sizes,
            worker_spec,
            cfg.max_seq_length,
            cfg.batch_size,
            num_threads=threads,
            encoded=encoded,
            backend=cfg.backend,
            quantize=cfg.quantize,
        )
    if reused is not None:
        vectors = reused if vectors is None else vectors.unionByName(reused)
    return with_identity(vectors, name, cfg.model, version)


def _onnx_worker_spec(
    spark: SparkSession,
    name: str,
    path: str,
    fingerprint: str | None,
    quantize: str,
    local_cores: int | None,
) -> str:
    """The ONNX export the workers load: made once per model content on the driver
    (:func:`~anime_recs.embeddings.engine.exported_folder`); in local mode its folder, on a
    cluster shipped to the executors as an archive with ``SparkContext.addArchive`` (named by
    the export, so a new model version is a new archive)."""
    if fingerprint is None:
        raise JobError(f"embedder {name}: backend onnx needs a local or registered model folder")
    with keep_logging():
        folder = exported_folder(path, fingerprint, quantize, model_cache_root())
    if local_cores is not None:
        return folder
    archive = export_archive(folder, quantize)
    shipped = {Path(f).name for f in spark.sparkContext.listArchives}
    if Path(archive).name not in shipped:
        spark.sparkContext.addArchive(archive)
    return SPARK_FILES_PREFIX + Path(archive).name


def embed_openai(
    spark: SparkSession, config: AppConfig, name: str, cfg: OpenAIEmbedderConfig, texts: DataFrame
) -> DataFrame:
    """anime_embeddings rows for one OpenAI embedder; fills embedding_cache as it goes."""
    api_key = api_key_from_env()
    if api_key is None:  # optional or not: the rest of the job still runs
        raise EmbedderSkipped(f"{API_KEY_ENV} is not set in the environment")
    lake = config.paths.lake
    model_key = cache_model_key(cfg.model, cfg.dimensions)
    todo = missing_texts(spark, lake, model_key, texts)
    log.info("embedder %s: %d texts not in %s", name, len(todo), tables.EMBEDDING_CACHE)
    if todo:
        client = make_client(api_key, cfg.base_url, cfg.timeout_s, cfg.max_retries)
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
            )
        except EmbeddingRequestError as exc:
            raise JobError(f"embedder {name}: {exc}") from None
        finally:
            writer.flush()  # whatever completed is paid for: keep it
            client.close()
    vectors = vectors_from_cache(spark, lake, model_key, texts)
    return with_identity(vectors, name, cfg.model, model_key if cfg.dimensions else None)


def configured_embedders(config: AppConfig) -> list[str]:
    """The embedders this config computes: ``embed.run``, or all in file order."""
    return list(config.embed.run or config.embed.embedders)


def uses_registered_model(config: AppConfig, name: str) -> bool:
    """True for an embedder of an MLflow model, which the fine-tune stage produces."""
    return is_mlflow_uri(config.embed.embedders[name].model)


def base_embedders(config: AppConfig) -> list[str]:
    return [n for n in configured_embedders(config) if not uses_registered_model(config, n)]


def finetuned_embedders(config: AppConfig) -> list[str]:
    return [n for n in configured_embedders(config) if uses_registered_model(config, n)]


def registered_model_versions(config: AppConfig) -> dict[str, str]:
    """Each fine-tuned embedder's model as the immutable URI it names now
    (:func:`anime_recs.models.pinned_model_uri`, the resolver the embedding itself uses), or
    ``"unavailable"``: an input of the stage's fingerprint, so a new version behind ``latest``
    or a moved alias runs the stage again."""
    import mlflow

    out = {}
    with keep_logging():
        set_mlflow_uris(config.mlflow)
        client = mlflow.MlflowClient()
        for name in finetuned_embedders(config):
            try:
                out[name] = pinned_model_uri(client, config.embed.embedders[name].model)
            except Exception:  # noqa: BLE001 - not registered yet is a valid state
                out[name] = "unavailable"
    return out


def run_base(spark: SparkSession, config: AppConfig, run: StageRun) -> None:
    """The ``embed_base`` stage: the embedders of base models (before the fine-tune)."""
    embed(spark, config, base_embedders(config), run.versions[tables.ANIME])


def run_finetuned(spark: SparkSession, config: AppConfig, run: StageRun) -> None:
    """The ``embed_finetuned`` stage: the embedders of registered (MLflow) models."""
    embed(spark, config, finetuned_embedders(config), run.versions[tables.ANIME])


def embed(
    spark: SparkSession, config: AppConfig, names: list[str], anime_version: int | None
) -> None:
    """Embed the titles of ``anime`` (at ``anime_version``) with each of ``names`` in turn and
    rewrite its rows."""
    lake = config.paths.lake
    if not names:
        raise JobError("embed.embedders is empty: nothing to embed")

    with step("read anime") as facts:
        facts["version"] = anime_version
        anime = read_table(spark, lake, tables.ANIME, anime_version)
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
                counts: dict = {}
                try:
                    if isinstance(cfg, OpenAIEmbedderConfig):
                        rows = embed_openai(spark, config, name, cfg, texts)
                    else:
                        rows = embed_sentence_transformer(spark, config, name, cfg, texts, counts)
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
                if "encoded" in counts:  # sentence-transformers: what was reused, computed
                    facts.update(reused=counts["reused"], computed=counts["encoded"].value)
                for frame in counts.get("cached", []):
                    frame.unpersist()
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
