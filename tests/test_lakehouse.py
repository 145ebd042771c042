"""Delta is real: writes, overwrites, replaceWhere, time travel, schema conformance."""

import json
from pathlib import Path

import pytest
from pyspark.testing import assertDataFrameEqual

from anime_recs.lakehouse import read_table, table_version, write_table
from anime_recs.tables import RATINGS_SCHEMA, RECOMMENDATIONS_SCHEMA


def test_overwrite_merge_and_time_travel(spark, lake):
    from delta.tables import DeltaTable

    from anime_recs.lakehouse import table_path

    v0 = write_table(
        spark.createDataFrame([(1, 10, 9, "train"), (1, 11, 5, "test")], RATINGS_SCHEMA),
        lake,
        "ratings",
        RATINGS_SCHEMA,
    )
    assert v0 == 0
    updates = spark.createDataFrame([(1, 11, 10, "test"), (2, 10, 7, "train")], RATINGS_SCHEMA)
    (
        DeltaTable.forPath(spark, table_path(lake, "ratings"))
        .alias("t")
        .merge(updates.alias("u"), "t.user_id = u.user_id AND t.anime_id = u.anime_id")
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .execute()
    )
    assert table_version(spark, lake, "ratings") == 1
    assertDataFrameEqual(
        read_table(spark, lake, "ratings"),
        spark.createDataFrame(
            [(1, 10, 9, "train"), (1, 11, 10, "test"), (2, 10, 7, "train")], RATINGS_SCHEMA
        ),
    )
    assertDataFrameEqual(
        read_table(spark, lake, "ratings", version=0),
        spark.createDataFrame([(1, 10, 9, "train"), (1, 11, 5, "test")], RATINGS_SCHEMA),
    )


def test_replace_where_keeps_other_rows(spark, lake):
    rows = [("a", 1, 1, 5, 0.9), ("b", 1, 1, 6, 0.8)]
    write_table(
        spark.createDataFrame(rows, RECOMMENDATIONS_SCHEMA), lake, "recs", RECOMMENDATIONS_SCHEMA
    )
    write_table(
        spark.createDataFrame([("a", 1, 1, 7, 0.5)], RECOMMENDATIONS_SCHEMA),
        lake,
        "recs",
        RECOMMENDATIONS_SCHEMA,
        replace_where="recommender = 'a'",
    )
    assertDataFrameEqual(
        read_table(spark, lake, "recs"),
        spark.createDataFrame([("a", 1, 1, 7, 0.5), ("b", 1, 1, 6, 0.8)], RECOMMENDATIONS_SCHEMA),
    )


def test_write_conforms_and_rejects_missing_columns(spark, lake):
    df = spark.createDataFrame([(1, 2)], "user_id long, anime_id long")
    with pytest.raises(ValueError, match=r"cannot write: missing columns \['rating', 'split'\]"):
        write_table(df, lake, "ratings", RATINGS_SCHEMA)


def test_read_missing_table_is_one_clear_line(spark, lake):
    with pytest.raises(FileNotFoundError, match="Delta table 'nothing' not found"):
        read_table(spark, lake, "nothing")


def test_table_digest_depends_on_contents_not_on_version_or_order(spark, lake):
    from anime_recs.lakehouse import table_digest

    rows = [(1, 2, 9, "train"), (3, 4, 5, "test")]
    write_table(spark.createDataFrame(rows, RATINGS_SCHEMA), lake, "ratings", RATINGS_SCHEMA)
    first = table_digest(spark, lake, "ratings")
    rewritten = spark.createDataFrame(rows[::-1], RATINGS_SCHEMA).repartition(2)
    assert write_table(rewritten, lake, "ratings", RATINGS_SCHEMA) == 1
    assert table_digest(spark, lake, "ratings") == first
    changed = spark.createDataFrame([(1, 2, 9, "train"), (3, 4, 6, "test")], RATINGS_SCHEMA)
    write_table(changed, lake, "ratings", RATINGS_SCHEMA)
    assert table_digest(spark, lake, "ratings") != first
    assert table_digest(spark, lake, "ratings", version=0) == first
    assert first.startswith("2:")


def _file_stats(spark, lake, name):
    """The ``stats`` JSON of every file added in the table's log."""
    log = spark.read.json(f"{lake}/{name}/_delta_log/*.json").where("add is not null")
    return [json.loads(r["stats"]) for r in log.select("add.stats").collect()]


