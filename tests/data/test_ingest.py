"""Ingest end to end: inline tiny files -> the job -> real Delta tables; reruns; the real files."""

from __future__ import annotations

from pathlib import Path

import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from anime_recs import tables
from anime_recs.cli import JobError
from anime_recs.data.anime_files import id_reason, parse_double, parse_int, parse_string
from anime_recs.data.files import check_inputs
from anime_recs.data.ingest import check_rejections, ingest
from anime_recs.data.rating_lines import parse_rating_lines, read_rating_lines
from anime_recs.data.rules import FileCounts
from anime_recs.data.split import assign_split
from anime_recs.lakehouse import read_table, table_path
from anime_recs.tables import ANIME_FILE, RATINGS_FILE, SYNOPSIS_FILE
from tests.data.raw_files import (
    anime_row,
    anime_text,
    job_argv,
    small_files,
    synopsis_text,
    write_raw,
)
from tests.helpers import load_job

EXPECTED_ANIME = [
    (
        1,
        "Alpha",
        None,
        None,
        "TV",
        12,
        "Apr 1, 2000 to Jun 30, 2000",
        "Spring 2000",
        "Bandai",
        None,
        "Sunrise",
        "Manga",
        "24 min. per ep.",
        "PG-13 - Teens 13 or older",
        "Action, Sci-Fi",
        7.5,
        100,
        200,
        3000,
        40,
        "A crew hunts bounties\u2014in space.",
        "Alpha is a TV Show.\nSynopsis: A crew hunts bountiesin space.\n"
        "It was produced by Bandai and it is from Sunrise Studio.\nIts source is Manga.\n"
        "It premiered in Spring 2000.\nIts genres are Action, Sci-Fi",
        True,
        "synopsis",
    ),
    (
        2,
        "Beta",
        "Beta The Movie",
        None,
        "Movie",
        1,
        "Apr 1, 2000 to Jun 30, 2000",
        None,
        "Prod A",
        None,
        "Studio X",
        "Manga",
        "24 min. per ep.",
        "PG-13 - Teens 13 or older",
        "Action, Comedy",
        None,
        None,
        200,
        3000,
        40,
        None,  # placeholder synopsis: not usable ...
        "Beta is a Movie.\nSynopsis: No synopsis has been added yet.\n"  # ... but kept here
        "It was produced by Prod A and it is from Studio X Studio.\nIts source is Manga.\n"
        "It premiered in Unknown.\nIts genres are Action, Comedy",
        True,
        "synopsis",
    ),
    (
        3,
        "Gamma",
        None,
        None,
        "OVA",
        12,
        "Apr 1, 2000 to Jun 30, 2000",
        "Spring 2000",
        "Prod A",
        None,
        "Studio X",
        "Manga",
        "24 min. per ep.",
        "PG-13 - Teens 13 or older",
        "Drama",
        7.5,
        100,
        200,
        3000,
        40,
        None,
        # absent from anime_with_synopsis.csv: the metadata-only description
        "Gamma is a OVA.\nIt was produced by Prod A and it is from Studio X Studio.\n"
        "Its source is Manga.\nIt premiered in Spring 2000.\nIts genres are Drama",
        True,
        "metadata",
    ),
]

EXPECTED_RATINGS = [(10, 1, 9), (10, 2, 7), (11, 1, 3), (11, 3, 10)]
EXPECTED_REJECTED = [
    (RATINGS_FILE, "11,1,5", "duplicate_key"),
    (RATINGS_FILE, "12,9,8", "unknown_anime_id"),
]


def _expected_ratings(spark):
    df = spark.createDataFrame(EXPECTED_RATINGS, "user_id INT, anime_id INT, rating INT")
    # conf/base.yaml's holdouts: ceil(10% of 3 rated titles) = 1 cold title, the newest; all
    # three started in April 2000, so the tie goes to the largest id
    return df.transform(assign_split, 0.1, 42, [3])


def assert_small_tables(spark, lake: str) -> None:
    anime = read_table(spark, lake, tables.ANIME)
    assert anime.columns == tables.ANIME_SCHEMA.fieldNames()
    assertDataFrameEqual(anime, spark.createDataFrame(EXPECTED_ANIME, tables.ANIME_SCHEMA))
    assertDataFrameEqual(read_table(spark, lake, tables.RATINGS), _expected_ratings(spark))
    assertDataFrameEqual(
        read_table(spark, lake, tables.REJECTED_ROWS),
        spark.createDataFrame(EXPECTED_REJECTED, tables.REJECTED_ROWS_SCHEMA),
    )


