"""Issue 9 guarantees across the whole pipeline: resume, unchanged and forced reruns, no duplicate
model version, secrets, concurrent runs of a stage, unreadable paths.

The module fixture runs ``jobs/pipeline.py`` in this process (its Spark session is the test
session, reused by ``getOrCreate``) on the generator's ``tiny`` data with the tiny random
encoder as base and fine-tune model, MLflow in a SQLite file and the OpenAI embedder pointed at
a fake OpenAI-compatible server, with a fake key in ``OPENAI_API_KEY``. Runs:

1. *failed*: the server rejects the key (401, echoing the rejected key like some real
   servers) -> ``embed_base`` fails after ``ingest`` and ``jaccard`` succeeded;
2. *resumed*: the server accepts the key -> ``ingest`` and ``jaccard`` are skipped as
   unchanged, the pipeline runs from ``embed_base`` to the end;
3. *unchanged*: every stage is skipped (the scheduled rerun case);
4. *forced* (``--force``): every stage runs again and must rewrite the same contents; the
   fine-tune trains and registers a new version.

Why a rejected key for the failure: it is a real failure of a middle stage through the real
code path (no monkeypatched job), it is fixed outside the pipeline (as after a key rotation)
so the rerun sees the same config and inputs, and it is the failure most likely to leak the
key into an error message, a log line or the run log.

Runs 1-3 back the default tests. Run 4 (a whole pipeline again) and the concurrent ingests
(two more JVMs) are marked ``slow``. Logs are captured by a handler on the root logger for
the whole module (``caplog`` is per test) with the jobs' logging switched to DEBUG, and
stdout/stderr by redirection; the JVM's own output is not visible in-process (the concurrent
ingest test scans it for the key in its subprocesses' stderr).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from delta.tables import DeltaTable

from anime_recs import cli, runlog, tables
from anime_recs.cli import JobError, run_main
from anime_recs.lakehouse import read_table, table_path, table_version
from anime_recs.tracking import keep_logging
from tests.embeddings.fake_openai import FakeOpenAI
from tests.helpers import CONF, MODEL_NAME, REPO, load_job, mlflow_store, pipeline_settings

KEY = "sk-test-SECRET-0123456789abcdef"
STAGES = ["ingest", "jaccard", "embed_base", "finetune", "embed_finetuned", "recommend", "serve"]
# tables every stage rewrites on a forced rerun (embedding_cache is only merged into when a
# text is missing, rejected_rows is empty on tiny data: Delta records no empty overwrite)
REWRITTEN = {
    tables.ANIME,
    tables.RATINGS,
    tables.PROMOTERS,
    tables.ANIME_PAIR_JACCARD,
    tables.TRAINING_PAIRS,
    tables.ANIME_EMBEDDINGS,
    tables.ANIME_NEIGHBORS,
    tables.USER_SCORES,
    tables.RECOMMENDATIONS,
    tables.EVALUATION,
}


class Capture(logging.Handler):
    """Every log record of the runs, formatted like the jobs' handler."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter(cli.LOG_FORMAT))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


class Pipeline:
    """The pipeline on one tiny lakehouse; :meth:`run` records each run's logs and state."""

    def __init__(self, spark, root: Path, raw: Path, model_dir: str, fake: FakeOpenAI):
        self.spark, self.root, self.fake = spark, root, fake
        self.lake = str(root / "lake")
        self.tracking_uri = mlflow_store(root)
        self.argv = ["--conf", CONF, "--log-level", "DEBUG", "--set", f"paths.raw={raw}"]
        self.argv += pipeline_settings(root, model_dir, fake.base_url)
        self.job = load_job("pipeline")
        self.capture = Capture()
        self.out, self.err = io.StringIO(), io.StringIO()
        self.failure = ""  # the failed run's exception message
        self.logs: dict[str, str] = {}  # run -> its log text
        self.versions: dict[str, dict[str, int]] = {}  # run -> Delta versions after it
        self.model_versions: dict[str, list[int]] = {}  # run -> registered versions after it
        self.wall_s: dict[str, float] = {}
        self.handler_kept: list[bool] = []  # per run: the capture handler was still attached

    @contextlib.contextmanager
    def captured(self):
        """Fake key in the environment; logs at DEBUG, stdout and stderr captured."""
        import torch

        root = logging.getLogger()
        with contextlib.ExitStack() as stack:
            mp = stack.enter_context(pytest.MonkeyPatch.context())
            mp.setenv("OPENAI_API_KEY", KEY)
            mp.setenv("HF_HUB_OFFLINE", "1")
            stack.enter_context(contextlib.redirect_stdout(self.out))
            stack.enter_context(contextlib.redirect_stderr(self.err))
            stack.callback(root.setLevel, root.level)
            root.addHandler(self.capture)
            stack.callback(root.removeHandler, self.capture)
            stack.callback(torch.set_num_threads, torch.get_num_threads())
            torch.set_num_threads(1)  # fine-tuning on the driver: no OpenMP spin on 2 cores
            yield
            self.handler_kept.append(self.capture in root.handlers)

    def run(self, name: str, *extra: str, job: str = "pipeline") -> None:
        """Run ``jobs/<job>.py`` (the pipeline) with the module's settings and ``extra``."""
        start, first = time.perf_counter(), len(self.capture.lines)
        try:
            with self.captured():
                if name == "failed":
                    with pytest.raises(JobError) as info:
                        self.job.main(self.argv)
                    self.failure = str(info.value)
                else:
                    main = self.job.main if job == "pipeline" else load_job(job).main
                    assert main([*self.argv, *extra]) == 0
        finally:
            self.logs[name] = "\n".join(self.capture.lines[first:])
            self.wall_s[name] = time.perf_counter() - start
        self.versions[name] = lake_versions(self.spark, self.lake)
        self.model_versions[name] = registered_versions(self.tracking_uri)


