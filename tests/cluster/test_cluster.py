"""spark-submit on a real standalone cluster (1 master, 2 workers on 127.0.0.1).

1. a self-contained job proves the shipping: executors import ``anime_recs`` from the zip
   given to ``--py-files``, on both workers, from their own work dirs;
2. ``jobs/pipeline.py`` runs every stage on generated ``tiny`` data against a Delta lake in a
   temp folder; the tables are checked (schemas, counts, an exact Jaccard recomputation);
3. a worker is SIGKILLed while ``jobs/jaccard.py`` runs its blocks (``jaccard.mode``
   ``broadcast``) or its tiles (``tiles``); the job still finishes and its tables equal a
   local-mode run of the same job on the same inputs.
"""

from __future__ import annotations

import re
import shutil
import signal
import time
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import functions as F
from tools.standalone_cluster import REPO_ROOT, Submit, make_submit, tail

from anime_recs import runlog, tables
from anime_recs.lakehouse import read_table, table_exists
from tests.helpers import load_job, output_settings, set_args

pytestmark = pytest.mark.cluster

HERE = Path(__file__).resolve().parent
JOBS = REPO_ROOT / "jobs"
LOCAL_CONF = str(REPO_ROOT / "conf" / "local.yaml")
PIPELINE_TIMEOUT_S = 1800  # generous: the shared 2-core machine can be very loaded


def small_settings(root: Path) -> list[str]:
    """``--set`` overrides for a tiny, fast run with every output under ``root``."""
    sets = {
        "paths.raw": root / "raw",
        **output_settings(root),
        "spark.shuffle_partitions": 2,
        "embed.partitions": 2,
        "finetune.max_train_pairs": 64,
        "finetune.max_seq_length": 64,
        "embed.embedders.finetuned_minilm.max_seq_length": 64,
        # the base encoder on the CPU-cluster engine: the driver exports it once and ships the
        # export to the executors (SparkContext.addArchive)
        "embed.embedders.base_minilm_128.backend": "onnx",
        "embed.embedders.base_minilm_128.quantize": "int8",
        "recommend.bootstrap_samples": 50,
    }
    return set_args(sets)


def columns_and_types(schema) -> list[tuple[str, str]]:
    """Names and types (nullability aside: Delta keeps what the writer had)."""
    return [(f.name, f.dataType.simpleString()) for f in schema.fields]


def promoter_jaccard_reference(ratings: pd.DataFrame) -> pd.DataFrame:
    """Independent recomputation: promoters = train ratings >= 9; every co-promoted pair."""
    promo = ratings[(ratings["split"] == tables.TRAIN) & (ratings["rating"] >= 9)]
    users = promo.groupby("anime_id")["user_id"].apply(frozenset).to_dict()
    rows = []
    for a, b in combinations(sorted(users), 2):
        inter = len(users[a] & users[b])
        if inter:
            union = len(users[a]) + len(users[b]) - inter
            rows.append((a, b, len(users[a]), len(users[b]), inter, union, inter / union))
    return pd.DataFrame(rows, columns=[f.name for f in tables.ANIME_PAIR_JACCARD_SCHEMA.fields])


def sorted_rows(df) -> list[tuple]:
    return sorted(tuple(r) for r in df.collect())


# --------------------------------------------------------------------------------------------
# 1. shipping the package
# --------------------------------------------------------------------------------------------


def test_smoke_job_runs_on_both_workers_with_the_shipped_package(submit, spark, tmp_path):
    lake = tmp_path / "lake"
    out = submit.run(HERE / "smoke_job.py", [str(lake), "1000"], tmp_path / "smoke.log")
    assert f"master={submit.cluster.url}" in out

    df = read_table(spark, str(lake), "smoke")
    assert df.count() == 1000
    assert df.agg(F.sum("square")).first()[0] == sum(i * i for i in range(1000))
    # executors imported the package from the zip shipped with --py-files, not the repo
    files = {r[0] for r in df.select("anime_recs_file").distinct().collect()}
    assert files and all(submit.py_files.name in f for f in files), files
    # the executors ran in the workers' work dirs: both workers took part
    cwds = {r[0] for r in df.select("executor_cwd").distinct().collect()}
    assert {Path(c).parts[-3] for c in cwds} == {"worker0", "worker1"}, cwds


# --------------------------------------------------------------------------------------------
# 2. the whole pipeline
# --------------------------------------------------------------------------------------------


@dataclass
class PipelineRun:
    root: Path
    lake: str
    output: str


@pytest.fixture(scope="module")
def pipeline_run(standalone_cluster, py_files, tmp_path_factory) -> PipelineRun:
    """``jobs/pipeline.py --generate tiny`` spark-submitted once to the cluster."""
    root = tmp_path_factory.mktemp("pipeline")
    submit = make_submit(standalone_cluster, py_files, root)
    args = ["--conf", LOCAL_CONF, "--generate", "tiny", "--seed", "42", *small_settings(root)]
    # executors resolve models:/anime_encoder/... (embed_finetuned) from MLflow themselves, so
    # they need the tracking URI in their environment (on a real cluster: the MLflow server)
    conf = {"spark.executorEnv.MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlruns.db'}"}
    started = time.monotonic()
    output = submit.run(
        JOBS / "pipeline.py", args, root / "pipeline.log", conf=conf, timeout=PIPELINE_TIMEOUT_S
    )
    print(f"pipeline on the standalone cluster: {time.monotonic() - started:.0f}s")
    return PipelineRun(root, str(root / "lake"), output)


