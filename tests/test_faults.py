"""Unit tests of anime_recs.faults, .contract and .delta_log, and of cli.step's failure path,
on small real Delta tables and error texts shaped like Spark's (the real faults met by real
jobs: tests/reliability/test_storage_faults.py; long-lived logs: test_long_lived_log.py there).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from pyspark.sql.types import IntegerType, LongType, StructField, StructType

from anime_recs import delta_log, error_text, faults
from anime_recs.contract import contract_difference
from anime_recs.steps import step
from anime_recs.tables import ANIME, RATINGS, RATINGS_SCHEMA


def data_files(table: Path) -> list[str]:
    return sorted(p.name for p in table.glob("*.parquet"))


@pytest.fixture(scope="module")
def base_ratings(spark, tmp_path_factory) -> tuple[Path, dict[int, list[str]]]:
    """A real ``ratings`` table: v0 = two files, v1 = two other files (an overwrite); and the
    files of each version."""
    table = tmp_path_factory.mktemp("faults_unit") / "lake" / RATINGS
    files: dict[int, list[str]] = {}
    for version, rating in enumerate((7, 9)):
        rows = [(u, u % 5, rating, "train") for u in range(1, 9)]
        df = spark.createDataFrame(rows, RATINGS_SCHEMA).repartition(2)
        df.write.format("delta").mode("overwrite").save(str(table))
        files[version] = sorted(set(data_files(table)) - {f for v in files.values() for f in v})
    return table, files


@pytest.fixture()
def ratings_table(base_ratings, tmp_path) -> Path:
    """A copy of :func:`base_ratings` under this test's ``tmp_path``."""
    table = tmp_path / "lake" / RATINGS
    shutil.copytree(base_ratings[0], table)
    return table


@pytest.fixture()
def files(base_ratings) -> dict[int, list[str]]:
    return base_ratings[1]


# --------------------------------------------------------------------------------------------
# Contract
# --------------------------------------------------------------------------------------------


def schema(*fields: tuple[str, object]) -> StructType:
    return StructType([StructField(n, t, True) for n, t in fields])


CONTRACT = schema(("user_id", IntegerType()), ("anime_id", IntegerType()))


def test_contract_difference_names_each_kind_of_difference():
    assert contract_difference(CONTRACT, CONTRACT) is None
    # nullability is not part of the comparison
    strict = StructType([StructField(f.name, f.dataType, False) for f in CONTRACT.fields])
    assert contract_difference(CONTRACT, strict) is None
    renamed = schema(("user_id", IntegerType()), ("title", IntegerType()))
    assert contract_difference(CONTRACT, renamed) == (
        "missing column(s) anime_id int; unexpected column(s) title int"
    )
    widened = schema(("user_id", LongType()), ("anime_id", IntegerType()))
    assert contract_difference(CONTRACT, widened) == (
        "column type(s) user_id is bigint (contract int)"
    )
    swapped = schema(("anime_id", IntegerType()), ("user_id", IntegerType()))
    assert contract_difference(CONTRACT, swapped) == (
        "column order (anime_id, user_id) differs from the contract's (user_id, anime_id)"
    )


def test_check_contract_raises_one_line_with_the_version_that_meets_it(spark, ratings_table):
    path = str(ratings_table)
    renamed = spark.read.format("delta").load(path).withColumnRenamed("rating", "score")
    renamed.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(path)
    bad = spark.read.format("delta").load(path).schema
    with pytest.raises(faults.StorageFault) as info:
        faults.check_contract(RATINGS, path, bad)
    assert str(info.value) == (
        "table ratings (version 2) does not match its contract in tables.py: missing column(s) "
        "rating int; unexpected column(s) score int; restore an earlier version with: python "
        f"jobs/check.py --set paths.lake={ratings_table.parent} --restore ratings --to-version 1"
        ", or rerun jobs/ingest.py"
    )
    faults.check_contract(RATINGS, path, RATINGS_SCHEMA)  # no error
    faults.check_contract("not_a_contract_table", path, bad)  # no contract


# --------------------------------------------------------------------------------------------
# The log, read by Delta
# --------------------------------------------------------------------------------------------


