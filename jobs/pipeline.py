"""Run the whole batch pipeline with one config, resuming after a failure.

Stages, in order: ingest -> jaccard -> embed_base -> finetune -> embed_finetuned -> recommend.
Each stage is its own job (``jobs/<job>.py``) called in this process with the same ``--conf``
and ``--set`` overrides, so the Spark session is shared. Every stage's run is recorded in the
Delta table ``pipeline_runs`` with a fingerprint of its config and input versions (a failed
run also with the step it failed in and the one-line reason, in ``outputs``); a rerun
skips the stages whose fingerprint did not change (``--force`` runs them anyway), so after a
failure it resumes from the failed stage.

Local (embedded default, generating the sample data when ``paths.raw`` is empty)::

    python jobs/pipeline.py --conf conf/local.yaml --generate sample

Cluster::

    spark-submit --master spark://HOST:7077 --packages io.delta:delta-spark_2.13:4.0.0 \\
        --py-files dist/anime_recs-0.1.0-py3-none-any.zip \\
        jobs/pipeline.py --conf conf/cluster.yaml

Reads the raw MAL files; writes every stage's tables plus ``pipeline_runs``; prints the
evaluation table and where the report and charts are.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from anime_recs import faults, runlog, tables
from anime_recs.cli import JobError, job_parser, run_main, session, start_job
from anime_recs.config import AppConfig
from anime_recs.lakehouse import read_table, table_exists, table_version
from anime_recs.models import is_mlflow_uri

log = logging.getLogger("anime_recs.pipeline")

JOBS_DIR = Path(__file__).resolve().parent
RAW_FILES = ["anime.csv", "anime_with_synopsis.csv", "rating_complete.csv"]


@dataclass(frozen=True)
class Stage:
    name: str
    job: str  # jobs/<job>.py
    config_sections: tuple[str, ...]
    inputs: tuple[str, ...]  # Delta tables read
    outputs: tuple[str, ...]  # Delta tables written
    overrides: list[str] = field(default_factory=list)


def plan(config: AppConfig) -> list[Stage]:
    """The stages for this config; embedders are split into base and fine-tuned ones."""
    embedders = config.embed.run or list(config.embed.embedders)
    finetuned = [n for n in embedders if is_mlflow_uri(config.embed.embedders[n].model)]
    base = [n for n in embedders if n not in finetuned]
    stages = [
        Stage(
            "ingest",
            "ingest",
            ("ingest", "paths.raw"),
            (),
            (tables.ANIME, tables.RATINGS, tables.REJECTED_ROWS),
        ),
        Stage(
            "jaccard",
            "jaccard",
            ("jaccard",),
            (tables.RATINGS, tables.ANIME),
            (tables.ANIME_PAIR_JACCARD, tables.TRAINING_PAIRS),
        ),
    ]
    if base:
        stages.append(
            Stage(
                "embed_base",
                "embed",
                ("embed",),
                (tables.ANIME,),
                (tables.ANIME_EMBEDDINGS,),
                [f"embed.run=[{','.join(base)}]"],
            )
        )
    stages.append(
        Stage(
            "finetune",
            "finetune",
            ("finetune", "mlflow"),
            (tables.TRAINING_PAIRS, tables.ANIME),
            (),
        )
    )
    if finetuned:
        stages.append(
            Stage(
                "embed_finetuned",
                "embed",
                ("embed",),
                (tables.ANIME,),
                (tables.ANIME_EMBEDDINGS,),
                [f"embed.run=[{','.join(finetuned)}]"],
            )
        )
    stages.append(
        Stage(
            "recommend",
            "recommend",
            ("recommend", "mlflow"),
            (tables.RATINGS, tables.ANIME_EMBEDDINGS, tables.ANIME_PAIR_JACCARD),
            (tables.ANIME_NEIGHBORS, tables.RECOMMENDATIONS, tables.EVALUATION),
        )
    )
    return stages


def load_job(job: str) -> ModuleType:
    """Import ``jobs/<job>.py`` by path (jobs/ is not a package; it ships next to this file)."""
    path = JOBS_DIR / f"{job}.py"
    if not path.is_file():
        raise JobError(f"stage job {path} does not exist")
    spec = importlib.util.spec_from_file_location(f"anime_recs_job_{job}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def config_parts(config: AppConfig, sections: tuple[str, ...]) -> dict:
    full = config.to_dict()
    out = {}
    for dotted in sections:
        node = full
        for part in dotted.split("."):
            node = node[part]
        out[dotted] = node
    return out


def registered_model_versions(config: AppConfig, embedder_names: list[str]) -> dict[str, str]:
    """Latest registered version of each MLflow model an embedder uses (input of its stage)."""
    import mlflow

    from anime_recs.tracking import configure_mlflow

    configure_mlflow(config.mlflow)
    client = mlflow.MlflowClient()
    out = {}
    for name in embedder_names:
        uri = config.embed.embedders[name].model
        model_name = uri.split("/")[1].split("@")[0] if uri.startswith("models:/") else uri
        try:
            versions = client.search_model_versions(f"name='{model_name}'")
            out[name] = str(max((int(v.version) for v in versions), default=0))
        except Exception:  # noqa: BLE001 - not registered yet is a valid state
            out[name] = "0"
    return out


def stage_inputs(spark, config: AppConfig, stage: Stage) -> dict:
    lake = config.paths.lake
    inputs: dict = {t: table_version(spark, lake, t) for t in stage.inputs}
    if stage.name == "ingest":
        inputs.update(runlog.file_versions(config.paths.raw, RAW_FILES))
    if stage.name == "embed_finetuned":
        names = stage.overrides[0].split("=", 1)[1].strip("[]").split(",")
        inputs["models"] = registered_model_versions(config, names)
    return inputs


def ensure_raw_data(config: AppConfig, scale: str | None, seed: int) -> None:
    raw = Path(config.paths.raw)
    if "://" in config.paths.raw or all((raw / f).is_file() for f in RAW_FILES):
        return
    if not scale:
        raise JobError(f"raw files missing in {raw} (pass --generate SCALE to generate them)")
    log.info("raw files missing in %s: generating scale %s (seed %s)", raw, scale, seed)
    code = load_job("generate").main(["--scale", scale, "--out", str(raw), "--seed", str(seed)])
    if code:
        raise JobError(f"generate failed with exit status {code}")


def print_evaluation(spark, config: AppConfig) -> None:
    lake = config.paths.lake
    if not table_exists(spark, lake, tables.EVALUATION):
        return
    pdf = read_table(spark, lake, tables.EVALUATION).orderBy("recommender", "n").toPandas()
    cols = [
        "recommender",
        "n",
        "nps",
        "nps_ci_low",
        "nps_ci_high",
        "hits",
        "users_scored",
        "precision",
        "recall",
        "ndcg",
        "unique_anime",
    ]
    print("\nEvaluation (table `evaluation`):")
    print(pdf[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    reports = Path(config.paths.reports).absolute()
    print(f"\nReport and charts: {reports}")


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(__doc__)
    parser.add_argument("--generate", metavar="SCALE", help="generate raw data if missing")
    parser.add_argument("--seed", type=int, default=42, help="generator seed (with --generate)")
    parser.add_argument("--only", nargs="+", metavar="STAGE", help="run only these stages")
    parser.add_argument("--skip", nargs="+", default=[], metavar="STAGE", help="skip stages")
    parser.add_argument("--force", action="store_true", help="rerun stages even if unchanged")
    args = parser.parse_args(argv)
    config = start_job("pipeline", args)
    stages = plan(config)
    known = {s.name for s in stages}
    for name in (args.only or []) + args.skip:
        if name not in known:
            raise JobError(f"unknown stage {name!r}; stages: {[s.name for s in stages]}")

    ensure_raw_data(config, args.generate, args.seed)
    spark = session(config, "pipeline")
    lake = config.paths.lake
    run_id = runlog.new_run_id()
    passthrough = ["--conf", args.conf] + [x for o in args.overrides for x in ("--set", o)]
    timings: list[tuple[str, str, float]] = []
    total_start = time.perf_counter()

    for stage in stages:
        if stage.name in args.skip or (args.only and stage.name not in args.only):
            timings.append((stage.name, "skipped (asked)", 0.0))
            continue
        inputs = stage_inputs(spark, config, stage)
        fp = runlog.fingerprint(stage.name, config_parts(config, stage.config_sections), inputs)
        last = runlog.last_success(spark, lake, stage.name)
        outputs_exist = all(table_exists(spark, lake, t) for t in stage.outputs)
        if not args.force and last and last["fingerprint"] == fp and outputs_exist:
            log.info(
                "stage %s: unchanged since run %s (fingerprint %s), skipped",
                stage.name,
                last["run_id"],
                fp,
            )
            timings.append((stage.name, "unchanged", 0.0))
            continue

        log.info("stage %s: running (fingerprint %s)", stage.name, fp)
        started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        start = time.perf_counter()
        argv_stage = passthrough + [x for o in stage.overrides for x in ("--set", o)]
        try:
            code = load_job(stage.job).main(argv_stage)
            if code:
                raise JobError(f"stage {stage.name} exited with status {code}")
        except BaseException as exc:
            failure = faults.failure_record(exc)
            try:
                runlog.record(
                    spark,
                    lake,
                    run_id,
                    stage.name,
                    fp,
                    runlog.FAILED,
                    inputs,
                    failure,
                    started,
                    time.perf_counter() - start,
                )
            except Exception as record_error:  # noqa: BLE001 - e.g. the same full disk
                log.warning("could not record the failure: %s", faults.one_line(record_error))
            log.error(
                "stage %s failed in step %s: %s; rerun the pipeline to resume from it",
                stage.name,
                failure["failed_step"],
                failure["error"],
            )
            raise
        wall = time.perf_counter() - start
        outputs = {t: table_version(spark, lake, t) for t in stage.outputs}
        runlog.record(
            spark, lake, run_id, stage.name, fp, runlog.SUCCEEDED, inputs, outputs, started, wall
        )
        timings.append((stage.name, "ran", wall))
        log.info("stage %s: done in %.1fs", stage.name, wall)

    total = time.perf_counter() - total_start
    print("\nStage wall times (s):")
    for name, status, wall in timings:
        print(f"  {name:<16} {status:<16} {wall:8.1f}")
    print(f"  {'total':<16} {'':<16} {total:8.1f}")
    print_evaluation(spark, config)
    return 0


if __name__ == "__main__":
    run_main(main)
