"""Unit tests of anime_recs.faults and of cli.step's failure path, on hand-made Delta logs and
error texts shaped like Spark's (the real faults on a real lake: tests/reliability/
test_storage_faults.py)."""

from __future__ import annotations

import json
import logging
import struct
from pathlib import Path

import pytest
from pyspark.sql.types import IntegerType, LongType, StringType, StructField, StructType

from anime_recs import faults
from anime_recs.steps import step
from anime_recs.tables import ANIME_SCHEMA, RATINGS, RATINGS_SCHEMA

FILE_A = "part-00000-aaaa-c000.snappy.parquet"
FILE_B = "part-00001-bbbb-c000.snappy.parquet"
FILE_C = "part-00000-cccc-c000.snappy.parquet"


def commit(table: Path, version: int, *actions: dict) -> Path:
    path = table / "_delta_log" / f"{version:020d}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(a) + "\n" for a in actions))
    return path


def add(path: str) -> dict:
    return {"add": {"path": path, "size": 1, "dataChange": True}}


def remove(path: str) -> dict:
    return {"remove": {"path": path, "dataChange": True}}


def metadata(schema: StructType) -> dict:
    return {"metaData": {"id": "x", "schemaString": schema.json(), "partitionColumns": []}}


@pytest.fixture()
def ratings_table(tmp_path) -> Path:
    """A hand-made ``ratings`` log: v0 = {A, B}; v1 = {C} (overwrite); files exist."""
    table = tmp_path / "lake" / RATINGS
    commit(table, 0, {"commitInfo": {}}, metadata(RATINGS_SCHEMA), add(FILE_A), add(FILE_B))
    commit(table, 1, {"commitInfo": {}}, remove(FILE_A), remove(FILE_B), add(FILE_C))
    for name in (FILE_A, FILE_B, FILE_C):
        (table / name).write_bytes(b"PAR1")
    return table


# --------------------------------------------------------------------------------------------
# Contract
# --------------------------------------------------------------------------------------------


def schema(*fields: tuple[str, object]) -> StructType:
    return StructType([StructField(n, t, True) for n, t in fields])


CONTRACT = schema(("user_id", IntegerType()), ("anime_id", IntegerType()))


def test_contract_difference_names_each_kind_of_difference():
    assert faults.contract_difference(CONTRACT, CONTRACT) is None
    # nullability is not part of the comparison
    strict = StructType([StructField(f.name, f.dataType, False) for f in CONTRACT.fields])
    assert faults.contract_difference(CONTRACT, strict) is None
    renamed = schema(("user_id", IntegerType()), ("title", IntegerType()))
    assert faults.contract_difference(CONTRACT, renamed) == (
        "missing column(s) anime_id int; unexpected column(s) title int"
    )
    widened = schema(("user_id", LongType()), ("anime_id", IntegerType()))
    assert faults.contract_difference(CONTRACT, widened) == (
        "column type(s) user_id is bigint (contract int)"
    )
    swapped = schema(("anime_id", IntegerType()), ("user_id", IntegerType()))
    assert faults.contract_difference(CONTRACT, swapped) == (
        "column order (anime_id, user_id) differs from the contract's (user_id, anime_id)"
    )


def test_check_contract_raises_one_line_with_the_version_that_meets_it(ratings_table):
    bad = StructType([*RATINGS_SCHEMA.fields[:2], StructField("score", StringType())])
    commit(ratings_table, 2, metadata(bad))
    lake = str(ratings_table.parent)
    with pytest.raises(faults.StorageFault) as info:
        faults.check_contract(RATINGS, str(ratings_table), bad)
    assert str(info.value) == (
        "table ratings (version 2) does not match its contract in tables.py: missing column(s) "
        "rating int, split string; unexpected column(s) score string; restore an earlier "
        f"version with: python jobs/check.py --set paths.lake={lake} --restore ratings "
        "--to-version 1, or rerun jobs/ingest.py"
    )
    faults.check_contract(RATINGS, str(ratings_table), RATINGS_SCHEMA)  # no error
    faults.check_contract("not_a_contract_table", str(ratings_table), bad)  # no contract


# --------------------------------------------------------------------------------------------
# The log, read without a JVM
# --------------------------------------------------------------------------------------------


