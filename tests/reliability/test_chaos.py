"""Chaos: the whole pipeline SIGKILLed at seeded random moments, rerun after each kill.

On the generator's tiny data with the tiny random encoder (the overrides of
``tests.helpers.pipeline_settings``; no ``OPENAI_API_KEY``, so the OpenAI embedder is
skipped), ``jobs/pipeline.py`` runs as a real process (with its JVM and Python workers, in one
process group):

1. once uninterrupted, in its own lakehouse: the expected contents, and the log's events
   (``stage X: running`` and ``step Y: start`` lines, tagged with their stage);
2. :data:`KILLS` times in a second lakehouse, each run SIGKILLed (the whole group) a random
   0-3 s after a seeded random event, each kill's event later than the last one's;
3. once more to completion.

Then every table's content digest (``lakehouse.table_digest``) equals the uninterrupted run's,
``jobs/check.py`` reports the lake clean, and each fine-tune fingerprint has at most one
registered model version. Marked ``slow`` (about ten pipeline starts).
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from anime_recs import tables
from anime_recs.cli import run_main
from anime_recs.lakehouse import table_digest
from anime_recs.training.registry import FINGERPRINT_TAG
from tests.helpers import CONF, MODEL_NAME, REPO, load_job, mlflow_store, pipeline_settings

pytestmark = pytest.mark.e2e  # the pipeline process killed

SEED = 18
KILLS = 8
MAX_DELAY_S = 3.0
_STAGE = re.compile(r"anime_recs\.pipeline: stage (\w+): running")
_STEP = re.compile(r"anime_recs: step (.+): start$")

Event = tuple[str, str]  # (stage, "stage running" | "step <name>")


@dataclass
class Run:
    code: int | None = None
    events: list[Event] = field(default_factory=list)
    killed_at: Event | None = None
    log: str = ""


def run_pipeline(
    root: Path, argv: list[str], env: dict[str, str], kill_after: int | None, order: list[Event]
) -> Run:
    """Run the pipeline; with ``kill_after``, SIGKILL its process group a random moment after
    the first event at or after ``order[kill_after]`` (a rerun skips finished stages)."""
    run, rng = Run(), random.Random(SEED * 1000 + (kill_after or 0))
    rank = {event: i for i, event in enumerate(order)}
    proc = subprocess.Popen(
        argv,
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    timer = None
    stage = "-"
    lines = []
    try:
        for line in proc.stderr:
            lines.append(line)
            if match := _STAGE.search(line):
                stage = match[1]
                event: Event | None = (stage, "stage running")
            elif match := _STEP.search(line.rstrip("\n")):
                event = (stage, f"step {match[1]}")
            else:
                continue
            run.events.append(event)
            if kill_after is not None and timer is None and rank.get(event, -1) >= kill_after:
                run.killed_at = event
                timer = threading.Timer(rng.uniform(0, MAX_DELAY_S), kill_group, (proc.pid,))
                timer.start()
        run.code = proc.wait(timeout=1800)
    finally:
        if timer is not None:
            timer.join()
        kill_group(proc.pid)  # what is left of the group (Spark's Python workers)
        proc.wait()
    run.log = "".join(lines)
    return run


def kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    # one thread per process: the same float results in every run (and no spinning on 2 cores)
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.update(TOKENIZERS_PARALLELISM="false", PYTHONPATH=os.pathsep.join(sys.path))
    return env


def pipeline_argv(root: Path, raw: Path, model_dir: str) -> list[str]:
    argv = [sys.executable, str(REPO / "jobs" / "pipeline.py"), "--conf", CONF]
    argv += ["--set", f"paths.raw={raw}"]
    argv += pipeline_settings(root, model_dir, "http://127.0.0.1:9/v1")
    return argv + ["--set", "spark.master=local[2]", "--set", "spark.driver_memory=1g"]


def model_versions_by_fingerprint(root: Path) -> dict[str, list[int]]:
    import mlflow

    uri = mlflow_store(root)
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    out: dict[str, list[int]] = {}
    for version in client.search_model_versions(f"name='{MODEL_NAME}'"):
        fingerprint = client.get_run(version.run_id).data.tags.get(FINGERPRINT_TAG, "?")
        out.setdefault(fingerprint, []).append(int(version.version))
    return out


@pytest.mark.slow
def test_pipeline_killed_at_random_moments_converges_to_the_uninterrupted_result(
    spark, tiny_raw, tiny_model_dir, tmp_path, record_property
):
    env = environment()
    clean_root, chaos_root = tmp_path / "clean", tmp_path / "chaos"
    clean_root.mkdir()
    chaos_root.mkdir()

    clean = run_pipeline(
        clean_root, pipeline_argv(clean_root, tiny_raw, tiny_model_dir), env, None, []
    )
    assert clean.code == 0, clean.log[-5000:]
    order = list(dict.fromkeys(clean.events))
    picks = sorted(random.Random(SEED).sample(range(1, len(order)), KILLS))

    argv = pipeline_argv(chaos_root, tiny_raw, tiny_model_dir)
    kills = []
    for pick in picks:
        run = run_pipeline(chaos_root, argv, env, pick, order)
        if run.code == 0:  # nothing (or too little) left to do at or after the pick
            continue
        assert run.code == -signal.SIGKILL and run.killed_at, run.log[-5000:]
        kills.append(run.killed_at)
    final = run_pipeline(chaos_root, argv, env, None, order)
    assert final.code == 0, final.log[-5000:]
    record_property("kills", kills)
    print(f"killed at {kills}")  # noqa: T201 - shown with -s / -rA
    assert len(kills) >= KILLS - 2, kills  # most picks found work left to interrupt
    assert len({stage for stage, _ in kills}) >= 3, kills  # and they spread over stages

    clean_lake, chaos_lake = str(clean_root / "lake"), str(chaos_root / "lake")
    names = sorted(p.name for p in Path(clean_lake).iterdir())
    assert names == sorted(p.name for p in Path(chaos_lake).iterdir())
    for name in names:
        if name == tables.PIPELINE_RUNS:  # history: the chaos run has more records
            continue
        assert table_digest(spark, chaos_lake, name) == table_digest(spark, clean_lake, name), name

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        run_main(load_job("check").main, ["--conf", CONF, "--set", f"paths.lake={chaos_lake}"])
    report = out.getvalue().strip().splitlines()
    assert exit_info.value.code == 0, report
    assert [line.split()[:2] for line in report] == [["ok", name] for name in names]

    versions = model_versions_by_fingerprint(chaos_root)
    assert versions and all(len(v) == 1 for v in versions.values()), versions
