"""Exactness of the blocked promoter Jaccard against brute-force Python sets."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from pyspark.testing import assertDataFrameEqual

from anime_recs.similarity.jaccard import (
    PAIR_ARROW_SCHEMA,
    block_pair_batches,
    jaccard_from_counts,
    pair_jaccard,
)
from anime_recs.similarity.matrix import build_promoter_matrix, plan_blocks, scipy_counter
from anime_recs.similarity.promoters import promoters
from anime_recs.tables import ANIME_PAIR_JACCARD_SCHEMA, ANIME_SCHEMA, RATINGS_SCHEMA
from tests.similarity.jaccard_data import (
    anime_rows,
    brute_force_pairs,
    expected_pairs_df,
    make_ratings,
    run_job,
)


def test_jaccard_formula_hand_example():
    # P(a) = {1, 2, 3}, P(b) = {2, 3, 4, 5}: intersection 2, union 5
    union, jac = jaccard_from_counts(np.array([2, 1]), np.array([3, 1]), np.array([4, 1]))
    assert union.tolist() == [5, 1]
    assert jac.tolist() == [0.4, 1.0]
    assert jac.dtype == np.float64


def _matrix(rows):
    promo = [(u, a) for u, a, r, s in rows if s == "train" and r >= 9]
    users, titles = zip(*promo, strict=True)
    return build_promoter_matrix(np.array(users), np.array(titles))


# the job's settings of conf/base.yaml that these tests do not vary
MIN_INTERSECTION, AUTO_BLOCKS, MAX_CELLS, DEVICE = 1, 0, 4_000_000, "auto"


def jaccard(spark, ratings, **settings):
    """:func:`pair_jaccard` of the promoters of ``ratings`` with ``settings`` overriding the
    job's."""
    values = dict(
        min_intersection=MIN_INTERSECTION, n_blocks=AUTO_BLOCKS, max_cells=MAX_CELLS, device=DEVICE
    )
    return pair_jaccard(spark, promoters(ratings), **{**values, **settings})


def _rows(batches) -> list[tuple]:
    table = pa.Table.from_batches(list(batches), schema=PAIR_ARROW_SCHEMA)
    return list(zip(*[table.column(i).to_pylist() for i in range(table.num_columns)], strict=True))


@pytest.mark.parametrize(("n_blocks", "max_cells"), [(1, 10**9), (5, 200), (60, 1)])
def test_block_batches_cover_all_pairs_exactly(generated_ratings, n_blocks, max_cells):
    matrix = _matrix(generated_ratings)
    bounds = plan_blocks(np.ones(matrix.n_titles), n_blocks)
    got = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        got += _rows(block_pair_batches(matrix, int(lo), int(hi), 1, max_cells, batch_rows=7))
    assert got == brute_force_pairs(generated_ratings)  # sorted by (anime_a, anime_b)


def test_pair_jaccard_many_small_blocks_equals_one_block_and_brute_force(spark, ratings_df):
    rows = [tuple(r) for r in ratings_df.collect()]
    expected = expected_pairs_df(spark, rows)
    one, plan_one = jaccard(spark, ratings_df, n_blocks=1)
    many, plan_many = jaccard(spark, ratings_df, n_blocks=13, max_cells=50)
    assert plan_one.n_blocks == 1 and plan_many.n_blocks == 13
    assertDataFrameEqual(one, expected, checkRowOrder=False)
    assertDataFrameEqual(many, expected, checkRowOrder=False)
    # titles with only test or low ratings have no promoters and appear in no pair
    assert plan_one.n_titles == len({a for _, a, r, s in rows if s == "train" and r >= 9})


def test_min_intersection_filters_pairs(spark, ratings_df, generated_ratings):
    got, _ = jaccard(spark, ratings_df, min_intersection=2, n_blocks=4)
    expected = expected_pairs_df(spark, generated_ratings, min_intersection=2)
    assert 0 < expected.count() < len(brute_force_pairs(generated_ratings))
    assertDataFrameEqual(got, expected, checkRowOrder=False)


def test_pair_jaccard_without_promoters_is_empty(spark):
    ratings = spark.createDataFrame([(1, 10, 8, "train"), (2, 10, 10, "test")], RATINGS_SCHEMA)
    got, plan = jaccard(spark, ratings)
    assert plan.n_titles == 0
    assert got.schema == ANIME_PAIR_JACCARD_SCHEMA
    assert got.count() == 0


def test_pair_jaccard_rejects_bad_arguments(spark, ratings_df):
    with pytest.raises(ValueError, match="min_intersection must be >= 1"):
        jaccard(spark, ratings_df, min_intersection=0)
    with pytest.raises(ValueError, match=r"missing columns \['user_id'\]"):
        pair_jaccard(spark, ratings_df.select("anime_id"), 1, 0, MAX_CELLS, DEVICE)