def test_ingest_builds_the_exact_tables(spark, tmp_path):
    """The library ingest of the small files: the rows the job writes (the job itself, its
    writes and rerun: the e2e test below)."""
    result = ingest(spark, write_raw(tmp_path / "raw", small_files()), 0.1, 42, 0.1)
    try:
        assert result.anime.columns == tables.ANIME_SCHEMA.fieldNames()
        expected_anime = spark.createDataFrame(EXPECTED_ANIME, tables.ANIME_SCHEMA)
        assertDataFrameEqual(result.anime, expected_anime)
        assertDataFrameEqual(result.ratings, _expected_ratings(spark))
        expected_rejected = spark.createDataFrame(EXPECTED_REJECTED, tables.REJECTED_ROWS_SCHEMA)
        assertDataFrameEqual(result.rejected, expected_rejected)
    finally:
        result.unpersist()


@pytest.mark.e2e  # the whole job twice
def test_job_writes_the_exact_tables_and_reruns_idempotently(spark, lake, tmp_path):
    raw = write_raw(tmp_path / "raw", small_files())
    job = load_job("ingest")
    argv = job_argv(raw, lake, "--set", "ingest.max_rejected_fraction=0.5")

    assert job.main(argv) == 0
    assert_small_tables(spark, lake)

    # forced rerun (an unchanged one is skipped): same contents, history shows overwrites only
    assert job.main([*argv, "--force"]) == 0
    assert_small_tables(spark, lake)
    for name in (tables.ANIME, tables.RATINGS, tables.REJECTED_ROWS):
        history = (
            DeltaTable.forPath(spark, table_path(lake, name))
            .history()
            .select("version", "operation", F.col("operationParameters")["mode"].alias("mode"))
            .collect()
        )
        assert sorted((r.version, r.operation, r.mode) for r in history) == [
            (0, "WRITE", "Overwrite"),
            (1, "WRITE", "Overwrite"),
        ], name


@pytest.mark.e2e  # a whole job
def test_job_fails_with_counts_when_rejected_fraction_is_too_high(spark, lake, tmp_path, capsys):
    from anime_recs.cli import run_main

    raw = write_raw(tmp_path / "raw", small_files())  # 2 of 6 rating lines rejected: 33%
    job = load_job("ingest")
    with pytest.raises(SystemExit) as exc:
        run_main(job.main, job_argv(raw, lake, "--set", "ingest.max_rejected_fraction=0.3"))
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (
        "error: rejected fraction above ingest.max_rejected_fraction=0.3: "
        "rating_complete.csv 2/6 rejected (33.33%: duplicate_key=1, unknown_anime_id=1)"
    )
    assert not Path(table_path(lake, tables.RATINGS)).exists()  # nothing written


def test_check_rejections_is_per_file():
    counts = {
        ANIME_FILE: FileCounts(10, 9, {"missing_id": 1}),
        RATINGS_FILE: FileCounts(1000, 1000, {}),
    }
    check_rejections(counts, 0.1)  # 10% of anime.csv: at the limit, passes
    with pytest.raises(JobError, match=r"anime\.csv 1/10 rejected \(10\.00%: missing_id=1\)"):
        check_rejections(counts, 0.05)  # overall it would be 1/1010 < 5%


def test_duplicates_keep_the_first_row_in_file_order_across_splits(spark, tmp_path):
    """Tiny file splits (many Spark partitions): the first occurrence is still the one kept."""
    lines = ["user_id,anime_id,rating"] + [f"{u},1,{1 + u % 10}" for u in range(40)]
    lines += ["39,1,1", "0,1,10", "5,1,2"]  # later duplicates, in the last split
    files = {
        ANIME_FILE: anime_text([anime_row(1, "Alpha")]),
        SYNOPSIS_FILE: synopsis_text([(1, "s")]),
        RATINGS_FILE: "\n".join(lines) + "\n",
    }
    raw = write_raw(tmp_path / "raw", files)
    spark.conf.set("spark.sql.files.maxPartitionBytes", "64")
    try:
        assert read_rating_lines(spark, raw / RATINGS_FILE).rdd.getNumPartitions() >= 4
        result = ingest(spark, raw, 0.1, 42, 0.0)
        try:
            got = result.ratings.select("user_id", "anime_id", "rating")
            expected = [(u, 1, 1 + u % 10) for u in range(40)]
            assertDataFrameEqual(got, spark.createDataFrame(expected, got.schema))
            assertDataFrameEqual(
                result.rejected,
                spark.createDataFrame(
                    [(RATINGS_FILE, line, "duplicate_key") for line in lines[-3:]],
                    tables.REJECTED_ROWS_SCHEMA,
                ),
            )
        finally:
            result.unpersist()
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")


