"""The vector adapter: its formulas on hand-computed examples, and training that transfers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anime_recs.embeddings.adapted import adapt
from anime_recs.training.adapter import (
    AdapterSettings,
    TrainExamples,
    in_batch_loss,
    listwise_examples,
    listwise_loss,
    neighbourhood_ndcg,
    neighbourhoods,
    pair_rows,
    relevance_matrix,
    residual_penalty,
    train_adapter,
)
from tests.training.training_data import hidden_world


def test_neighbourhoods_exclude_the_title_and_break_ties_by_smaller_row():
    v = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    near = neighbourhoods(v, np.array([0, 1, 2, 3]), 2)
    assert near[0].tolist() == [1, 3]
    assert near[2].tolist() == [0, 1]  # all at cosine 0: the smaller rows


def test_neighbourhoods_in_chunks_equal_one_block(monkeypatch):
    from anime_recs.training import adapter

    v, *_ = hidden_world(n=60)
    whole = neighbourhoods(v, np.arange(60), 7)
    monkeypatch.setattr(adapter, "NEIGHBOURHOOD_CHUNK", 8)
    np.testing.assert_array_equal(neighbourhoods(v, np.arange(60), 7), whole)


def test_pair_rows_by_hand():
    # ids 30, 10, 20 are rows 0, 1, 2; the pair with title 99 (no vector) is dropped
    a, b, value = pair_rows(
        np.array([30, 10, 20]),
        np.array([10, 20, 99]),
        np.array([30, 30, 10]),
        np.array([0.5, 0.25, 0.1]),
    )
    assert a.tolist() == [1, 2] and b.tolist() == [0, 0] and value.tolist() == [0.5, 0.25]


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
