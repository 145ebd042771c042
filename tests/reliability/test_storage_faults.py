"""Faults of the lake, produced for real on a tiny lake, met by a real job (``jobs/jaccard.py``,
which reads ``ratings`` and ``anime``): a deleted data file, flipped bytes in one, a truncated
``_delta_log`` commit (with and without its Hadoop checksum), a dropped table folder, a table
rewritten with another schema, and a full disk (a tmpfs mounted by the test).

Each test asserts the exit status 2, the exact one line on stderr (no traceback), the step
logged ``failed`` (never ``done``), that the previous version is intact, and that
``jobs/check.py --restore`` brings the table back (``jobs/check.py`` then reports it clean).

The lake: ``ingest`` run twice in this process on the generator's tiny data, so ``ratings``
and ``anime`` have versions 0 and 1 (same contents, different files; ``conftest.py``); each test
damages a copy. Long-lived logs (checkpoints, expired commits): ``test_long_lived_log.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from anime_recs import tables
from anime_recs.lakehouse import read_table, table_digest, table_path, table_version
from tests.helpers import REPO, load_job
from tests.reliability.lake_jobs import (
    FINGERPRINT_STEP,
    JACCARD_STEP,
    call,
    fails_with_one_line,
    job_args,
)

pytestmark = pytest.mark.e2e  # whole jobs on a damaged lake


@pytest.fixture(scope="module")
def base_lake(ingested_lake) -> Path:
    return ingested_lake  # conftest.py: shared with the long-lived log tests


@pytest.fixture(scope="module")
def digests(spark, base_lake) -> dict[int, str]:
    """``ratings``' content digest at versions 0 and 1 (equal: the same ingest twice)."""
    return {v: table_digest(spark, str(base_lake), tables.RATINGS, v) for v in (0, 1)}


@pytest.fixture()
def lake(base_lake, tmp_path) -> Path:
    copy = tmp_path / "lake"
    shutil.copytree(base_lake, copy)
    return copy


def current_files(lake: Path, name: str = tables.RATINGS) -> list[str]:
    """The data files of the table's latest version (1: an overwrite lists all its files)."""
    commit = lake / name / "_delta_log" / f"{1:020d}.json"
    return [
        json.loads(line)["add"]["path"]
        for line in commit.read_text().splitlines()
        if line.startswith('{"add"')
    ]


def way_back(lake: Path, version: int = 0) -> str:
    return (
        f"restore an earlier version with: python jobs/check.py --set paths.lake={lake} "
        f"--restore ratings --to-version {version}, or rerun jobs/ingest.py"
    )


def restore_and_check(spark, lake: Path, capsys, to: int, digest: str) -> None:
    """Restore ``ratings`` to ``to``: a new version with that version's contents, recorded in
    ``pipeline_runs``; then jobs/check.py reports every table ok."""
    before = max(int(p.stem) for p in (lake / "ratings" / "_delta_log").glob("*.json"))
    argv = [*job_args(lake), "--restore", tables.RATINGS, "--to-version", str(to)]
    code, out, err = call("check", argv, capsys)
    assert code == 0, err[-3000:]
    assert out.strip() == f"restored ratings to version {to}: now version {before + 1}"
    assert table_version(spark, str(lake), tables.RATINGS) == before + 1
    assert table_digest(spark, str(lake), tables.RATINGS) == digest
    record = read_table(spark, str(lake), tables.PIPELINE_RUNS).collect()[-1]
    assert (record.stage, record.status) == ("restore", "succeeded")
    assert json.loads(record.outputs) == {"ratings": before + 1}
    assert json.loads(record.inputs)["to_version"] == to

    code, out, err = call("check", job_args(lake), capsys)
    assert code == 0, out + err[-3000:]
    lines = out.strip().splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["ok", name] for name in ("anime", "pipeline_runs", "ratings", "rejected_rows")
    ]
    now = before + 1
    assert f"ok   ratings version {now}: files=2 versions=0..{now} rows=20000 key=unique" in lines