def test_hadoop_checksum_sidecar_format(tmp_path):
    data = tmp_path / "f.json"
    data.write_bytes(b"123456789")
    sidecar = tmp_path / ".f.json.crc"
    assert faults.hadoop_checksum_ok(data) is None  # no sidecar
    # CRC-32 of "123456789" is the standard check value 0xCBF43926; chunks of 512 bytes
    sidecar.write_bytes(b"crc\x00" + struct.pack(">i", 512) + struct.pack(">I", 0xCBF43926))
    assert faults.hadoop_checksum_ok(data) is True
    data.write_bytes(b"123456780")
    assert faults.hadoop_checksum_ok(data) is False


def test_commit_problem_tells_truncated_from_good(ratings_table):
    path = faults.commit_path(ratings_table, 1)
    assert faults.commit_problem(path) is None
    path.write_bytes(path.read_bytes()[:10])
    assert faults.commit_problem(path) == "truncated or invalid JSON at line 1"
    assert faults.damaged_commits(ratings_table) == [(1, "truncated or invalid JSON at line 1")]
    path.write_bytes(b"")
    assert faults.commit_problem(path) == "empty"


def test_replay_and_restorable_version(ratings_table):
    states = faults.replay(ratings_table)
    assert {v: s.files for v, s in states.items()} == {0: {FILE_A, FILE_B}, 1: {FILE_C}}
    assert states[1].schema == RATINGS_SCHEMA
    assert faults.restorable_version(ratings_table, RATINGS, below=1) == 0
    # the newest version without the bad file: v1 holds C, v0 does not; v0 holds A
    assert faults.restorable_version(ratings_table, RATINGS, 2, bad_file=FILE_C) == 0
    assert faults.restorable_version(ratings_table, RATINGS, 2, bad_file=FILE_A) == 1
    assert faults.restorable_version(ratings_table, RATINGS, 1, bad_file=FILE_A) is None
    (ratings_table / FILE_B).unlink()  # v0 is no way back when one of its files is gone
    assert faults.restorable_version(ratings_table, RATINGS, below=1) is None


# --------------------------------------------------------------------------------------------
# Diagnosis of errors shaped like Spark's
# --------------------------------------------------------------------------------------------


def spark_error(text: str) -> Exception:
    """An error whose text is like a Py4JJavaError's (Java trace with ``Caused by:``)."""
    return RuntimeError(
        "An error occurred while calling o183.getResult.\n"
        ": org.apache.spark.SparkException: Exception thrown in awaitResult: \n"
        "\tat org.apache.spark.util.SparkThreadUtils$.awaitResult(SparkThreadUtils.scala:53)\n"
        f"Caused by: {text}\n\tat org.apache.spark.sql.execution.datasources.FileScanRDD\n"
    )


def test_missing_and_corrupt_data_files_are_diagnosed_with_the_way_back(ratings_table):
    lake = ratings_table.parent
    uri = f"file:{ratings_table}/{FILE_C}"
    missing = spark_error(
        f"org.apache.spark.SparkException: [FAILED_READ_FILE.FILE_NOT_EXIST] Encountered error "
        f"while reading file {uri}. File does not exist. It is possible the underlying files "
        "have been updated."
    )
    way_back = (
        f"restore an earlier version with: python jobs/check.py --set paths.lake={lake} "
        "--restore ratings --to-version 0, or rerun jobs/ingest.py"
    )
    assert faults.diagnose(missing) == (
        f"table ratings (version 1) is damaged: data file {FILE_C} is missing; {way_back}"
    )
    corrupt = spark_error(
        f"org.apache.hadoop.fs.ChecksumException: Checksum error: {uri} at 4608 exp: 1 got: 2"
    )
    assert faults.diagnose(corrupt) == (
        f"table ratings (version 1) is damaged: data file {FILE_C} is corrupt "
        f"(checksum mismatch); {way_back}"
    )
    # v2 adds A back: the newest version without A is v1
    uri_a = f"file:{ratings_table}/{FILE_A}"
    commit(ratings_table, 2, remove(FILE_C), add(FILE_A))
    assert faults.diagnose(spark_error(f"ParquetDecodingException: in file {uri_a}")) == (
        f"table ratings (version 2) is damaged: data file {FILE_A} is corrupt (Parquet decoding "
        f"error); {way_back.replace('--to-version 0', '--to-version 1')}"
    )
    # a table that only ever had the damaged file: only the rerun is left
    only = ratings_table.parent / "anime"
    commit(only, 0, metadata(ANIME_SCHEMA), add(FILE_A))
    assert faults.diagnose(
        spark_error(f"ChecksumException: Checksum error: file:{only}/{FILE_A} at 0")
    ) == (
        f"table anime (version 0) is damaged: data file {FILE_A} is corrupt (checksum "
        "mismatch); rerun jobs/ingest.py to rewrite it"
    )


