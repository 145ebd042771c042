"""Running jobs on a (damaged) lake in this process: shared by the storage-fault tests."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from anime_recs import tables
from anime_recs.cli import run_main
from tests.helpers import CONF, load_job

# the jaccard stage's first step, the first to read the ratings' data and to write
JACCARD_STEP = f"compute and write {tables.PROMOTERS}"
FINGERPRINT_STEP = "fingerprint jaccard"  # the runner reads the inputs' versions


def job_args(lake: Path, raw: Path | None = None) -> list[str]:
    sets = [f"paths.lake={lake}", "spark.shuffle_partitions=2"]
    sets += ["jaccard.title_blocks=2"] + ([f"paths.raw={raw}"] if raw else [])
    return ["--conf", CONF, *[x for s in sets for x in ("--set", s)]]


def call(job: str, argv: list[str], capsys) -> tuple[int, str, str]:
    """``run_main(jobs/<job>.py main)`` in this process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        run_main(load_job(job).main, argv)
    out, err = capsys.readouterr()
    return info.value.code, out, err


def fails_with_one_line(lake: Path, capsys, caplog, step: str = JACCARD_STEP, *extra: str) -> str:
    """Run jaccard on the damaged lake: exit 2, one ``error:`` line, no traceback."""
    caplog.set_level(logging.INFO, logger="anime_recs")
    caplog.clear()
    code, _, err = call("jaccard", [*job_args(lake), *extra], capsys)
    assert code == 2, err
    lines = err.rstrip("\n").splitlines()
    assert "Traceback" not in err and "\tat " not in err, err[-3000:]
    assert [line for line in lines if line.startswith("error: ")] == lines[-1:], err[-3000:]
    assert f"step {step}: failed after " in caplog.text
    assert f"step {step}: done" not in caplog.text
    return lines[-1]