def lake_versions(spark, lake: str) -> dict[str, int]:
    return {p.name: table_version(spark, lake, p.name) for p in sorted(Path(lake).iterdir())}


def registered_versions(tracking_uri: str) -> list[int]:
    import mlflow

    with keep_logging():  # a first touch of the SQLite store would drop the capture handler
        client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        versions = client.search_model_versions(f"name='{MODEL_NAME}'")
    return sorted(int(v.version) for v in versions)


@pytest.fixture(scope="module")
def runs(spark, tiny_raw, tiny_model_dir, tmp_path_factory):
    """Runs 1-3: failed, resumed, unchanged."""
    with FakeOpenAI("sk-test-the-server-wants-another-key", dim=8) as fake:
        pipeline = Pipeline(
            spark, tmp_path_factory.mktemp("pipeline"), tiny_raw, tiny_model_dir, fake
        )
        pipeline.run("failed")
        fake.api_key = KEY  # fixed outside the pipeline: same config, same inputs
        pipeline.run("resumed")
        pipeline.run("unchanged")
        yield pipeline


@pytest.fixture(scope="module")
def forced(runs):
    """Run 4: ``--force`` after run 3 (every stage runs again)."""
    if "forced" not in runs.versions:
        runs.run("forced", "--force")
    return runs


def run_records(spark, lake: str) -> list[dict]:
    rows = read_table(spark, lake, tables.PIPELINE_RUNS).orderBy("finished_at").collect()
    return [r.asDict() for r in rows]


# --------------------------------------------------------------------------------------------
# Resume after a failure
# --------------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_failed_stage_is_recorded_and_the_rerun_resumes_from_it(spark, runs):
    assert runs.failure == (
        "embedder openai_small: OpenAI embeddings HTTP 401: authentication failed: "
        "check the OPENAI_API_KEY environment variable"
    )
    records = run_records(spark, runs.lake)
    by_run: dict[str, list[tuple[str, str]]] = {}
    for r in records:
        by_run.setdefault(r["run_id"], []).append((r["stage"], r["status"]))
    failed, resumed = list(by_run)[:2]
    assert by_run[failed] == [
        ("ingest", runlog.SUCCEEDED),
        ("jaccard", runlog.SUCCEEDED),
        ("embed_base", runlog.FAILED),
    ]
    # the rerun skipped the unchanged ingest and jaccard and ran from the failed stage on
    assert by_run[resumed] == [(s, runlog.SUCCEEDED) for s in STAGES[2:]]
    for stage in ("ingest", "jaccard"):
        assert f"stage {stage}: unchanged since run {failed}" in runs.logs["resumed"]
    fingerprints = {(r["run_id"], r["stage"]): r["fingerprint"] for r in records}
    assert fingerprints[resumed, "embed_base"] == fingerprints[failed, "embed_base"]
    # the failed record names the step it failed in and the one-line reason (issue 18)
    failed_record = next(r for r in records if r["status"] == runlog.FAILED)
    assert json.loads(failed_record["outputs"]) == {
        "failed_step": "embed openai_small",
        "error": f"JobError: {runs.failure}",
    }
    assert "step embed openai_small: failed after " in runs.logs["failed"]
    assert "step embed openai_small: done" not in runs.logs["failed"]