def test_unreadable_commit_is_found_from_the_table_an_error_passed_through(ratings_table):
    path = faults.commit_path(ratings_table, 1)
    path.write_bytes(path.read_bytes()[:10])
    # Jackson's message names no file: the lakehouse call the error left names the table
    with pytest.raises(RuntimeError) as info:
        with faults.touching(RATINGS, str(ratings_table)):
            raise spark_error("com.fasterxml.jackson.core.JsonParseException: Unexpected end")
    assert faults.diagnose(info.value) == (
        "table ratings (version 1) is damaged: log entry _delta_log/00000000000000000001.json is "
        "unreadable (truncated or invalid JSON at line 1); restore an earlier version with: "
        f"python jobs/check.py --set paths.lake={ratings_table.parent} --restore ratings "
        "--to-version 0, or rerun jobs/ingest.py"
    )
    # the same error on a whole table is not a storage fault
    path.write_text(json.dumps({"commitInfo": {}}) + "\n")
    assert faults.diagnose(info.value) is None


def test_no_space_left_names_the_table_and_its_unchanged_version(ratings_table):
    error = spark_error(
        "org.apache.spark.SparkException: [TASK_WRITE_FAILED] Task failed while writing rows to "
        f"file:{ratings_table}.\nCaused by: java.io.IOException: No space left on device"
    )
    assert faults.diagnose(error) == (
        f"no space left on device writing table ratings at {ratings_table}: the write was not "
        "committed, the table stays at version 1; free space and rerun jobs/ingest.py"
    )
    assert faults.diagnose(OSError(28, "No space left on device", "/x/y")) == (
        "no space left on device writing /x/y; free space, rerun"
    )


def test_other_errors_get_no_diagnosis_and_a_short_reason():
    error = spark_error("java.lang.IllegalStateException: something else\n")
    assert faults.diagnose(error) is None
    assert faults.one_line(error) == "java.lang.IllegalStateException: something else"
    assert faults.one_line(ValueError("bad\nsecond line")) == "ValueError: bad"
    assert len(faults.one_line(ValueError("x" * 1000))) == 400


# --------------------------------------------------------------------------------------------
# cli.step
# --------------------------------------------------------------------------------------------


def test_a_failing_step_is_logged_failed_with_reason_never_done(caplog):
    caplog.set_level(logging.INFO, logger="anime_recs")
    with pytest.raises(ValueError) as info:
        with step("outer"):
            with step("inner") as facts:
                facts["rows"] = 3
                raise ValueError("boom")
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    failed = [m for m in messages if ": failed after " in m[1]]
    assert [level for level, _ in failed] == ["ERROR", "ERROR"]
    assert failed[0][1].startswith("step inner: failed after 0.0s: ValueError: boom")
    assert failed[1][1].startswith("step outer: failed after 0.0s: ValueError: boom")
    assert not [m for m in messages if "done in" in m[1]]
    assert faults.failed_step(info.value) == "inner"  # the innermost step
    assert faults.failure_record(info.value) == {
        "failed_step": "inner",
        "error": "ValueError: boom",
    }

    # an error wrapping another keeps the wrapped error's (innermost) step
    try:
        try:
            with step("request"):
                raise OSError("reset")
        except OSError as exc:
            raise RuntimeError("wrapped") from exc
    except RuntimeError as wrapped:
        assert faults.failed_step(wrapped) == "request"

    caplog.clear()
    with step("fine") as facts:
        facts["rows"] = 1
    assert [r.getMessage() for r in caplog.records][-1].startswith("step fine: done in 0.0s rows=1")