def test_pipeline_writes_every_table_with_its_schema(pipeline_run, spark):
    lake = pipeline_run.lake
    expected = {
        tables.ANIME: tables.ANIME_SCHEMA,
        tables.RATINGS: tables.RATINGS_SCHEMA,
        tables.REJECTED_ROWS: tables.REJECTED_ROWS_SCHEMA,
        tables.ANIME_PAIR_JACCARD: tables.ANIME_PAIR_JACCARD_SCHEMA,
        tables.TRAINING_PAIRS: tables.TRAINING_PAIRS_SCHEMA,
        tables.ANIME_EMBEDDINGS: tables.ANIME_EMBEDDINGS_SCHEMA,
        tables.ANIME_NEIGHBORS: tables.ANIME_NEIGHBORS_SCHEMA,
        tables.RECOMMENDATIONS: tables.RECOMMENDATIONS_SCHEMA,
        tables.EVALUATION: tables.EVALUATION_SCHEMA,
        tables.PIPELINE_RUNS: tables.PIPELINE_RUNS_SCHEMA,
    }
    for name, schema in expected.items():
        assert table_exists(spark, lake, name), f"{name} missing"
        df = read_table(spark, lake, name)
        assert columns_and_types(df.schema) == columns_and_types(schema), name
    assert "Report: " in pipeline_run.output and "index.html" in pipeline_run.output

    runs = read_table(spark, lake, tables.PIPELINE_RUNS).select("stage", "status").collect()
    stages = {r["stage"]: r["status"] for r in runs}
    assert set(stages) >= {"ingest", "jaccard", "embed_base", "finetune", "recommend"}
    assert set(stages.values()) == {runlog.SUCCEEDED}, stages


def test_pipeline_tables_match_the_raw_data_and_a_local_jaccard(pipeline_run, spark):
    lake, raw = pipeline_run.lake, pipeline_run.root / "raw"
    raw_ratings = pd.read_csv(raw / "rating_complete.csv")
    ratings = read_table(spark, lake, tables.RATINGS)
    rejected = read_table(spark, lake, tables.REJECTED_ROWS)
    rejected_ratings = rejected.where(F.col("source").contains("rating")).count()
    assert ratings.count() + rejected_ratings == len(raw_ratings)
    assert read_table(spark, lake, tables.ANIME).count() == len(pd.read_csv(raw / "anime.csv"))

    # exact promoter Jaccard, recomputed here from the ratings table
    expected = promoter_jaccard_reference(ratings.toPandas())
    got = read_table(spark, lake, tables.ANIME_PAIR_JACCARD).toPandas()
    assert len(got) == len(expected) > 0
    key = ["anime_a", "anime_b"]
    merged = got.merge(expected, on=key, suffixes=("", "_ref"), validate="one_to_one")
    assert len(merged) == len(expected)
    for col in ("promoters_a", "promoters_b", "intersection", "union"):
        assert (merged[col] == merged[f"{col}_ref"]).all(), col
    assert ((merged["jaccard"] - merged["jaccard_ref"]).abs() < 1e-12).all()

    # embeddings: one unit vector per titled anime and embedder, fine-tuned included
    titled = read_table(spark, lake, tables.ANIME).where("has_description").count()
    per_embedder = dict(
        read_table(spark, lake, tables.ANIME_EMBEDDINGS).groupBy("embedder").count().collect()
    )
    assert per_embedder.get("base_minilm_128") == titled, per_embedder
    assert per_embedder.get("finetuned_minilm") == titled, per_embedder
    versions = dict(
        read_table(spark, lake, tables.ANIME_EMBEDDINGS)
        .groupBy("embedder")
        .agg(F.max("model_version"))
        .collect()
    )
    assert versions["base_minilm_128"].endswith("-seq128-onnx-int8"), versions
    assert versions["finetuned_minilm"].endswith("-seq64"), versions  # torch

    # recommendations only for test users, ranks 1..n without gaps per list
    recs = read_table(spark, lake, tables.RECOMMENDATIONS)
    test_users = ratings.where(F.col("split") == tables.TEST).select("user_id").distinct()
    assert recs.count() > 0
    assert recs.join(test_users, "user_id", "left_anti").count() == 0
    lists = recs.groupBy("recommender", "user_id").agg(
        F.count("*").alias("n"), F.max("rank").alias("max_rank")
    )
    assert lists.where("n != max_rank").count() == 0
    evaluation = read_table(spark, lake, tables.EVALUATION)
    assert {r[0] for r in evaluation.select("recommender").distinct().collect()} == {
        r[0] for r in recs.select("recommender").distinct().collect()
    }


# --------------------------------------------------------------------------------------------
# 3. a worker dies mid-stage
# --------------------------------------------------------------------------------------------