@pytest.mark.e2e
def test_unchanged_rerun_skips_every_stage_and_registers_no_model_version(runs):
    log_text = runs.logs["unchanged"]
    for stage in STAGES:
        assert f"stage {stage}: unchanged since run" in log_text, stage
    assert "running (fingerprint" not in log_text
    # not a single new commit, not even in the run log
    assert runs.versions["unchanged"] == runs.versions["resumed"]
    assert runs.model_versions["resumed"] == [1]
    assert runs.model_versions["unchanged"] == [1]


# --------------------------------------------------------------------------------------------
# A stage run alone, or an output changed by hand: the next pipeline run recomputes it
# --------------------------------------------------------------------------------------------


def rows(spark, lake: str, name: str) -> list[str]:
    return sorted(repr(tuple(r)) for r in read_table(spark, lake, name).collect())


@pytest.fixture(scope="module")
def stale(spark, runs):
    """After run 3: ``jobs/recommend.py --set recommend.k=5`` (run 5), the pipeline with its
    own settings (run 6); ``anime_neighbors`` restored by hand to the k = 5 version with
    ``jobs/check.py --restore`` (run 7), the pipeline again (run 8)."""
    if "k5" not in runs.versions:
        runs.run("k5", "--set", "recommend.k=5", job="recommend")
        runs.run("after k5")
        neighbors = runs.versions["k5"][tables.ANIME_NEIGHBORS]
        restore = ["--restore", tables.ANIME_NEIGHBORS, "--to-version", str(neighbors)]
        with pytest.raises(SystemExit) as done:
            run_main(load_job("check").main, [*runs.argv, *restore])
        assert done.value.code == 0
        runs.versions["restored"] = lake_versions(runs.spark, runs.lake)
        runs.run("after restore")
    return runs


@pytest.mark.e2e
def test_a_stage_run_alone_or_restored_by_hand_is_recomputed_by_the_next_pipeline_run(spark, stale):
    runs, versions = stale, stale.versions
    records = run_records(spark, runs.lake)
    alone = [r for r in records if r["stage"] == "recommend"][-3]  # the standalone k = 5 run
    assert (alone["status"], json.loads(alone["outputs"])[tables.ANIME_NEIGHBORS]) == (
        runlog.SUCCEEDED,
        versions["k5"][tables.ANIME_NEIGHBORS],
    )
    for run in ("after k5", "after restore"):
        log_text = runs.logs[run]
        assert "stage recommend: running (fingerprint" in log_text, run
        for stage in set(STAGES) - {"recommend"}:  # serve: the same neighbours' contents
            assert f"stage {stage}: unchanged since run" in log_text, (run, stage)
    assert "changed since run" in runs.logs["after k5"]
    restored = versions["restored"][tables.ANIME_NEIGHBORS]
    assert f"table {tables.ANIME_NEIGHBORS} is at version {restored}" in runs.logs["after restore"]
    # the tables hold the pipeline's settings again (k = 3): the contents of run 3
    neighbors = read_table(spark, runs.lake, tables.ANIME_NEIGHBORS)
    assert neighbors.agg({"rank": "max"}).first()[0] == 3
    for name in (tables.ANIME_NEIGHBORS, tables.EVALUATION, tables.USER_RECOMMENDATIONS):
        before = versions["unchanged"][name]
        assert rows(spark, runs.lake, name) == sorted_rows(spark, runs.lake, name, before), name
    assert runs.model_versions["after restore"] == [1]


# --------------------------------------------------------------------------------------------
# Idempotency of a forced rerun
# --------------------------------------------------------------------------------------------


def sorted_rows(spark, lake: str, name: str, version: int | None) -> list[str]:
    """The rows of one table version as exact reprs (floats round-trip), sorted."""
    return sorted(repr(tuple(r)) for r in read_table(spark, lake, name, version).collect())


@pytest.mark.slow
@pytest.mark.e2e
def test_forced_rerun_rewrites_the_same_contents(spark, forced):
    runs = forced
    for stage in STAGES:
        assert f"stage {stage}: running (fingerprint" in runs.logs["forced"], stage
    before, after = runs.versions["unchanged"], runs.versions["forced"]
    assert set(after) == set(before) and tables.PIPELINE_RUNS in after
    rewritten = {t for t in after if after[t] != before[t]}
    assert rewritten >= REWRITTEN | {tables.PIPELINE_RUNS}, rewritten
    for name in sorted(set(after) - {tables.PIPELINE_RUNS}):
        old = sorted_rows(spark, runs.lake, name, before[name])
        new = sorted_rows(spark, runs.lake, name, after[name])
        assert old or name not in REWRITTEN, name  # (rejected_rows is empty on tiny data)
        assert new == old, f"{name}: v{after[name]} differs from v{before[name]}"


