"""Tables with the log of a month of daily runs, made for real: ``jobs/check.py`` reads them
through Delta, checkpoints and cleaned-up commits included.

- *long-lived*: the ingested lake's ``ratings`` with 24 commits and a Parquet checkpoint every
  5 (versions 5, 10, 15, 20), each in several parts; every JSON commit is still there.
- *expired*: the same, after Delta's log cleanup: the files of versions 0-19 aged a month
  (past the table's one-day ``delta.logRetentionDuration``), then the checkpoint of version 25
  makes Delta remove them; versions 20-26 are left, the oldest restorable is 20.

On both, ``jobs/check.py`` is clean, finds each storage fault of ``test_storage_faults.py``
with the way back, and ``--restore`` brings a kept version back; a restore to a removed version
exits 2 with one line naming the oldest restorable one.

A daily run here is one commit: a table-property commit stands in for most of them (the log
grows as with a write, in a fraction of its time) and a DELETE is the last, so the newest
version's data files are not those of the versions before it. The lakes are built once per
module; each test damages its own copy.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from anime_recs import delta_log, tables
from anime_recs.lakehouse import read_table, table_digest, table_path
from tests.reliability.lake_jobs import FINGERPRINT_STEP, call, fails_with_one_line, job_args

pytestmark = pytest.mark.e2e  # whole jobs (check, restore, jaccard) on long-lived lakes

RATINGS = tables.RATINGS
BEFORE_DELETE = 22  # the last property commit: ingest's contents and files
LATEST = {"long-lived": 23, "expired": 26}
OLDEST = {"long-lived": 0, "expired": 20}
PART_SIZE = "spark.databricks.delta.checkpoint.partSize"


def sql_commit(spark, lake: Path, statement: str) -> None:
    spark.sql(statement.format(table=f"delta.`{table_path(str(lake), RATINGS)}`"))


def log_versions(lake: Path, suffix: str) -> list[int]:
    """The versions with a file ending in ``suffix`` (a glob) in ``ratings``' log folder."""
    log_dir = lake / RATINGS / "_delta_log"
    return sorted({int(p.name.split(".")[0]) for p in log_dir.glob(f"[0-9]*{suffix}")})


@pytest.fixture(scope="module")
def long_lived(spark, ingested_lake, tmp_path_factory) -> Path:
    lake = tmp_path_factory.mktemp("long_lived") / "lake"
    shutil.copytree(ingested_lake, lake)
    sql_commit(
        spark,
        lake,
        "ALTER TABLE {table} SET TBLPROPERTIES ('delta.checkpointInterval' = '5', "
        "'delta.logRetentionDuration' = 'interval 1 days')",
    )
    # multi-part checkpoints: Delta writes a part per this many actions
    spark.conf.set(PART_SIZE, "2")
    try:
        for day in range(3, BEFORE_DELETE + 1):
            sql_commit(spark, lake, f"ALTER TABLE {{table}} SET TBLPROPERTIES ('day' = '{day}')")
        sql_commit(spark, lake, "DELETE FROM {table} WHERE user_id % 10 = 0")
    finally:
        spark.conf.unset(PART_SIZE)
    assert log_versions(lake, ".json") == list(range(24))
    assert log_versions(lake, ".checkpoint.*.parquet") == [5, 10, 15, 20]  # multi-part
    return lake


@pytest.fixture(scope="module")
def expired(spark, long_lived, tmp_path_factory) -> Path:
    lake = tmp_path_factory.mktemp("expired") / "lake"
    shutil.copytree(long_lived, lake)
    # Delta removes log files older than the retention period (counted in whole days) and
    # below the newest checkpoint, when it writes a checkpoint: age versions 0-19 a month
    month_ago = time.time() - 30 * 86400
    for path in (lake / RATINGS / "_delta_log").iterdir():
        number = path.name.lstrip(".").split(".")[0]
        if number.isdigit() and int(number) < OLDEST["expired"]:
            os.utime(path, (month_ago, month_ago))
    for day in range(24, 27):
        sql_commit(spark, lake, f"ALTER TABLE {{table}} SET TBLPROPERTIES ('day' = '{day}')")
    return lake