JACCARD_STEP = f"step compute and write {tables.ANIME_PAIR_JACCARD}: start"
APP_ID = re.compile(r"Connected to Spark cluster with app ID (app-[\w-]+)")
RUNNING_TASK = re.compile(r"Running task (\d+)\.\d+ in stage (\d+)\.\d+ \(TID (\d+)\)")
FAULT_BLOCKS = 24
# tiny data has ~5.5k train promoter pairs: 7 title blocks, 28 tiles
FAULT_MODES = {
    "broadcast": {"jaccard.mode": "broadcast", "jaccard.title_blocks": FAULT_BLOCKS},
    "tiles": {"jaccard.mode": "tiles", "jaccard.block_promoters": 800},
}


def wait_for(predicate, timeout: float, what: str, proc) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc.poll() is not None:
            pytest.fail(f"spark-submit ended (exit {proc.returncode}) before {what}")
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def tiny_inputs(spark, tmp_path_factory) -> str:
    """``anime`` and ``ratings`` of the generated ``tiny`` data, ingested in local mode."""
    root = tmp_path_factory.mktemp("tiny")
    assert load_job("generate").main(["--scale", "tiny", "--out", str(root / "raw")]) in (0, None)
    code = load_job("ingest").main(["--conf", LOCAL_CONF, *small_settings(root)])
    assert code in (0, None)
    return str(root / "lake")


def copy_inputs(src_lake: str, dst_lake: Path) -> None:
    for name in (tables.ANIME, tables.RATINGS):
        shutil.copytree(Path(src_lake) / name, dst_lake / name)


@pytest.mark.parametrize("mode", list(FAULT_MODES))
def test_jaccard_survives_a_killed_worker(
    mode, tiny_inputs, standalone_cluster, py_files, spark, tmp_path
):
    cluster_lake, local_lake = tmp_path / "cluster-lake", tmp_path / "local-lake"
    copy_inputs(tiny_inputs, cluster_lake)
    copy_inputs(tiny_inputs, local_lake)
    common = ["--conf", LOCAL_CONF, "--set", "spark.shuffle_partitions=2"]
    common += set_args({"jaccard.device": "cpu", **FAULT_MODES[mode]})

    submit: Submit = make_submit(standalone_cluster, py_files, tmp_path)
    victim = next(w for w in standalone_cluster.workers if w.proc.poll() is None)
    log = tmp_path / "jaccard.log"
    proc = submit.start(
        JOBS / "jaccard.py",
        [*common, "--set", f"paths.lake={cluster_lake}"],
        log,
        # a fresh Python worker per task: the block tasks last long enough to be caught running
        conf={"spark.python.worker.reuse": "false"},
    )
    try:
        app_id = wait_for(lambda: APP_ID.search(log.read_text()), 600, "the app id", proc)[1]
        wait_for(lambda: JACCARD_STEP in log.read_text(), 600, "the jaccard step", proc)
        executor_logs = standalone_cluster.root / victim.name / app_id

        def block_task_running_on_victim() -> str | None:
            for stderr in executor_logs.glob("*/stderr"):
                for m in RUNNING_TASK.finditer(stderr.read_text(errors="replace")):
                    # a task index that only the pairs' stages have (blocks; tiles and the
                    # scan of the promoters table partitioned by block)
                    if int(m.group(1)) >= 4:
                        return m.group(0)
            return None

        running = wait_for(block_task_running_on_victim, 300, "a pairs task on the victim", proc)
        standalone_cluster.kill_worker(standalone_cluster.workers.index(victim))
        killed_at = time.monotonic()
        code = proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
    assert code == 0, f"jaccard failed after the worker was killed:\n{tail(log)}"
    after = time.monotonic() - killed_at
    print(f"killed {victim.name} during '{running}'; the job finished {after:.0f}s later")

    # the kill really happened mid-job: the worker died and the driver lost its executor
    assert victim.proc.returncode == -signal.SIGKILL
    events = submit.events()
    removed = [e for e in events if e["Event"] == "SparkListenerExecutorRemoved"]
    assert removed, "the driver never lost an executor"
    failed = [
        e
        for e in events
        if e["Event"] == "SparkListenerTaskEnd"
        and e["Task End Reason"]["Reason"] in ("ExecutorLostFailure", "FetchFailed", "Resubmitted")
    ]
    assert failed, "no task was lost with the worker"
    assert any(e["Event"] == "SparkListenerApplicationEnd" for e in events)

    # same table contents as a local-mode run of the same job on the same inputs
    code = load_job("jaccard").main([*common, "--set", f"paths.lake={local_lake}"])
    assert code in (0, None)
    assert f"mode={mode}" in log.read_text()
    for name in (tables.PROMOTERS, tables.ANIME_PAIR_JACCARD, tables.TRAINING_PAIRS):
        on_cluster = read_table(spark, str(cluster_lake), name)
        local = read_table(spark, str(local_lake), name)
        assert on_cluster.count() > 0 or name == tables.TRAINING_PAIRS
        assert sorted_rows(on_cluster) == sorted_rows(local), name