@pytest.mark.slow
@pytest.mark.e2e
def test_forced_rerun_trains_and_registers_a_new_model_version(spark, forced):
    runs = forced
    # forced means forced for every stage: the fine-tune trains and registers again
    assert runs.model_versions["forced"] == [1, 2]
    assert "already trained in run" not in runs.logs["forced"]
    # its fingerprint hashes its inputs' contents, not their (new) Delta versions: the same as
    # before the rewrite, so an upstream rerun alone registers no duplicate version
    finetune = {
        r["fingerprint"]
        for r in run_records(spark, runs.lake)
        if r["stage"] == "finetune" and r["status"] == runlog.SUCCEEDED
    }
    assert len(finetune) == 1


@pytest.mark.e2e
def test_no_table_but_the_run_log_ever_had_an_append(spark, runs):
    """(Run after the forced run too when the slow tests run: it then covers all four.)"""
    appends = {}
    for name in lake_versions(spark, runs.lake):
        history = DeltaTable.forPath(spark, table_path(runs.lake, name)).history().collect()
        appends[name] = [
            h.version
            for h in history
            if h.operation == "WRITE" and h.operationParameters.get("mode") == "Append"
        ]
    # pipeline_runs is the append-only history by design (one append per stage record):
    # proves the check sees appends
    records = read_table(spark, runs.lake, tables.PIPELINE_RUNS).count()
    assert len(appends.pop(tables.PIPELINE_RUNS)) == records >= 7  # 3 + 4 (+ 0 + 6 forced)
    assert appends == {name: [] for name in appends}


# --------------------------------------------------------------------------------------------
# Secrets
# --------------------------------------------------------------------------------------------


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


@pytest.mark.e2e
def test_fake_key_appears_in_no_file_log_or_output(runs):
    key = KEY.encode()
    root = runs.root
    scanned = {
        "lake": files_under(root / "lake"),
        "mlflow db": [root / "mlruns.db"],
        "mlflow artifacts": files_under(root / "mlartifacts"),
        "reports": files_under(root / "reports"),
        "checkpoints": files_under(root / "checkpoints"),
        "everything else": files_under(root),
    }
    lake_files = {p.suffix for p in scanned["lake"]}
    assert {".parquet", ".json"} <= lake_files  # data files and _delta_log commits
    assert any(p.name == "MLmodel" for p in scanned["mlflow artifacts"])
    assert scanned["reports"]
    for what, paths in scanned.items():
        leaks = [str(p) for p in paths if key in p.read_bytes()]
        assert not leaks, f"key found in {what}: {leaks}"

    assert all(runs.handler_kept), "a job removed the capture handler: logs were not all seen"
    logs = "\n".join(runs.logs.values())
    assert "stage embed_base failed" in logs and "embedder openai_small" in logs  # seen
    assert "Report: " in runs.out.getvalue() and "index.html" in runs.out.getvalue()
    for what, text in {
        "logs": logs,
        "stdout": runs.out.getvalue(),
        "stderr": runs.err.getvalue(),
        "error": runs.failure,
    }.items():
        assert KEY not in text, f"key found in {what}"
        assert "0123456789abcdef" not in text, f"part of the key found in {what}"


@pytest.mark.e2e
def test_fake_key_is_in_no_mlflow_param_tag_or_artifact_name(runs):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=runs.tracking_uri, registry_uri=runs.tracking_uri)
    experiments = client.search_experiments()
    run_list = client.search_runs([e.experiment_id for e in experiments])
    assert {r.info.run_name.split("-")[0] for r in run_list} == {"finetune", "recommend"}
    texts = []
    for r in run_list:
        texts += [*r.data.params.items(), *r.data.tags.items()]
        texts += [a.path for a in client.list_artifacts(r.info.run_id)]
    for model in client.search_registered_models():
        texts += [*model.tags.items()]
        for version in client.search_model_versions(f"name='{model.name}'"):
            texts += [*version.tags.items(), version.source]
    assert len(texts) > 20
    assert not [t for t in texts if KEY in str(t)]


# --------------------------------------------------------------------------------------------
# Concurrency
# --------------------------------------------------------------------------------------------

PY4J_CONFLICT = (
    "An error occurred while calling o771.save.\n: io.delta.exceptions.ConcurrentAppendException:"
    " [DELTA_CONCURRENT_APPEND] ConcurrentAppendException: Files were added to the root of the"
    " table by a concurrent update. Please try the operation again.\n\tat org.apache.spark.sql"
    ".delta.DeltaErrorsBase.concurrentAppendException(DeltaErrors.scala:2552)\n"
)