@pytest.mark.slow  # the real MAL files (the README's guarantee table says so)
def test_real_files(spark, shared_mal, tmp_path):
    """The real MAL files (symlinked, never copied): every row accepted, every title described
    (16,214 from the synopsis file, the 1,348 others from metadata)."""
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / ANIME_FILE).symlink_to(shared_mal / "anime.csv")
    (raw / SYNOPSIS_FILE).symlink_to(shared_mal / "anime_with_synopsis.csv")
    (raw / RATINGS_FILE).symlink_to(shared_mal / "rating_complete_head_fullusers.csv")
    result = ingest(spark, raw, 0.1, 42, 0.0)
    try:
        counts = {name: (c.total, c.accepted, c.rejected) for name, c in result.counts.items()}
        assert counts == {
            ANIME_FILE: (17_562, 17_562, {}),
            SYNOPSIS_FILE: (16_214, 16_214, {}),
            RATINGS_FILE: (99_584, 99_584, {}),
        }
        anime = result.anime.groupBy().agg(
            F.count("*").alias("rows"),
            F.countDistinct("anime_id").alias("ids"),
            F.count("description").alias("descriptions"),
            F.sum(F.col("has_description").cast("int")).alias("flagged"),
            F.sum((F.col("description_source") == "synopsis").cast("int")).alias("from_synopsis"),
            F.sum((F.col("description_source") == "metadata").cast("int")).alias("from_metadata"),
            F.count("synopsis").alias("synopses"),
        )
        assert anime.first().asDict() == {
            "rows": 17_562,
            "ids": 17_562,
            "descriptions": 17_562,
            "flagged": 17_562,
            "from_synopsis": 16_214,
            "from_metadata": 1_348,
            # 16,214 - 8 empty - 745 "No synopsis" placeholders
            "synopses": 15_461,
        }
        assert result.ratings.count() == 99_584
        assert result.rejected.count() == 0
    finally:
        result.unpersist()


ID_CASES = [
    ("0", None),
    ("42", None),
    (" 42 ", None),
    ("007", None),
    ("2147483647", None),
    ("2147483648", "id_out_of_range"),
    ("99999999999999999999999", "id_out_of_range"),
    ("", "missing_id"),
    ("  ", "missing_id"),
    ("-1", "negative_id"),
    ("1.0", "non_numeric_id"),
    ("+1", "non_numeric_id"),
    ("abc", "non_numeric_id"),
    ("1e3", "non_numeric_id"),
    ("Unknown", "non_numeric_id"),
]


def test_id_rules_are_the_same_on_the_driver_and_in_spark(spark):
    """The anime files (Python) and the ratings (Spark) apply one id rule."""
    assert [id_reason(text) for text, _ in ID_CASES] == [reason for _, reason in ID_CASES]
    lines = spark.createDataFrame(
        [(f"{text},{text},5", 0, i) for i, (text, _) in enumerate(ID_CASES)],
        "line STRING, block_start BIGINT, row_pos BIGINT",
    )
    rows = parse_rating_lines(lines, ["user_id", "anime_id", "rating"]).orderBy("row_pos").collect()
    assert [r.reason for r in rows] == [reason for _, reason in ID_CASES]
    assert [r.user_id for r in rows if r.reason is None] == [0, 42, 42, 7, 2147483647]


@pytest.mark.parametrize(
    ("text", "value"),
    [("12", 12), ("28.0", 28), (" 3 ", 3), ("-5", -5), ("Unknown", None), ("", None)],
)
def test_parse_int(text, value):
    assert parse_int(text) == value


@pytest.mark.parametrize("text", ["12.5", "abc", "1e3", "3000000000"])
def test_parse_int_rejects(text):
    with pytest.raises(ValueError):
        parse_int(text)


def test_parse_double_and_string():
    assert parse_double("8.78") == 8.78
    assert parse_double("Unknown") is None
    for bad in ("abc", "nan", "inf"):
        with pytest.raises(ValueError):
            parse_double(bad)
    assert parse_string("Unknown") is None
    assert parse_string("") is None
    assert parse_string("Sunrise") == "Sunrise"


def test_ingest_reads_a_uri_through_spark(spark, tmp_path):
    """``paths.raw`` may be a URI (s3a://... on a cluster): files are then read by Spark."""
    raw = write_raw(tmp_path / "raw", small_files())
    uri = raw.as_uri()  # file:///...
    assert check_inputs(uri, spark)[RATINGS_FILE] == ["user_id", "anime_id", "rating"]
    result = ingest(spark, uri, 0.1, 42, 0.0)
    try:
        assert {n: (c.total, c.accepted) for n, c in result.counts.items()} == {
            ANIME_FILE: (3, 3),
            SYNOPSIS_FILE: (2, 2),
            RATINGS_FILE: (6, 4),
        }
        assert sorted(r.description_source for r in result.anime.collect()) == [
            "metadata",
            "synopsis",
            "synopsis",
        ]
    finally:
        result.unpersist()
    with pytest.raises(JobError, match=r"^anime\.csv: input file not found at file:"):
        check_inputs((tmp_path / "nowhere").as_uri(), spark)