def test_deleted_data_file(spark, lake, digests, capsys, caplog):
    victim = current_files(lake)[0]
    (lake / "ratings" / victim).unlink()
    line = fails_with_one_line(lake, capsys, caplog)
    assert line == (
        f"error: table ratings (version 1) is damaged: data file {victim} is missing; "
        + way_back(lake)
    )
    assert table_digest(spark, str(lake), tables.RATINGS, 0) == digests[0]  # intact
    code, out, _ = call("check", [*job_args(lake), "--quick", "ratings"], capsys)
    assert code == 1
    assert out.strip() == f"FAIL ratings version 1: {line.removeprefix('error: ')}"
    restore_and_check(spark, lake, capsys, 0, digests[0])
    # and the job runs again
    assert load_job("jaccard").main(job_args(lake)) == 0


def test_flipped_bytes_in_a_data_file(spark, lake, digests, capsys, caplog):
    victim = lake / "ratings" / current_files(lake)[1]
    data = bytearray(victim.read_bytes())
    data[4000:4200] = bytes(b ^ 0xFF for b in data[4000:4200])
    victim.write_bytes(bytes(data))
    line = fails_with_one_line(lake, capsys, caplog)
    assert line == (
        f"error: table ratings (version 1) is damaged: data file {victim.name} is corrupt "
        "(checksum mismatch); " + way_back(lake)
    )
    # --quick only stats the files: the corruption takes the full read
    assert call("check", [*job_args(lake), "--quick", "ratings"], capsys)[0] == 0
    code, out, _ = call("check", [*job_args(lake), "ratings"], capsys)
    assert (code, out.strip()) == (1, f"FAIL ratings version 1: {line.removeprefix('error: ')}")
    assert table_digest(spark, str(lake), tables.RATINGS, 0) == digests[0]
    restore_and_check(spark, lake, capsys, 0, digests[0])


@pytest.mark.parametrize("keep_checksum", [True, False], ids=["with-crc", "without-crc"])
def test_truncated_log_commit(spark, lake, digests, tiny_raw, capsys, caplog, keep_checksum):
    log_dir = lake / "ratings" / "_delta_log"
    commit = log_dir / f"{1:020d}.json"
    commit.write_bytes(commit.read_bytes()[:300])
    if not keep_checksum:
        commit.with_name(f".{commit.name}.crc").unlink()
    problem = "checksum mismatch" if keep_checksum else "truncated or invalid JSON"
    line = fails_with_one_line(lake, capsys, caplog, FINGERPRINT_STEP)
    assert line == (
        "error: table ratings (version 1) is damaged: log entry "
        f"_delta_log/00000000000000000001.json is unreadable ({problem}); Delta cannot read the "
        "table past it: move the files of version 1 (_delta_log/*00000000000000000001.*, "
        f"checksums included) out of {log_dir} (the table is then back at version 0), then "
        "rerun jobs/ingest.py"
    )
    assert table_digest(spark, str(lake), tables.RATINGS, 0) == digests[0]
    code, out, _ = call("check", [*job_args(lake), "--quick", "ratings"], capsys)
    assert (code, out.strip()) == (1, f"FAIL ratings version 1: {line.removeprefix('error: ')}")
    # Delta's RESTORE cannot load the table either: the same line, nothing written
    argv = [*job_args(lake), "--restore", tables.RATINGS, "--to-version", "0"]
    code, _, err = call("check", argv, capsys)
    assert (code, err.strip().splitlines()[-1]) == (2, line)
    assert len(commit.read_bytes()) == 300

    # the operator's move (the evidence kept beside the log): the table is at version 0 again,
    # and the writer's rerun commits a new version 1
    kept = lake / "ratings" / "_damaged_log"
    kept.mkdir()
    for version_file in log_dir.glob("*00000000000000000001.*"):
        shutil.move(version_file, kept / version_file.name)
    code, out, _ = call("check", [*job_args(lake), "ratings"], capsys)
    assert (code, out.strip()) == (
        0,
        "ok   ratings version 0: files=2 versions=0..0 rows=20000 key=unique",
    )
    assert load_job("ingest").main(job_args(lake, tiny_raw)) == 0
    assert table_digest(spark, str(lake), tables.RATINGS) == digests[1]
    code, out, _ = call("check", [*job_args(lake), "ratings"], capsys)
    assert (code, out.strip()) == (
        0,
        "ok   ratings version 1: files=2 versions=0..1 rows=20000 key=unique",
    )