@pytest.fixture(params=["long-lived", "expired"])
def variant(request) -> str:
    return request.param


@pytest.fixture()
def lake(request, variant, tmp_path) -> Path:
    """A copy of the *long-lived* or the *expired* lake for this test."""
    copy = tmp_path / "lake"
    shutil.copytree(request.getfixturevalue(variant.replace("-", "_")), copy)
    return copy


def way_back(lake: Path, version: int) -> str:
    return (
        f"restore an earlier version with: python jobs/check.py --set paths.lake={lake} "
        f"--restore ratings --to-version {version}, or rerun jobs/ingest.py"
    )


def newest_files(spark, lake: Path) -> list[str]:
    """The data files of the newest version that the version before the DELETE lacks."""
    path = table_path(str(lake), RATINGS)
    old = set(delta_log.snapshot(spark, path, BEFORE_DELETE).inputFiles())
    new = delta_log.snapshot(spark, path).inputFiles()
    return sorted(f.rsplit("/", 1)[-1] for f in new if f not in old)


def test_the_logs_have_checkpoints_and_the_cleanup_removed_the_early_commits(
    spark, long_lived, expired
):
    assert log_versions(expired, ".json") == list(range(20, 27))
    assert log_versions(expired, ".checkpoint.*.parquet") == [20]  # in parts
    assert log_versions(expired, ".checkpoint.parquet") == [25]  # one file
    assert (expired / RATINGS / "_delta_log" / "_last_checkpoint").is_file()
    for lake, variant in ((long_lived, "long-lived"), (expired, "expired")):
        path = table_path(str(lake), RATINGS)
        kept = delta_log.history_versions(spark, path)
        assert kept == list(range(OLDEST[variant], LATEST[variant] + 1))
        assert delta_log.oldest_version(spark, path, kept) == OLDEST[variant]


def test_check_is_clean(spark, lake, variant, capsys):
    code, out, err = call("check", job_args(lake), capsys)
    assert code == 0, out + err[-3000:]
    df = spark.read.format("delta").load(table_path(str(lake), RATINGS))
    latest, oldest = LATEST[variant], OLDEST[variant]
    lines = out.strip().splitlines()
    # every table of the lake, the run log of the ingest runs included
    assert [line.split()[:2] for line in lines] == [
        ["ok", name] for name in ("anime", tables.PIPELINE_RUNS, RATINGS, "rejected_rows")
    ]
    assert lines[2] == (
        f"ok   ratings version {latest}: files={len(df.inputFiles())} versions={oldest}..{latest} "
        f"rows={df.count()} key=unique"
    )


@pytest.fixture(scope="module")
def ingest_digest(spark, ingested_lake) -> str:
    """``ratings``' content as ingest wrote it: that of every version before the DELETE."""
    return table_digest(spark, str(ingested_lake), RATINGS)


def test_restore_to_a_kept_version(spark, lake, variant, ingest_digest, capsys):
    latest = LATEST[variant]
    argv = [*job_args(lake), "--restore", RATINGS, "--to-version", str(BEFORE_DELETE)]
    code, out, err = call("check", argv, capsys)
    assert code == 0, err[-3000:]
    assert out.strip() == f"restored ratings to version {BEFORE_DELETE}: now version {latest + 1}"
    assert table_digest(spark, str(lake), RATINGS) == ingest_digest
    record = read_table(spark, str(lake), tables.PIPELINE_RUNS).collect()[-1]
    assert (record.stage, record.status) == ("restore", "succeeded")
    assert json.loads(record.outputs) == {RATINGS: latest + 1}
    code, out, _ = call("check", [*job_args(lake), "--quick", RATINGS], capsys)
    assert (code, out.strip()) == (
        0,
        f"ok   ratings version {latest + 1}: files=2 versions={OLDEST[variant]}..{latest + 1}",
    )


