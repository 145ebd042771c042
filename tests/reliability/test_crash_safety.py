"""Crash safety (issue 9): a writer killed mid-write leaves the table readable at its previous
version, and a rerun completes correctly. Delta commits are atomic: data files written by the
killed process are never referenced by the log."""

from pathlib import Path

import pytest
from pyspark.testing import assertDataFrameEqual

from anime_recs.lakehouse import read_table, table_path, table_version, write_table
from anime_recs.tables import RATINGS, RATINGS_SCHEMA
from tests.slow_write import kill_mid_write

pytestmark = pytest.mark.e2e  # a writer process killed


@pytest.mark.slow
def test_killed_writer_leaves_previous_version_readable(spark, lake):
    before = spark.createDataFrame([(1, 2, 9, "train"), (3, 4, 5, "test")], RATINGS_SCHEMA)
    assert write_table(before, lake, RATINGS, RATINGS_SCHEMA) == 0
    folder = Path(table_path(lake, RATINGS))
    files_v0 = set(folder.glob("*.parquet"))

    # kill as soon as the write has produced data files that no commit references yet
    kill_mid_write("table", lake, lambda: bool(set(folder.glob("*.parquet")) - files_v0))

    # the killed write had started: it left data files that no commit references
    assert set(folder.glob("*.parquet")) - files_v0
    assert table_version(spark, lake, RATINGS) == 0
    assertDataFrameEqual(read_table(spark, lake, RATINGS), before)

    after = spark.createDataFrame([(5, 6, 10, "train")], RATINGS_SCHEMA)
    assert write_table(after, lake, RATINGS, RATINGS_SCHEMA) == 1
    assertDataFrameEqual(read_table(spark, lake, RATINGS), after)
    assertDataFrameEqual(read_table(spark, lake, RATINGS, version=0), before)
