"""Test users, one chunk of users scored in numpy, and the same through Spark (parity)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from anime_recs.recommend.scoring import (
    build_model,
    find_test_users,
    recommendations_from_lists,
    score_chunk,
    score_users,
)


def test_test_users_need_a_test_rating_and_a_promoted_train_title():
    user = np.array([0, 0, 1, 1, 2, 3, 3])
    is_test = np.array([False, True, False, True, True, False, False])
    rating = np.array([9, 3, 8, 10, 10, 10, 9])
    # 0: promoted train + test -> yes; 1: train 8 only -> no; 2: no train; 3: no test
    assert find_test_users(user, is_test, rating, 4).tolist() == [True, False, False, False]


NEIGHBORS = {
    ("emb", "all"): pd.DataFrame(
        {
            "anime_id": [10, 10, 20, 20, 30],
            "neighbor_id": [20, 30, 30, 40, 40],
            "rank": [1, 2, 1, 2, 1],
            "similarity": [0.9, 0.8, 0.7, 0.6, 0.5],
        }
    )
}
PROMOTERS = pd.DataFrame({"anime_id": [10, 20, 30, 40, 50], "promoters": [3, 5, 1, 1, 0]})
# user 7: promoted 10 in train, rated 20 in train (excluded), test ratings 30 (8) and 40 (2)
# user 8: no promoted train title -> not a test user; user 9: promoted 20, test 50 (10)
RATINGS = pd.DataFrame(
    {
        "user_id": [7, 7, 7, 7, 8, 8, 9, 9],
        "anime_id": [10, 20, 30, 40, 10, 30, 20, 50],
        "rating": [10, 5, 8, 2, 7, 9, 9, 10],
        "split": ["train", "train", "test", "test", "train", "test", "train", "test"],
    }
)


def model():
    return build_model([("emb", "all"), ("popularity", "all")], NEIGHBORS, PROMOTERS, k=2)


def chunk_rows(table: pa.Table) -> list[dict]:
    return sorted(table.to_pylist(), key=lambda r: (r["recommender"], r["view"], r["user_id"]))


def test_score_chunk_lists_and_test_ratings():
    r = RATINGS
    out = score_chunk(
        r["user_id"].to_numpy(),
        r["anime_id"].to_numpy(),
        r["rating"].to_numpy(),
        (r["split"] == "test").to_numpy(),
        model(),
        2,
        3,
        0.05,
    )
    rows = chunk_rows(out)
    assert rows == [
        # user 7: neighbours of 10 = 20 (train, dropped), 30 (0.8)
        {
            "recommender": "emb",
            "view": "all",
            "user_id": 7,
            "anime_ids": [30],
            "scores": [0.8],
            "test_ratings": [8],
            "promoted_test": 0,
            "test_titles": 2,
        },
        # user 9: neighbours of 20 = 30 (0.7), 40 (0.6)
        {
            "recommender": "emb",
            "view": "all",
            "user_id": 9,
            "anime_ids": [30, 40],
            "scores": [0.7, 0.6],
            "test_ratings": [0, 0],
            "promoted_test": 1,
            "test_titles": 1,
        },
        # popularity order: 20 (5), 10 (3), 30 (1), 40 (1), 50 (0)
        {
            "recommender": "popularity",
            "view": "all",
            "user_id": 7,
            "anime_ids": [30, 40, 50],
            "scores": [1.0, 1.0, 0.0],
            "test_ratings": [8, 2, 0],
            "promoted_test": 0,
            "test_titles": 2,
        },
        {
            "recommender": "popularity",
            "view": "all",
            "user_id": 9,
            "anime_ids": [10, 30, 40],
            "scores": [3.0, 1.0, 1.0],
            "test_ratings": [0, 0, 0],
            "promoted_test": 1,
            "test_titles": 1,
        },
    ]


def test_score_users_through_spark_matches_one_chunk(spark):
    rng = np.random.default_rng(1)
    rows = []
    for user in range(1, 151):
        for title in rng.choice([10, 20, 30, 40, 50], size=int(rng.integers(1, 6)), replace=False):
            rows.append(
                (
                    user,
                    int(title),
                    int(rng.integers(5, 11)),
                    "test" if rng.random() < 0.3 else "train",
                )
            )
    ratings = pd.DataFrame(rows, columns=["user_id", "anime_id", "rating", "split"])
    expected = chunk_rows(
        score_chunk(
            ratings["user_id"].to_numpy(),
            ratings["anime_id"].to_numpy(),
            ratings["rating"].to_numpy(),
            (ratings["split"] == "test").to_numpy(),
            model(),
            2,
            3,
            0.05,
        )
    )
    assert len(expected) > 60
    previous = spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch")
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "7")  # users span batches
    try:
        lists = score_users(
            spark,
            spark.createDataFrame(ratings),
            model(),
            2,
            3,
            0.05,
            chunk_rows=10,
            partitions=2,
        )
        got = sorted(
            (r.asDict() for r in lists.collect()),
            key=lambda r: (r["recommender"], r["view"], r["user_id"]),
        )
        recs = recommendations_from_lists(lists).toPandas()
    finally:
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", previous)
    assert got == expected
    assert len(recs) == sum(len(r["anime_ids"]) for r in expected)
    first = recs[(recs["recommender"] == "popularity") & (recs["rank"] == 1)]
    assert set(first["user_id"]) == {r["user_id"] for r in expected if r["anime_ids"]}
