"""The peers: EASE's closed form and Gram matrix on hand-computed examples, the dense top-N,
and Spark MLlib ALS scored from its own factors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from anime_recs.errors import JobError
from anime_recs.recommend.peers import (
    DenseModel,
    dense_scores,
    ease_weights,
    fit_als,
    fit_ease,
    promoted_gram,
)
from anime_recs.recommend.scoring import build_model, dense_top_n, score_chunk


def test_ease_weights_on_a_hand_computed_gram():
    # G + l2 I = [[3, 1], [1, 3]], its inverse P = [[3, -1], [-1, 3]] / 8;
    # B_ij = -P_ij / P_jj = (1/8) / (3/8) = 1/3 off the diagonal, 0 on it
    weights = ease_weights(np.array([[2.0, 1.0], [1.0, 2.0]]), 1.0)
    assert np.allclose(weights, [[0.0, 1 / 3], [1 / 3, 0.0]])


def test_ease_weights_minimise_the_constrained_least_squares():
    rng = np.random.default_rng(3)
    x = (rng.random((40, 6)) < 0.4).astype(float)
    b = ease_weights(x.T @ x, 2.0)
    loss = np.sum((x - x @ b) ** 2) + 2.0 * np.sum(b**2)
    # any change that keeps the diagonal at zero makes the objective larger
    for _ in range(20):
        step = rng.normal(scale=1e-3, size=b.shape)
        np.fill_diagonal(step, 0.0)
        moved = b + step
        assert np.sum((x - x @ moved) ** 2) + 2.0 * np.sum(moved**2) > loss


def test_promoted_gram_counts_common_promoters():
    # user 7 promoted 10 and 20, user 8 promoted 10: 10 has 2 promoters, 20 one, both share one
    gram = promoted_gram(np.array([7, 7, 8]), np.array([10, 20, 10]), np.array([10, 20]))
    assert gram.tolist() == [[2.0, 1.0], [1.0, 1.0]]


def test_dense_top_n_skips_excluded_titles_and_breaks_ties_by_the_smaller_title():
    scores = np.array([[0.5, 0.9, 0.9, 0.1], [0.2, 0.1, 0.3, 0.4]])
    excluded = np.array([[False, False, False, True], [True, True, True, False]])
    cols, values = dense_top_n(scores, excluded, 5)
    assert cols.tolist() == [[1, 2, 0, -1, -1], [3, -1, -1, -1, -1]]
    assert np.allclose(values[0, :3], [0.9, 0.9, 0.5]) and np.isnan(values[0, 3:]).all()


def test_ease_lists_in_a_chunk_are_the_promoted_rows_summed_minus_the_train_titles():
    weights = np.array([[0.0, 0.5, 0.2], [0.4, 0.0, 0.1], [0.3, 0.6, 0.0]], np.float32)
    model = DenseModel(titles=np.array([10, 20, 30]), item_weights=weights)
    # user 1 promoted 10 and rated 20 in train; test rating of 30: scores 30 -> 0.2, 20 excluded
    scored = build_model(
        [("ease", "all")],
        {},
        pd.DataFrame({"anime_id": [10, 20, 30], "promoters": [1, 0, 0]}),
        3,
        {"ease": model},
    )
    out = score_chunk(
        np.array([1, 1, 1]),
        np.array([10, 20, 30]),
        np.array([9, 5, 10]),
        np.array([False, False, True]),
        scored,
        3,
        3,
        0.0,
    ).to_pylist()
    assert [(r["anime_ids"], r["test_ratings"]) for r in out] == [([30], [10])]
    assert out[0]["scores"] == pytest.approx([0.2])
    assert dense_scores(model, np.array([1]), np.array([0, 0]), np.array([10, 30]), 1)[
        0
    ].tolist() == pytest.approx([0.3, 1.1, 0.2])


def test_fit_ease_refuses_more_titles_than_its_guard(spark):
    ratings = spark.createDataFrame(
        [(1, 10, 9), (1, 20, 10), (2, 30, 9)], "user_id INT, anime_id INT, rating INT"
    )
    assert fit_ease(ratings, 1.0, 3).titles.tolist() == [10, 20, 30]
    with pytest.raises(JobError, match=r"ease: 3 promoted titles > recommend.ease.max_titles=2"):
        fit_ease(ratings, 1.0, 2)


def test_als_scores_are_the_dot_products_of_its_factors(spark):
    rng = np.random.default_rng(1)
    rows = [
        (u, int(a), int(rng.integers(1, 11)))
        for u in range(1, 41)
        for a in rng.choice(np.arange(100, 130), 8, replace=False)
    ]
    ratings = spark.createDataFrame(rows, "user_id INT, anime_id INT, rating INT")
    model = fit_als(ratings, rank=4, reg=0.1, alpha=1.0, max_iter=2, seed=3)
    assert model.titles.tolist() == list(range(100, 130))
    assert model.user_ids.tolist() == list(range(1, 41))
    again = fit_als(ratings, rank=4, reg=0.1, alpha=1.0, max_iter=2, seed=3)
    assert np.allclose(model.item_factors, again.item_factors)  # seeded
    users = np.array([3, 999])  # 999: unseen by ALS, scores 0
    scores = dense_scores(model, users, np.zeros(0, int), np.zeros(0, int), 2)
    assert np.allclose(scores[0], model.user_factors[2] @ model.item_factors.T, atol=1e-5)
    assert not scores[1].any()