def test_a_delta_write_conflict_exits_2_with_one_line(capsys):
    def main(argv):
        raise RuntimeError(PY4J_CONFLICT)  # what a losing writer's save() raises (Py4J)

    with pytest.raises(SystemExit) as exc:
        run_main(main, [])
    assert exc.value.code == 2
    assert capsys.readouterr().err == (
        "error: Delta write conflict: a concurrent run committed to the same table first, this "
        "write was not committed (rerun the stage): ConcurrentAppendException: Files were added "
        "to the root of the table by a concurrent update. Please try the operation again.\n"
    )

    def other(argv):
        raise RuntimeError("something else")

    with pytest.raises(RuntimeError, match="something else"):  # not swallowed
        run_main(other, [])


@pytest.mark.slow
@pytest.mark.e2e
def test_two_concurrent_ingests_do_not_corrupt_the_tables(
    spark, tiny_raw, tmp_path, record_property
):
    """Two ``python jobs/ingest.py`` on the same raw data and lake, started together.

    The tables exist already (a first ingest, in this process, gives the expected contents):
    the case of two overlapping scheduled reruns. (On an empty lake the loser gets Delta's
    ``ProtocolChangedException`` instead, through the same one-line error.)
    """
    sets = [f"paths.raw={tiny_raw}", "spark.shuffle_partitions=2"]
    sets = [x for s in sets for x in ("--set", s)]
    lake = tmp_path / "lake"
    assert load_job("ingest").main(["--conf", CONF, *sets, "--set", f"paths.lake={lake}"]) == 0
    names = (tables.ANIME, tables.RATINGS, tables.REJECTED_ROWS)
    expected = {name: sorted_rows(spark, str(lake), name, None) for name in names}
    argv = [sys.executable, str(REPO / "jobs" / "ingest.py"), "--conf", CONF, *sets]
    argv += ["--set", f"paths.lake={lake}", "--set", "spark.master=local[1]"]
    argv += ["--set", "spark.driver_memory=1g", "--force"]  # the tables are as recorded
    env = {**os.environ, "OPENAI_API_KEY": KEY}
    procs = []
    for i in range(2):  # output to files: a full pipe would stall one writer
        out, err = tmp_path / f"out{i}", tmp_path / f"err{i}"
        with out.open("wb") as o, err.open("wb") as e:
            procs.append((subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=o, stderr=e), err))
    results = [(p.wait(timeout=600), err.read_text()) for p, err in procs]
    codes = [code for code, _ in results]
    for _, err in results:
        assert KEY not in err

    if codes == [0, 0]:
        outcome = "both exited 0: the two writers did not overlap in time"
    else:
        assert sorted(codes) == [0, 2], f"exit statuses {codes}: {results}"
        loser_err = next(err for code, err in results if code != 0)
        last = loser_err.strip().splitlines()[-1]
        outcome = f"the loser exited 2: {last}"
        assert last.startswith("error: Delta write conflict: "), loser_err[-3000:]
        assert "Traceback" not in loser_err, loser_err[-3000:]
    record_property("concurrency_outcome", outcome)

    # afterwards every table reads and equals one run's content (no duplicates)
    for name in names:
        got = sorted_rows(spark, str(lake), name, None)
        assert got == expected[name], f"{name} ({outcome})"
    assert len(expected[tables.RATINGS]) == 20_000
    print(outcome)  # noqa: T201 - shown with -s / -rA


# --------------------------------------------------------------------------------------------
# Config safety: unreadable paths fail at start with one line naming the path
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("job", "key", "message"),
    [
        ("ingest", "paths.raw", r"anime\.csv: input file not found at {path}/anime\.csv"),
        ("jaccard", "paths.lake", r"Delta tables \['ratings', 'anime'\] not found under {path}: "),
        ("pipeline", "paths.raw", r"raw files missing in {path} \(pass --generate SCALE"),
    ],
)
def test_unreadable_path_exits_2_with_one_line_naming_it(
    spark, tmp_path, capsys, job, key, message
):
    missing = tmp_path / "no" / "such" / "folder"
    argv = ["--conf", CONF, "--set", f"{key}={missing}"]
    argv += ["--set", "spark.shuffle_partitions=2"]
    with pytest.raises(SystemExit) as exc:
        run_main(load_job(job).main, argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    last = err.rstrip("\n").splitlines()[-1]
    assert last.startswith("error: ") and "Traceback" not in err
    assert re.search(message.format(path=re.escape(str(missing))), last), last
    assert not missing.exists()