def test_dropped_table_folder(spark, lake, capsys, caplog):
    shutil.rmtree(lake / "anime")
    line = fails_with_one_line(lake, capsys, caplog, FINGERPRINT_STEP)
    assert line == (
        f"error: Delta table 'anime' not found at {lake / 'anime'}: run its stage first "
        "(jobs/ingest.py)"
    )
    code, out, _ = call("check", [*job_args(lake), "anime", "ratings"], capsys)
    assert code == 1
    assert out.strip().splitlines() == [
        f"FAIL anime: missing: no Delta table at {lake / 'anime'}",
        "ok   ratings version 1: files=2 versions=0..1 rows=20000 key=unique",
    ]


def test_table_written_with_another_schema(spark, lake, digests, capsys, caplog):
    path = table_path(str(lake), tables.RATINGS)
    renamed = spark.read.format("delta").load(path).withColumnRenamed("rating", "score")
    renamed.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(path)
    line = fails_with_one_line(lake, capsys, caplog, step="read inputs")
    assert line == (
        "error: table ratings (version 2) does not match its contract in tables.py: missing "
        "column(s) rating int; unexpected column(s) score int; " + way_back(lake, 1)
    )
    code, out, _ = call("check", [*job_args(lake), "--quick", "ratings"], capsys)
    assert (code, out.strip()) == (1, f"FAIL ratings version 2: {line.removeprefix('error: ')}")
    restore_and_check(spark, lake, capsys, 1, digests[1])


@pytest.mark.slow
def test_operator_screen_shows_one_line_and_no_trace(base_lake, tmp_path):
    """The real process: its whole stderr (the JVM's too) holds no trace, one error line."""
    lake = tmp_path / "lake"
    shutil.copytree(base_lake, lake)
    victim = current_files(lake)[0]
    (lake / "ratings" / victim).unlink()
    argv = [sys.executable, str(REPO / "jobs" / "jaccard.py"), *job_args(lake)]
    argv += ["--set", "spark.master=local[1]", "--set", "spark.driver_memory=1g"]
    proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.rstrip("\n").splitlines()
    assert "Traceback" not in proc.stderr and "\tat " not in proc.stderr, proc.stderr[-5000:]
    assert [line for line in lines if line.startswith("error: ")] == [
        f"error: table ratings (version 1) is damaged: data file {victim} is missing; "
        + way_back(lake)
    ]
    assert lines[-1].startswith("error: ")


# --------------------------------------------------------------------------------------------
# Disk full
# --------------------------------------------------------------------------------------------


@pytest.fixture()
def small_disk(tmp_path):
    """A 16 MiB tmpfs mounted at ``tmp_path/disk`` (skips where mounting is not permitted)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)
        if os.path.ismount(mount):
            subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Fill ``disk`` to the last byte with one file; returns it."""
    filler = disk / f"filler-{uuid.uuid4().hex}"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        chunk = 1 << 20
        while chunk:
            try:
                os.write(fd, b"\0" * chunk)
            except OSError:
                chunk //= 2
    finally:
        os.close(fd)
    return filler


def test_disk_full_leaves_the_previous_version_and_the_rerun_completes(
    spark, base_lake, small_disk, capsys, caplog
):
    lake = small_disk / "lake"
    shutil.copytree(base_lake, lake)
    assert load_job("jaccard").main(job_args(lake)) == 0
    name = tables.PROMOTERS  # the stage's first write
    version, digest = table_version(spark, str(lake), name), table_digest(spark, str(lake), name)

    filler = fill(small_disk)
    line = fails_with_one_line(lake, capsys, caplog, JACCARD_STEP, "--force")
    assert line == (
        f"error: no space left on device writing table {name} at {lake / name}: the write was "
        f"not committed, the table stays at version {version}; free space and rerun "
        "jobs/jaccard.py"
    )
    assert table_version(spark, str(lake), name) == version
    assert table_digest(spark, str(lake), name) == digest

    filler.unlink()
    # the write was not committed: the table is still what the last success recorded
    assert load_job("jaccard").main(job_args(lake)) == 0
    assert table_version(spark, str(lake), name) == version
    assert load_job("jaccard").main([*job_args(lake), "--force"]) == 0
    assert table_version(spark, str(lake), name) == version + 1
    assert table_digest(spark, str(lake), name) == digest