def test_torch_counter_equals_scipy_on_cpu(generated_ratings):
    from anime_recs.similarity.gpu import torch_counter

    matrix = _matrix(generated_ratings)
    lo = 5
    counter = torch_counter(matrix, lo, device="cpu")
    assert counter is not None
    reference = scipy_counter(matrix, lo)
    for s0, s1 in [(5, 9), (9, 30), (30, matrix.n_titles)]:
        np.testing.assert_array_equal(counter(s0, s1), reference(s0, s1))
    got = _rows(block_pair_batches(matrix, lo, 40, 1, max_cells=300, counter=counter))
    assert got == _rows(block_pair_batches(matrix, lo, 40, 1, max_cells=300))


# support guards and thresholds loose enough for both labels on the generated ratings
GUARDS = ["jaccard.min_promoters=1", "jaccard.min_positive_intersection=1"]
GUARDS += ["jaccard.positive_threshold=0.15", "jaccard.negative_threshold=0.05"]


def job_inputs(spark, generated_ratings):
    """The jaccard job's input tables as DataFrames: ``ratings`` and a titled ``anime``."""
    ratings = spark.createDataFrame(generated_ratings, RATINGS_SCHEMA)
    titles = {a for _, a, _, _ in generated_ratings}
    return ratings, spark.createDataFrame(anime_rows(titles), ANIME_SCHEMA)


@pytest.mark.e2e  # the whole job twice
def test_job_matches_brute_force_and_rerun_gives_same_tables(spark, lake, generated_ratings):
    from anime_recs.lakehouse import read_table

    ratings, anime = job_inputs(spark, generated_ratings)
    run_job(spark, lake, ratings, anime, ["jaccard.title_blocks=6", *GUARDS])
    pairs_1 = read_table(spark, lake, "anime_pair_jaccard")
    assertDataFrameEqual(pairs_1, expected_pairs_df(spark, generated_ratings), checkRowOrder=False)
    training_1 = read_table(spark, lake, "training_pairs").collect()
    assert {r.label for r in training_1} == {0.0, 1.0}

    run_job(spark, lake, None, None, GUARDS)  # derived block count this time
    assertDataFrameEqual(
        read_table(spark, lake, "anime_pair_jaccard", version=1), pairs_1, checkRowOrder=False
    )
    assertDataFrameEqual(
        read_table(spark, lake, "training_pairs", version=1), training_1, checkRowOrder=False
    )


@pytest.mark.slow
def test_real_sample_matches_brute_force(spark, shared_mal):
    import pandas as pd

    raw = pd.read_csv(shared_mal / "rating_complete_head_fullusers.csv")
    rows = [(int(u), int(a), int(r), "train") for u, a, r in raw.itertuples(index=False)]
    ratings = spark.createDataFrame(raw.assign(split="train"), RATINGS_SCHEMA)
    got, plan = jaccard(spark, ratings, n_blocks=8)
    expected = expected_pairs_df(spark, rows)
    assert plan.n_users == raw.loc[raw.rating >= 9, "user_id"].nunique()
    # ~1M rows: compare in Spark (exact, also the float64 jaccard) instead of on the driver
    assert got.count() == expected.count() > 100_000
    assert got.exceptAll(expected).count() == 0
    assert expected.exceptAll(got).count() == 0


def test_make_ratings_is_deterministic():
    assert make_ratings(3) == make_ratings(3) != make_ratings(4)


@pytest.mark.e2e  # the whole job three times
def test_tiles_mode_writes_the_tables_of_broadcast_mode(spark, tmp_path, generated_ratings):
    from anime_recs.lakehouse import read_table, table_digest

    ratings, anime = job_inputs(spark, generated_ratings)
    lakes = {mode: str(tmp_path / mode) for mode in ("broadcast", "tiles")}
    run_job(spark, lakes["broadcast"], ratings, anime, ["jaccard.mode=broadcast", *GUARDS])
    tiles = ["jaccard.mode=tiles", "jaccard.block_promoters=100", *GUARDS]
    run_job(spark, lakes["tiles"], ratings, anime, tiles)
    assert (
        read_table(spark, lakes["tiles"], "promoters").select("title_block").distinct().count() > 3
    )
    names = ("anime_pair_jaccard", "training_pairs", "copromoted_pairs")
    for name in names:
        assertDataFrameEqual(
            read_table(spark, lakes["tiles"], name),
            read_table(spark, lakes["broadcast"], name),
            checkRowOrder=False,
        )
    # rerun with other blocks: another layout, the same contents
    digests = {n: table_digest(spark, lakes["tiles"], n) for n in names}
    run_job(spark, lakes["tiles"], None, None, ["jaccard.mode=tiles", *GUARDS])
    assert {n: table_digest(spark, lakes["tiles"], n) for n in names} == digests
    assert (
        read_table(spark, lakes["tiles"], "promoters").select("title_block").distinct().count() == 1
    )
