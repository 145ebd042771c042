"""Joining training pairs with descriptions, collecting and subsampling them."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.testing import assertDataFrameEqual

from anime_recs.training.examples import PairSet
from anime_recs.training.pairs import (
    choose_pair_positions,
    collect_pair_labels,
    collect_pair_sets,
    limit_indices,
    pair_ids,
    pair_texts,
    sample_pair_rows,
    with_texts,
    within_content_neighbourhood,
)

ANIME_DDL = "anime_id int, description string, has_description boolean"
PAIRS_DDL = "anime_a int, anime_b int, jaccard double, label double, split string"


@pytest.fixture()
def anime(spark):
    return spark.createDataFrame(
        [
            (1, "one", True),
            (2, "two", True),
            (3, "three", True),
            (4, None, False),  # no synopsis
            (5, "   ", True),  # blank
            (6, "six but flagged unusable", False),
        ],
        ANIME_DDL,
    )


def test_pair_texts_attaches_both_descriptions_and_drops_titles_without_one(spark, anime):
    pairs = spark.createDataFrame(
        [
            (1, 2, 0.4, 1.0, "train"),
            (2, 3, 0.05, 0.0, "val"),
            (1, 4, 0.5, 1.0, "train"),
            (3, 5, 0.01, 0.0, "train"),
            (1, 6, 0.3, 1.0, "val"),
        ],
        PAIRS_DDL,
    )
    expected = spark.createDataFrame(
        [(1, 2, "one", "two", 1.0, "train"), (2, 3, "two", "three", 0.0, "val")],
        "anime_a int, anime_b int, text_a string, text_b string, label double, split string",
    )
    result = pair_texts(pairs, anime)
    assert result.columns == ["anime_a", "anime_b", "text_a", "text_b", "label", "split"]
    assertDataFrameEqual(result, expected)


def test_pair_texts_names_missing_columns(spark, anime):
    pairs = spark.createDataFrame([(1, 2, 1.0)], "anime_a int, anime_b int, label double")
    with pytest.raises(ValueError, match=r"training_pairs: missing columns \['split'\]"):
        pair_texts(pairs, anime)
    with pytest.raises(ValueError, match=r"anime: missing columns \['has_description'\]"):
        pair_texts(
            spark.createDataFrame([(1, 2, 0.1, 1.0, "train")], PAIRS_DDL),
            anime.drop("has_description"),
        )


def test_collect_pair_sets_orders_rows_and_splits(spark, anime):
    pairs = spark.createDataFrame(
        [
            (2, 3, 0.05, 0.0, "train"),
            (1, 3, 0.4, 1.0, "val"),
            (1, 2, 0.4, 1.0, "train"),
            (1, 2, 0.4, 1.0, "test"),  # neither train nor val: ignored
        ],
        PAIRS_DDL,
    )
    sets = collect_pair_sets(pair_texts(pairs, anime).repartition(3))
    assert sets["train"] == PairSet(["one", "two"], ["two", "three"], [1.0, 0.0], [(1, 2), (2, 3)])
    assert sets["val"] == PairSet(["one"], ["three"], [1.0], [(1, 3)])


def test_limit_indices_is_a_seeded_subset_in_original_order():
    index = list(range(100, 150))
    assert limit_indices(index, 0, seed=1) == index
    assert limit_indices(index, 80, seed=1) == index
    subset = limit_indices(index, 10, seed=1)
    assert len(subset) == 10 and subset == sorted(subset) and set(subset) <= set(index)
    assert len(set(subset)) == 10
    assert limit_indices(index, 10, seed=1) == subset
    assert limit_indices(index, 10, seed=2) != subset


def test_sample_pair_rows_is_a_seeded_subset_independent_of_partitioning(spark):
    rows = [(a, b, 0.1 * (a % 7), "val") for a in range(12) for b in range(a + 1, 12)]
    pairs = spark.createDataFrame(rows, "anime_a int, anime_b int, label double, split string")

    def sample(df, n, seed):
        return sorted(tuple(r) for r in sample_pair_rows(df, n, seed).collect())

    first = sample(pairs.repartition(3), 10, seed=5)
    assert len(first) == 10
    assert set(first) <= set(rows)
    # the same rows whatever the partitioning or row order; another seed, another sample
    assert sample(pairs.coalesce(1).orderBy("label"), 10, seed=5) == first
    assert sample(pairs, 10, seed=6) != first
    assert sample(pairs, 0, seed=5) == sorted(rows)
    assert sample(pairs, 1000, seed=5) == sorted(rows)


def test_pair_set_rejects_ragged_lists():
    with pytest.raises(ValueError, match="equal length"):
        PairSet(["a"], ["b", "c"], [1.0])


def test_within_content_neighbourhood_keeps_pairs_of_nearby_titles():
    # titles on a circle: 1 (0 deg), 2 (10 deg), 3 (90 deg), 4 (180 deg), 5 (100 deg)
    angles = {1: 0, 2: 10, 3: 90, 4: 180, 5: 100}
    ids = np.array(sorted(angles))
    vectors = np.array(
        [[np.cos(np.radians(angles[a])), np.sin(np.radians(angles[a]))] for a in ids]
    )
    pairs = [(1, 2), (1, 3), (3, 5), (1, 4)]
    # k = 1: nearest of 1 is 2, of 2 is 1, of 3 is 5, of 5 is 3, of 4 is 5
    assert within_content_neighbourhood(pairs, ids, vectors, 1) == [0, 2]
    # k = 2: 1 -> {2, 3}; 3 -> {5, 2}: (1, 3) now kept; 4 -> {5, 3}, 1 never near 4
    assert within_content_neighbourhood(pairs, ids, vectors, 2) == [0, 1, 2]
    assert within_content_neighbourhood(pairs, ids, vectors, 0) == [0, 1, 2, 3]


def test_neighbours_are_looked_for_among_the_pairs_titles_only():
    # title 6 (5 deg) would be the nearest of 1 and 2, but no pair uses it
    angles = {1: 0, 2: 10, 3: 90, 4: 180, 5: 100, 6: 5}
    ids = np.array(sorted(angles))
    vectors = np.array(
        [[np.cos(np.radians(angles[a])), np.sin(np.radians(angles[a]))] for a in ids]
    )
    pairs = [(1, 2), (1, 3), (3, 5), (1, 4)]
    assert within_content_neighbourhood(pairs, ids, vectors, 1) == [0, 2]
    # a title without a vector (here 5) drops its pairs
    assert within_content_neighbourhood(pairs, ids[ids != 5], vectors[ids != 5], 1) == [0]


def test_pair_ids_and_labels_keep_pairs_of_described_titles_in_id_order(spark, anime):
    pairs = spark.createDataFrame(
        [
            (2, 3, 0.2, 0.2, "train"),
            (1, 3, 0.4, 0.4, "train"),
            (1, 4, 0.5, 0.5, "train"),  # 4: no synopsis
            (1, 2, 0.1, 0.1, "val"),
            (3, 5, 0.3, 0.3, "train"),  # 5: blank
        ],
        PAIRS_DDL,
    )
    result = pair_ids(pairs, anime)
    assert result.columns == ["anime_a", "anime_b", "label", "split"]
    train = result.where("split = 'train'").repartition(3)
    assert collect_pair_labels(train) == ([(1, 3), (2, 3)], [0.4, 0.2])
    texts = {1: "one", 2: "two", 3: "three"}
    assert with_texts([(1, 3), (2, 3)], [0.4, 0.2], texts) == PairSet(
        ["one", "two"], ["three", "three"], [0.4, 0.2], [(1, 3), (2, 3)]
    )


def test_the_pairs_chosen_are_the_neighbourhood_ones_then_capped():
    angles = {1: 0, 2: 10, 3: 90, 4: 180, 5: 100}
    ids = np.array(sorted(angles))
    vectors = np.array(
        [[np.cos(np.radians(angles[a])), np.sin(np.radians(angles[a]))] for a in ids]
    )
    pairs = [(1, 2), (1, 3), (3, 5), (1, 4)]
    # k = 1 keeps positions 0 and 2 (as above); no cap
    assert choose_pair_positions(pairs, (ids, vectors), 1, 0, 7) == ([0, 2], 2)
    # no neighbourhood: every pair is available; the cap takes a seeded 2 of the 4
    chosen, available = choose_pair_positions(pairs, None, 1, 2, 7)
    assert available == 4
    assert chosen == limit_indices([0, 1, 2, 3], 2, 7)
    assert len(chosen) == 2