def test_restore_to_a_removed_version_names_the_oldest_restorable(expired, tmp_path, capsys):
    lake = tmp_path / "lake"
    shutil.copytree(expired, lake)
    for version in (3, 19):
        argv = [*job_args(lake), "--restore", RATINGS, "--to-version", str(version)]
        code, out, err = call("check", argv, capsys)
        assert (code, out, "Traceback" in err) == (2, "", False)
        assert err.strip().splitlines()[-1] == (
            f"error: table ratings cannot be restored to version {version}: the oldest "
            "restorable version is 20, the latest 26 (the commits before version 20 were removed "
            "after the table's delta.logRetentionDuration); pick one of 20..26"
        )


# --------------------------------------------------------------------------------------------
# The storage faults of test_storage_faults.py, on the long-lived logs
# --------------------------------------------------------------------------------------------


def check_fails(lake: Path, capsys, *args: str) -> str:
    """``jobs/check.py ARGS`` on the damaged lake: exit 1, its one FAIL line for ratings."""
    code, out, err = call("check", [*job_args(lake), *args], capsys)
    assert code == 1, out + err[-3000:]
    (line,) = [line for line in out.splitlines() if line.startswith("FAIL ratings")]
    return line


def test_deleted_data_file(spark, lake, variant, capsys):
    victim = newest_files(spark, lake)[0]
    (lake / RATINGS / victim).unlink()
    latest = LATEST[variant]
    assert check_fails(lake, capsys, "--quick", RATINGS) == (
        f"FAIL ratings version {latest}: table ratings (version {latest}) is damaged: data file "
        f"{victim} is missing; " + way_back(lake, BEFORE_DELETE)
    )


def test_flipped_bytes_in_a_data_file(spark, lake, variant, capsys):
    victim = lake / RATINGS / newest_files(spark, lake)[0]
    data = bytearray(victim.read_bytes())
    data[200:400] = bytes(b ^ 0xFF for b in data[200:400])
    victim.write_bytes(bytes(data))
    latest = LATEST[variant]
    assert check_fails(lake, capsys, RATINGS) == (
        f"FAIL ratings version {latest}: table ratings (version {latest}) is damaged: data file "
        f"{victim.name} is corrupt (checksum mismatch); " + way_back(lake, BEFORE_DELETE)
    )


def test_truncated_log_commit(lake, variant, capsys, caplog):
    """The newest commit, after a checkpoint, cut short without its Hadoop checksum: DESCRIBE
    HISTORY's error names no file, the diagnosis finds it; the real job says the same."""
    latest = LATEST[variant]
    log_dir = lake / RATINGS / "_delta_log"
    commit = log_dir / f"{latest:020d}.json"
    commit.write_bytes(commit.read_bytes()[:100])
    commit.with_name(f".{commit.name}.crc").unlink()
    line = (
        f"table ratings (version {latest}) is damaged: log entry _delta_log/{latest:020d}.json "
        "is unreadable (truncated or invalid JSON); Delta cannot read the table past it: move the "
        f"files of version {latest} (_delta_log/*{latest:020d}.*, checksums included) out of "
        f"{log_dir} (the table is then back at version {latest - 1}), then rerun jobs/ingest.py"
    )
    assert check_fails(lake, capsys, "--quick", RATINGS) == f"FAIL ratings version {latest}: {line}"
    assert fails_with_one_line(lake, capsys, caplog, FINGERPRINT_STEP) == f"error: {line}"


def test_dropped_table_folder(lake, capsys):
    shutil.rmtree(lake / RATINGS)
    assert check_fails(lake, capsys, "--quick", RATINGS) == (
        f"FAIL ratings: missing: no Delta table at {lake / RATINGS}"
    )


def test_table_written_with_another_schema(spark, lake, variant, capsys):
    path = table_path(str(lake), RATINGS)
    renamed = spark.read.format("delta").load(path).withColumnRenamed("rating", "score")
    renamed.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(path)
    latest = LATEST[variant] + 1
    assert check_fails(lake, capsys, "--quick", RATINGS) == (
        f"FAIL ratings version {latest}: table ratings (version {latest}) does not match its "
        "contract in tables.py: missing column(s) rating int; unexpected column(s) score int; "
        + way_back(lake, latest - 1)
    )
