"""animelist.csv -> watch_status: the real 500-line sample, the row rules, the ingest job."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from pyspark.testing import assertDataFrameEqual

from anime_recs import tables
from anime_recs.data.watch_status import (
    ANIMELIST_FILE,
    DEFAULT_STATUS_CODES,
    STATUS_FILE,
    animelist_present,
    ingest_watch_status,
    parse_status_codes,
    status_codes,
)
from anime_recs.errors import JobError
from anime_recs.lakehouse import read_table
from tests.data.raw_files import job_argv, small_files, write_raw
from tests.helpers import load_job

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "data" / "mal2020_samples"


@pytest.fixture(scope="module")
def samples() -> Path:
    if not (SAMPLES / ANIMELIST_FILE).is_file():
        pytest.skip("../shared/data/mal2020_samples not present")
    return SAMPLES


def test_status_codes_of_the_real_file_and_the_default(samples, tmp_path):
    # the real file: "status, description" (blank after the comma), codes 1-4 and 6, no final
    # newline
    assert status_codes(samples) == (1, 2, 3, 4, 6)
    assert status_codes(tmp_path) == DEFAULT_STATUS_CODES  # file absent
    assert parse_status_codes("status,description\n\n7,Seven\n1,One") == (1, 7)
    with pytest.raises(JobError, match="status code 'x' is not an integer"):
        parse_status_codes("status, description\nx,bad\n")
    with pytest.raises(JobError, match="header starting with 'status'"):
        parse_status_codes("code,description\n1,a\n")


def test_real_sample_is_accepted_whole_and_unknown_titles_rejected(spark, samples):
    with open(samples / ANIMELIST_FILE, newline="") as f:
        rows = list(csv.DictReader(f))
    ids = sorted({int(r["anime_id"]) for r in rows})
    dropped = ids[0]  # one title not in `anime`: its rows are rejected
    anime_ids = spark.createDataFrame([(i,) for i in ids[1:]], "anime_id INT")
    assert animelist_present(samples)
    result = ingest_watch_status(spark, samples, anime_ids)
    try:
        n_dropped = sum(int(r["anime_id"]) == dropped for r in rows)
        assert result.counts.total == len(rows) == 499
        assert result.counts.rejected == {"unknown_anime_id": n_dropped}
        want = [
            tuple(int(r[c]) for c in tables.WATCH_STATUS_SCHEMA.fieldNames())
            for r in rows
            if int(r["anime_id"]) != dropped
        ]
        assertDataFrameEqual(result.rows, spark.createDataFrame(want, tables.WATCH_STATUS_SCHEMA))
        # rating 0 (not rated) and every status code of the sample are kept
        got = result.rows.collect()
        assert {r.rating for r in got} >= {0, 10}
        assert {r.watching_status for r in got} == {1, 2, 3, 4, 6}
        assert result.rejected.count() == n_dropped
    finally:
        result.unpersist()


BAD_LINES = {
    "1,1,11,1,0": "rating_out_of_range",
    "1,2,7.5,1,0": "non_integer_rating",
    "1,3,,1,0": "missing_rating",
    "2,1,5,5,0": "unknown_watching_status",  # no code 5 in watching_status.csv
    "2,2,5,x,0": "invalid_value",
    "2,3,5,2,-1": "invalid_value",
    "3,1,5,2,": "missing_value",
    "3,2,5,2": "wrong_field_count",
    "a,3,5,2,1": "non_numeric_id",
    "4,9,5,2,1": "unknown_anime_id",
    "1,4,8,2,12": "duplicate_key",  # 1,4 appears earlier in the file
}


def test_row_rules(spark, samples, tmp_path):
    good = ["1,4,0,6,0", "4,1,+7,2,3", "4,2,7.0,3,1"]
    lines = ["user_id,anime_id,rating,watching_status,watched_episodes", *good, *BAD_LINES]
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / ANIMELIST_FILE).write_text("\r\n".join(lines) + "\r\n")
    (raw / STATUS_FILE).write_bytes((samples / STATUS_FILE).read_bytes())
    anime_ids = spark.createDataFrame([(1,), (2,), (3,), (4,)], "anime_id INT")
    result = ingest_watch_status(spark, raw, anime_ids)
    try:
        assert sorted(tuple(r) for r in result.rows.collect()) == [
            (1, 4, 0, 6, 0),
            (4, 1, 7, 2, 3),
            (4, 2, 7, 3, 1),
        ]
        got = {r.record: r.reason for r in result.rejected.collect()}
        assert got == BAD_LINES
        assert result.counts.accepted == 3 and result.counts.total == 3 + len(BAD_LINES)
    finally:
        result.unpersist()


def test_missing_column_fails_fast(spark, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / ANIMELIST_FILE).write_text("user_id,anime_id,rating,watched_episodes\n1,1,0,0\n")
    anime_ids = spark.createDataFrame([(1,)], "anime_id INT")
    with pytest.raises(JobError, match="animelist.csv: missing required column 'watching_status'"):
        ingest_watch_status(spark, raw, anime_ids)


@pytest.mark.e2e
def test_ingest_job_writes_watch_status_and_its_rejections(spark, lake, tmp_path):
    files = {**small_files(), ANIMELIST_FILE: "user_id,anime_id,rating,watching_status,"
             "watched_episodes\n10,3,0,6,0\n11,2,8,2,1\n12,9,0,1,0\n"}  # fmt: skip
    raw = write_raw(tmp_path / "raw", files)
    argv = job_argv(raw, lake, "--set", "ingest.max_rejected_fraction=0.5")
    assert load_job("ingest").main(argv) == 0
    assert sorted(tuple(r) for r in read_table(spark, lake, tables.WATCH_STATUS).collect()) == [
        (10, 3, 0, 6, 0),
        (11, 2, 8, 2, 1),
    ]
    rejected = read_table(spark, lake, tables.REJECTED_ROWS).collect()
    assert (ANIMELIST_FILE, "12,9,0,1,0", "unknown_anime_id") in {tuple(r) for r in rejected}
    assert len(rejected) == 3  # the two ratings rows of the small files + this one
