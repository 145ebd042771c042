"""Co-promoted pairs of the contrastive recipe, on a hand-computed example."""

from __future__ import annotations

import pytest

from anime_recs.similarity.copromoted import copromoted_pairs

PAIRS_DDL = (
    "anime_a int, anime_b int, promoters_a int, promoters_b int, intersection int, jaccard double"
)
# with val_fraction 0.2 and seed 7, titles 1-5 are train titles and 39, 40, 47 val titles
# (pinned by test_the_example_titles_fall_in_the_intended_splits)
PAIRS = [
    (1, 2, 10, 10, 5, 0.5),
    (1, 3, 10, 10, 4, 0.4),
    (1, 4, 10, 10, 3, 0.3),
    (2, 3, 10, 10, 3, 0.2),  # in nobody's top 1: 2's best is 1, 3's best is 1
    (1, 5, 10, 2, 2, 0.2),  # title 5 has too few promoters
    (3, 4, 10, 10, 1, 0.05),  # too few shared promoters
    (39, 40, 10, 10, 3, 0.3),
    (40, 47, 10, 10, 5, 0.1),
    (39, 47, 10, 10, 2, 0.5),  # too few shared promoters
    (1, 39, 10, 10, 5, 0.9),  # mixed split: dropped
]


@pytest.fixture()
def anime(spark):
    ids = [1, 2, 3, 4, 5, 39, 40, 47]
    return spark.createDataFrame([(i, True) for i in ids], "anime_id int, has_description boolean")


def test_the_example_titles_fall_in_the_intended_splits(anime):
    from anime_recs.similarity.labels import title_split

    got = {r.anime_id: r.split for r in title_split(anime, 0.2, 7).collect()}
    assert got == {1: "train", 2: "train", 3: "train", 4: "train", 5: "train"} | {
        39: "val",
        40: "val",
        47: "val",
    }


# the tests' rules (conf/base.yaml's values but top_partners and min_intersection)
RULES = dict(top_partners=1, min_promoters=5, min_intersection=3, val_fraction=0.2, seed=7)


def test_copromoted_pairs_by_hand(spark, anime):
    pairs = spark.createDataFrame(PAIRS, PAIRS_DDL)
    got = copromoted_pairs(pairs, anime, **RULES)
    assert got.columns == ["anime_a", "anime_b", "jaccard", "intersection", "split"]
    assert sorted(tuple(r) for r in got.collect()) == [
        (1, 2, 0.5, 5, "train"),
        (1, 3, 0.4, 4, "train"),
        (1, 4, 0.3, 3, "train"),
        (39, 40, 0.3, 3, "val"),
        (40, 47, 0.1, 5, "val"),
    ]


def test_more_partners_keep_more_train_pairs(spark, anime):
    pairs = spark.createDataFrame(PAIRS, PAIRS_DDL)
    got = copromoted_pairs(pairs, anime, **{**RULES, "top_partners": 2})
    train = sorted((r.anime_a, r.anime_b) for r in got.where("split = 'train'").collect())
    assert train == [(1, 2), (1, 3), (1, 4), (2, 3)]


def test_missing_columns_are_named(spark, anime):
    pairs = spark.createDataFrame(PAIRS, PAIRS_DDL).drop("intersection")
    with pytest.raises(ValueError, match=r"missing columns \[.intersection.\]"):
        copromoted_pairs(pairs, anime, **RULES)
