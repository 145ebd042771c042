"""The reproducible train/test split: a pure function of (user_id, anime_id, seed)."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from anime_recs.data.split import assign_split, newest_titles, split_uniform, start_month


def _keys(spark, n: int):
    """n distinct (user_id, anime_id) keys: 1,000 users x n/1000 titles, ids not contiguous."""
    return spark.range(n).select(
        (F.col("id") % 1000 * 7 + 3).cast("int").alias("user_id"),
        (F.floor(F.col("id") / 1000) * 13 + 1).cast("int").alias("anime_id"),
        F.lit(8).alias("rating"),
    )


def test_split_is_identical_for_different_partition_counts(spark):
    keys = _keys(spark, 5_000)
    one = keys.repartition(1).transform(assign_split, 0.1, 42)
    seven = keys.repartition(7).transform(assign_split, 0.1, 42)
    assert one.rdd.getNumPartitions() == 1 and seven.rdd.getNumPartitions() == 7
    assertDataFrameEqual(one, seven)
    # and it does not depend on row order either
    assertDataFrameEqual(one, keys.orderBy(F.desc("user_id")).transform(assign_split, 0.1, 42))


def test_split_depends_on_the_seed(spark):
    keys = _keys(spark, 5_000)
    a = keys.transform(assign_split, 0.1, 42).withColumnRenamed("split", "a")
    b = keys.transform(assign_split, 0.1, 43).withColumnRenamed("split", "b")
    changed = a.join(b, ["user_id", "anime_id", "rating"]).filter("a != b").count()
    # independent 10% draws differ on about 2 * 0.1 * 0.9 = 18% of keys
    assert 0.15 * 5_000 < changed < 0.21 * 5_000


def test_test_fraction_is_ten_percent_on_half_a_million_keys(spark):
    n = 500_000
    counts = {
        r["split"]: r["count"]
        for r in _keys(spark, n).transform(assign_split, 0.1, 42).groupBy("split").count().collect()
    }
    assert set(counts) == {"train", "test"}
    assert sum(counts.values()) == n
    assert abs(counts["test"] / n - 0.1) <= 0.002


_M64 = (1 << 64) - 1
_P1, _P2, _P3 = 0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9
_P4, _P5 = 0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _M64


def _avalanche(h: int) -> int:
    h = ((h ^ (h >> 33)) * _P2) & _M64
    h = ((h ^ (h >> 29)) * _P3) & _M64
    return h ^ (h >> 32)


def _xxh64_int(value: int, seed: int) -> int:
    """Reference XXH64 of a 4-byte little-endian int (as Spark hashes an INT)."""
    h = (seed + _P5 + 4) & _M64
    h ^= ((value & 0xFFFFFFFF) * _P1) & _M64
    return _avalanche((_rotl(h, 23) * _P2 + _P3) & _M64)


def _xxh64_long(value: int, seed: int) -> int:
    """Reference XXH64 of an 8-byte little-endian long (as Spark hashes a BIGINT)."""
    h = (seed + _P5 + 8) & _M64
    h ^= (_rotl((value & _M64) * _P2 & _M64, 31) * _P1) & _M64
    return _avalanche((_rotl(h, 27) * _P1 + _P4) & _M64)


def _reference_uniform(user_id: int, anime_id: int, seed: int) -> float:
    """The docstring formula in plain Python: Spark's xxhash64 chains the column hashes,
    starting from seed 42; pmod(h, 2^53) of the signed value = its low 53 bits."""
    h = _xxh64_int(user_id, 42)
    h = _xxh64_int(anime_id, h)
    h = _xxh64_long(seed, h)
    return (h & ((1 << 53) - 1)) / 2.0**53


def test_split_uniform_matches_a_reference_implementation(spark):
    keys = [(0, 430), (1, 1), (310058, 48583), (5, 7), (2**31 - 1, 0)]
    seeds = [42, -3, 2**40]
    df = spark.createDataFrame(keys, "user_id INT, anime_id INT")
    rows = df.select(
        "user_id",
        "anime_id",
        *[
            split_uniform(F.col("user_id"), F.col("anime_id"), seed).alias(f"u{i}")
            for i, seed in enumerate(seeds)
        ],
    ).collect()
    assert len(rows) == len(keys)
    for row in rows:
        for i, seed in enumerate(seeds):
            assert row[f"u{i}"] == _reference_uniform(row["user_id"], row["anime_id"], seed)
            assert 0.0 <= row[f"u{i}"] < 1.0


def test_split_uniform_does_not_depend_on_input_types(spark):
    df = spark.createDataFrame([(0, 430), (1, 1), (310058, 48583)], "user_id INT, anime_id INT")
    ints = df.select(split_uniform(F.col("user_id"), F.col("anime_id"), 42)).collect()
    mixed = df.select(
        split_uniform(F.col("user_id").cast("long"), F.col("anime_id").cast("string"), 42)
    ).collect()
    assert [r[0] for r in mixed] == [r[0] for r in ints]


def test_assign_split_keeps_columns_and_replaces_an_existing_split(spark):
    df = spark.createDataFrame(
        [(1, 2, 9, "x")], "user_id INT, anime_id INT, rating INT, split STRING"
    )
    out = df.transform(assign_split, 0.5, 1)
    assert out.columns == ["user_id", "anime_id", "rating", "split"]
    assert out.first()["split"] in ("train", "test")


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_assign_split_rejects_a_fraction_outside_the_open_interval(spark, fraction):
    df = spark.createDataFrame([(1, 2)], "user_id INT, anime_id INT")
    with pytest.raises(ValueError, match="test_fraction must be in"):
        assign_split(df, fraction, 1)


def test_assign_split_names_missing_columns(spark):
    df = spark.createDataFrame([(1,)], "user_id INT")
    with pytest.raises(ValueError, match=r"assign_split: missing columns \['anime_id'\]"):
        assign_split(df, 0.1, 1)


@pytest.mark.parametrize(
    ("aired", "premiered", "expected"),
    [
        ("Apr 3, 1998 to Apr 24, 1999", "Spring 1998", 12 * 1998 + 3),
        ("Sep 2005 to ?", "Unknown", 12 * 2005 + 8),
        ("2005", "Unknown", 12 * 2005),
        ("Unknown", "Fall 2016", 12 * 2016 + 9),
        ("Not available", "Unknown", None),
        (None, None, None),
    ],
)
def test_start_month_reads_aired_then_premiered(aired, premiered, expected):
    assert start_month(aired, premiered) == expected


def test_newest_titles_holds_out_the_latest_rated_titles_of_known_start():
    starts = {1: 100, 2: 300, 3: 200, 4: 300, 5: None, 6: 400}
    # rated: 1-5 (6 is not rated); known start: 1-4; ceil(0.5 x 4) = 2 newest: 2 and 4 (tie at
    # 300, both taken); at 0.25: one, the tie goes to the larger id
    assert newest_titles(starts, [1, 2, 3, 4, 5, 5], 0.5) == [2, 4]
    assert newest_titles(starts, [1, 2, 3, 4, 5], 0.25) == [4]
    assert newest_titles(starts, [1, 2, 3, 4, 5], 0.0) == []
    with pytest.raises(ValueError, match="cold_title_fraction"):
        newest_titles(starts, [1], 1.0)


def test_assign_split_sends_every_rating_of_a_cold_title_to_test(spark):
    keys = _keys(spark, 5_000)
    out = keys.transform(assign_split, 0.1, 42, [1, 14])
    cold = {r["split"] for r in out.filter(F.col("anime_id").isin(1, 14)).collect()}
    assert cold == {"test"}
    warm = out.filter(~F.col("anime_id").isin(1, 14)).groupBy("split").count().collect()
    assert {r["split"] for r in warm} == {"train", "test"}