def test_versions_files_and_the_way_back(spark, ratings_table, files):
    path = str(ratings_table)
    assert delta_log.history_versions(spark, path) == [0, 1]
    assert delta_log.latest_version(spark, path) == 1
    assert delta_log.oldest_version(spark, path) == 0
    assert delta_log.commit_versions(spark, path) == [0, 1]
    present = {f.rsplit("/", 1)[-1] for f in delta_log.data_files(spark, path)}
    assert present == {*files[0], *files[1]}
    assert delta_log.restorable_version(spark, path, below=1) == 0
    # the newest version without the bad file: v1 holds it, v0 does not
    assert delta_log.restorable_version(spark, path, 2, bad_file=files[1][0]) == 0
    assert delta_log.restorable_version(spark, path, 2, bad_file=files[0][0]) == 1
    assert delta_log.restorable_version(spark, path, 1, bad_file=files[0][0]) is None
    assert delta_log.restorable_version(spark, path, 2, schema_ok=lambda s: False) is None
    (ratings_table / files[0][1]).unlink()  # v0 is no way back when one of its files is gone
    assert delta_log.restorable_version(spark, path, below=1) is None


@pytest.mark.parametrize("keep_checksum", [True, False], ids=["with-crc", "without-crc"])
def test_a_damaged_commit_is_found_by_reading_the_log(spark, ratings_table, keep_checksum):
    path = str(ratings_table)
    assert delta_log.damaged_commit(spark, path) is None
    commit = ratings_table / delta_log.commit_name(1)
    commit.write_bytes(commit.read_bytes()[:40])
    if not keep_checksum:
        commit.with_name(f".{commit.name}.crc").unlink()
    uri, version, problem = delta_log.damaged_commit(spark, path)
    assert (delta_log.normalized(uri), version) == (f"file:{commit}", 1)
    assert problem == ("checksum mismatch" if keep_checksum else "truncated or invalid JSON")
    assert delta_log.commit_versions(spark, path) == [0, 1]  # a listing still has them


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


def test_missing_and_corrupt_data_files_are_diagnosed_with_the_way_back(
    spark, ratings_table, files
):
    lake = ratings_table.parent
    victim = files[1][0]
    uri = f"file:{ratings_table}/{victim}"
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
        f"table ratings (version 1) is damaged: data file {victim} is missing; {way_back}"
    )
    corrupt = spark_error(
        f"org.apache.hadoop.fs.ChecksumException: Checksum error: {uri} at 4608 exp: 1 got: 2"
    )
    assert faults.diagnose(corrupt) == (
        f"table ratings (version 1) is damaged: data file {victim} is corrupt "
        f"(checksum mismatch); {way_back}"
    )
    # v2 (a restore of v0) holds v0's files again: the newest version without one is v1
    spark.sql(f"RESTORE TABLE delta.`{ratings_table}` TO VERSION AS OF 0")
    old = files[0][0]
    error = spark_error(f"ParquetDecodingException: in file file://{ratings_table}/{old}")
    assert faults.diagnose(error) == (
        f"table ratings (version 2) is damaged: data file {old} is corrupt (Parquet decoding "
        f"error); {way_back.replace('--to-version 0', '--to-version 1')}"
    )
    # a table that only ever had the damaged file: only the rerun is left
    only = lake / ANIME
    spark.createDataFrame([(1,)], "anime_id INT").coalesce(1).write.format("delta").save(str(only))
    (name,) = data_files(only)
    assert faults.diagnose(
        spark_error(f"ChecksumException: Checksum error: file:{only}/{name} at 0")
    ) == (
        f"table anime (version 0) is damaged: data file {name} is corrupt (checksum "
        "mismatch); rerun jobs/ingest.py to rewrite it"
    )


def test_unreadable_commit_is_found_from_the_table_an_error_passed_through(ratings_table):
    commit = ratings_table / delta_log.commit_name(1)
    good = commit.read_bytes()
    commit.write_bytes(good[:40])
    commit.with_name(f".{commit.name}.crc").unlink()  # a truncated write leaves no checksum

    def jackson_error() -> Exception:
        # Jackson's message names no file: the lakehouse call the error left names the table
        with pytest.raises(RuntimeError) as info:
            with faults.touching(RATINGS, str(ratings_table)):
                raise spark_error("com.fasterxml.jackson.core.io.JsonEOFException: Unexpected end")
        return info.value

    assert faults.diagnose(jackson_error()) == (
        "table ratings (version 1) is damaged: log entry _delta_log/00000000000000000001.json is "
        "unreadable (truncated or invalid JSON); Delta cannot read the table past it: move the "
        "files of version 1 (_delta_log/*00000000000000000001.*, checksums included) out of "
        f"{ratings_table}/_delta_log (the table is then back at version 0), then rerun "
        "jobs/ingest.py"
    )
    # the same error on a whole table is not a storage fault
    commit.write_bytes(good)
    assert faults.diagnose(jackson_error()) is None


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