def _encodings(path):
    """Parquet encodings per column over the table's data files (all versions)."""
    import glob

    import pyarrow.parquet as pq

    encodings: dict[str, set] = {}
    for file in glob.glob(f"{path}/*.parquet"):
        metadata = pq.ParquetFile(file).metadata
        for g in range(metadata.num_row_groups):
            for c in range(metadata.num_columns):
                column = metadata.row_group(g).column(c)
                encodings.setdefault(column.path_in_schema, set()).update(column.encodings)
    return encodings


def test_table_properties_are_set_on_create_and_added_to_an_existing_table(spark, lake):
    from delta.tables import DeltaTable

    from anime_recs.tables import ANIME_PAIR_JACCARD, ANIME_PAIR_JACCARD_SCHEMA, TABLE_PROPERTIES

    pairs = spark.createDataFrame([(1, 2, 3, 4, 2, 5, 0.4)], ANIME_PAIR_JACCARD_SCHEMA)
    expected = TABLE_PROPERTIES[ANIME_PAIR_JACCARD]
    path = f"{lake}/{ANIME_PAIR_JACCARD}"

    # created empty with the properties (version 0), then written (version 1)
    assert write_table(pairs, lake, ANIME_PAIR_JACCARD, ANIME_PAIR_JACCARD_SCHEMA) == 1
    assert DeltaTable.forPath(spark, path).detail().first()["properties"] == expected
    assertDataFrameEqual(read_table(spark, lake, ANIME_PAIR_JACCARD), pairs)
    # they reach the files: statistics only on anime_a, anime_b; v2 delta-encoded integers
    (stats,) = _file_stats(spark, lake, ANIME_PAIR_JACCARD)
    assert sorted(stats["minValues"]) == ["anime_a", "anime_b"]
    encodings = _encodings(path)
    assert encodings["anime_a"] == {"DELTA_BINARY_PACKED"}
    assert not any("DICTIONARY" in e for column in encodings.values() for e in column)

    # a table that lost them (or was written by an older release) gets them back, once
    spark.sql(f"ALTER TABLE delta.`{path}` UNSET TBLPROPERTIES ('parquet.writer.version')")
    assert write_table(pairs, lake, ANIME_PAIR_JACCARD, ANIME_PAIR_JACCARD_SCHEMA) == 4
    assert DeltaTable.forPath(spark, path).detail().first()["properties"] == expected
    assert write_table(pairs, lake, ANIME_PAIR_JACCARD, ANIME_PAIR_JACCARD_SCHEMA) == 5


@pytest.mark.parametrize("leftover", [None, ".00000000000000000000.json.3f2a.tmp"])
def test_a_creation_killed_before_its_first_commit_does_not_block_the_next_write(
    spark, lake, leftover
):
    """A kill while a table with properties is created can leave ``_delta_log`` without a
    commit (empty, or holding the commit's temporary file); Delta then refuses to create the
    table there. The next write removes that log and creates the table."""
    from delta.tables import DeltaTable

    from anime_recs.tables import ANIME_PAIR_JACCARD, ANIME_PAIR_JACCARD_SCHEMA, TABLE_PROPERTIES

    log_dir = Path(lake) / ANIME_PAIR_JACCARD / "_delta_log"
    log_dir.mkdir(parents=True)
    if leftover:
        (log_dir / leftover).write_text('{"commitInfo"')
    pairs = spark.createDataFrame([(1, 2, 3, 4, 2, 5, 0.4)], ANIME_PAIR_JACCARD_SCHEMA)
    assert write_table(pairs, lake, ANIME_PAIR_JACCARD, ANIME_PAIR_JACCARD_SCHEMA) == 1
    assertDataFrameEqual(read_table(spark, lake, ANIME_PAIR_JACCARD), pairs)
    path = f"{lake}/{ANIME_PAIR_JACCARD}"
    expected = TABLE_PROPERTIES[ANIME_PAIR_JACCARD]
    assert DeltaTable.forPath(spark, path).detail().first()["properties"] == expected


def test_a_log_with_a_commit_is_never_removed(lake):
    from anime_recs.lakehouse import _drop_commitless_log

    log_dir = Path(lake) / "t" / "_delta_log"
    (log_dir / "_staged_commits").mkdir(parents=True)
    commit = log_dir / "_staged_commits" / "00000000000000000000.9c1e.json"
    commit.write_text("{}")
    _drop_commitless_log("t", f"{lake}/t")
    assert commit.is_file()
