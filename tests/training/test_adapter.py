"""The vector adapter: its formulas on hand-computed examples, and training that transfers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anime_recs.training.adapter import (
    AdapterSettings,
    TrainExamples,
    adapt,
    in_batch_loss,
    listwise_examples,
    listwise_loss,
    neighbourhood_ndcg,
    neighbourhoods,
    relevance_matrix,
    residual_penalty,
    train_adapter,
)


def test_adapt_by_hand():
    # v = (1, 0); A = [[1, 0]] (rank 1), B = [[0], [1]]: B A v = (0, 1), f(v) = (1, 1) / sqrt 2
    got = adapt(
        np.array([[1.0, 0.0], [0.0, 2.0]]), np.array([[1.0, 0.0]]), np.array([[0.0], [1.0]])
    )
    np.testing.assert_allclose(got, [[2**-0.5, 2**-0.5], [0.0, 1.0]], atol=1e-7)


def test_untrained_adapter_is_the_identity_on_unit_vectors():
    v = np.array([[0.6, 0.8], [1.0, 0.0]])
    np.testing.assert_allclose(adapt(v, np.ones((3, 2)), np.zeros((2, 3))), v, atol=1e-7)


def test_neighbourhoods_exclude_the_title_and_break_ties_by_smaller_row():
    v = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    near = neighbourhoods(v, np.array([0, 1, 2, 3]), 2)
    assert near[0].tolist() == [1, 3]
    assert near[2].tolist() == [0, 1]  # all at cosine 0: the smaller rows


def test_relevance_matrix_is_symmetric_and_zero_when_absent():
    rel = relevance_matrix(
        np.array([0, 2]),
        np.array([[1, 2], [0, 1]]),
        np.array([0, 1]),
        np.array([2, 2]),
        np.array([0.5, 0.3]),
    )
    np.testing.assert_allclose(rel, [[0.0, 0.5], [0.5, 0.3]])


def test_neighbourhood_ndcg_by_hand():
    # anchor 0 at (1, 0); candidates 1 (cos 1) and 2 (cos 0) with gains 0 and 1:
    # ranking puts 1 first: DCG@2 = 0 + 1 / log2(3), IDCG = 1
    v = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    got = neighbourhood_ndcg(v, np.array([0]), np.array([[1, 2]]), np.array([[0.0, 1.0]]), 2)
    assert got == pytest.approx(1 / np.log2(3))
    assert neighbourhood_ndcg(v, np.array([0]), np.array([[1, 2]]), np.zeros((1, 2)), 2) is None


def test_listwise_loss_by_hand():
    # logits = scale * cos = (2, 0); target (0.25, 0.75): loss = -(0.25 log p1 + 0.75 log p2)
    anchors = torch.tensor([[1.0, 0.0]])
    candidates = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    got = float(listwise_loss(anchors, candidates, torch.tensor([[1.0, 3.0]]), 2.0))
    p = np.exp([2.0, 0.0]) / np.exp([2.0, 0.0]).sum()
    assert got == pytest.approx(-(0.25 * np.log(p[0]) + 0.75 * np.log(p[1])), rel=1e-6)


def test_in_batch_loss_by_hand():
    # two orthogonal pairs, scale 1: each row's softmax over (1, 0): loss = log(1 + e^-1)
    x = torch.eye(2)
    assert float(in_batch_loss(x, x, 1.0)) == pytest.approx(np.log(1 + np.exp(-1.0)), rel=1e-6)


def test_residual_penalty_by_hand():
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0], [2.0]])  # B A v = (0, 2 v_0)
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert float(residual_penalty(v, a, b)) == pytest.approx((4.0 + 0.0) / 2)


def test_unknown_loss_is_refused():
    settings = AdapterSettings(4, 1, 8, 1e-3, 0.0, 10.0, 1, "triplet")
    with pytest.raises(ValueError, match="triplet"):
        train_adapter(np.eye(3), TrainExamples.pairs([0], [1]), lambda v: None, settings)


def hidden_world(seed: int = 3, n: int = 400, dim: int = 16):
    """Titles whose co-promotion follows a hidden linear view of their vectors: the pairs'
    graded value is the cosine in that view, so a map learned on some titles transfers to
    titles it never saw (the property the adapter is for)."""
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, dim))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    view = np.diag(np.r_[np.full(2, 4.0), np.full(dim - 2, 0.2)])
    w = v @ view
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    truth = w @ w.T
    near = neighbourhoods(v, np.arange(n), 30)
    a = np.repeat(np.arange(n), near.shape[1])
    b = near.ravel()
    value = np.clip(truth[a, b] - 0.5, 0, None)
    train, val = np.arange(n) < 300, np.arange(n) >= 300
    return v, a, b, value, train, val


@pytest.mark.parametrize("loss", ["listwise", "in_batch"])
def test_training_raises_the_held_out_measure(loss):
    v, a, b, value, train, val = hidden_world()
    inside = train[a] & train[b]
    held = val[a] & val[b]
    val_examples = listwise_examples(v, a[held], b[held], value[held], 10)

    def measure(vectors):
        return neighbourhood_ndcg(
            vectors, val_examples.first, val_examples.second, val_examples.gains, 3
        )

    if loss == "listwise":
        examples = listwise_examples(v, a[inside], b[inside], value[inside], 10)
    else:
        strong = inside & (value > np.quantile(value[inside], 0.8))
        examples = TrainExamples.pairs(a[strong], b[strong])
    settings = AdapterSettings(8, 15, 32, 1e-2, 0.01, 10.0, 1, loss)
    result = train_adapter(v, examples, measure, settings)
    assert result.best_epoch > 0
    assert result.measure_after > result.measure_before + 0.02
    assert measure(adapt(v, result.a, result.b)) == pytest.approx(result.measure_after)


def test_training_is_deterministic_for_a_seed():
    v, a, b, value, train, _ = hidden_world()
    examples = listwise_examples(v, a, b, value, 10)
    settings = AdapterSettings(4, 2, 32, 1e-2, 0.01, 10.0, 5, "listwise")
    one = train_adapter(v, examples, lambda x: float(x[0, 0]), settings)
    two = train_adapter(v, examples, lambda x: float(x[0, 0]), settings)
    np.testing.assert_array_equal(one.a, two.a)
    np.testing.assert_array_equal(one.b, two.b)