def test_a_damaged_promoters_file_names_the_table_above_its_block_partition(spark, tmp_path):
    from anime_recs.lakehouse import write_table
    from anime_recs.tables import PROMOTERS, PROMOTERS_SCHEMA

    lake = tmp_path / "lake"
    rows = [(3, 0, 2, [1, 2]), (5, 1, 1, [2]), (8, 1, 2, [1, 3])]
    df = spark.createDataFrame(rows, PROMOTERS_SCHEMA)
    assert (
        write_table(df, str(lake), PROMOTERS, PROMOTERS_SCHEMA, partition_by=["title_block"]) == 0
    )
    (victim,) = (lake / PROMOTERS / "title_block=1").glob("*.parquet")
    error = spark_error(f"ChecksumException: Checksum error: file:{victim} at 0")
    assert faults.diagnose(error) == (
        f"table promoters (version 0) is damaged: data file title_block=1/{victim.name} is "
        "corrupt (checksum mismatch); rerun jobs/jaccard.py to rewrite it"
    )


# --------------------------------------------------------------------------------------------
# The errors of the pinned Spark and Delta, read by error_text
# --------------------------------------------------------------------------------------------


def read_failure(spark, table: Path) -> Exception:
    with pytest.raises(Exception) as info:  # noqa: PT011 - whatever Spark raises is the subject
        spark.read.format("delta").load(str(table)).collect()
    return info.value


def test_a_missing_data_file_is_read_from_the_condition_spark_raises(spark, ratings_table, files):
    victim = ratings_table / files[1][0]
    victim.unlink()
    error = read_failure(spark, ratings_table)
    assert error_text.java_causes(error)[:2] == [
        ("org.apache.spark.SparkException", "FAILED_READ_FILE.FILE_NOT_EXIST"),
        ("java.io.FileNotFoundException", None),
    ]
    assert "FAILED_READ_FILE.FILE_NOT_EXIST" in error_text.conditions(error)
    facts = error_text.read_error(error)
    assert delta_log.normalized(facts.data_file) == f"file:{victim}"
    assert facts.data_file_problem == "is missing"
    assert faults.diagnose(error).startswith(
        f"table ratings (version 1) is damaged: data file {victim.name} is missing; "
    )


def test_flipped_bytes_in_a_data_file_are_read_as_corrupt(spark, ratings_table, files):
    victim = ratings_table / files[1][0]
    data = bytearray(victim.read_bytes())
    data[4:40] = bytes(36)  # the first column chunk: the checksum (and the decoder) fail
    victim.write_bytes(bytes(data))
    facts = error_text.read_error(read_failure(spark, ratings_table))
    assert delta_log.normalized(facts.data_file) == f"file:{victim}"
    assert facts.data_file_problem == "is corrupt (checksum mismatch)"


def test_a_truncated_commit_is_read_from_what_jackson_and_hadoop_say(spark, ratings_table):
    commit = ratings_table / delta_log.commit_name(1)
    commit.write_bytes(commit.read_bytes()[:40])
    commit.with_name(f".{commit.name}.crc").unlink()
    facts = error_text.read_error(read_failure(spark, ratings_table))
    assert facts.log_error
    assert facts.data_file is None


def test_the_java_cause_and_a_delta_conflict_are_read_from_py4j_text():
    error = spark_error(
        "io.delta.exceptions.ConcurrentAppendException: [DELTA_CONCURRENT_APPEND] "
        "ConcurrentAppendException: Files were added to the root of the table"
    )
    facts = error_text.read_error(error)
    assert facts.conflict == (
        "ConcurrentAppendException",
        "Files were added to the root of the table",
    )
    assert facts.root_cause.startswith("io.delta.exceptions.ConcurrentAppendException")
    assert error_text.read_error(ValueError("plain")) == error_text.ErrorFacts()
