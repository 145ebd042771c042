"""The training loop: schedule formulas, learning on a tiny model, checkpoints and resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer

from anime_recs.training.examples import PairSet
from anime_recs.training.finetune import (
    STATE_FILE,
    batch_embeddings,
    clear_checkpoints,
    epoch_order,
    evaluate_spearman,
    latest_checkpoint,
    length_groups,
    make_scheduler,
    read_checkpoint_state,
    steps_per_epoch,
    train,
    warmup_steps,
)
from tests.training.training_data import train_settings


def test_warmup_steps_is_ceil_of_ratio_times_total():
    assert warmup_steps(145, 0.1) == 15  # 14.5 -> 15
    assert warmup_steps(140, 0.1) == 14
    assert warmup_steps(3, 0.0) == 0


def _learning_rates(total: int, warmup_ratio: float, steps: int) -> list[float]:
    """The rate of each of ``steps`` optimizer steps under :func:`make_scheduler`, peak 1.0."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = make_scheduler(optimizer, total, warmup_ratio)
    rates = []
    for _ in range(steps):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return rates


def test_schedule_ramps_up_then_decays_to_zero():
    # 12 steps, warmup ceil(0.3 * 12) = 4: 0, 1/4, 2/4, 3/4, then (12-4)/8=1, (12-5)/8, ...
    # (12-12)/8=0, and 0 past the end
    rates = _learning_rates(12, 0.3, 21)
    assert rates[:5] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert rates[8] == pytest.approx(0.5)
    assert rates[12] == 0.0 and rates[20] == 0.0
    assert _learning_rates(10, 0.0, 1) == [1.0]  # no warmup: starts at the peak


def test_steps_per_epoch_counts_the_partial_last_batch():
    assert steps_per_epoch(288, 16) == 18
    assert steps_per_epoch(289, 16) == 19


def test_epoch_order_is_a_seeded_permutation():
    a = epoch_order(50, seed=3, epoch=0)
    assert sorted(a) == list(range(50))
    assert a == epoch_order(50, seed=3, epoch=0)
    assert a != epoch_order(50, seed=3, epoch=1)


def test_length_groups_sort_longest_first_and_cut_in_chunks():
    lengths = [3, 7, 5, 7, 1]
    # by length descending, ties by position: 1 (7), 3 (7), 2 (5), 0 (3), 4 (1)
    assert length_groups(lengths, 2) == [[1, 3], [2, 0], [4]]
    assert length_groups(lengths, 4) == [[1, 3, 2, 0], [4]]
    assert length_groups(lengths, 0) == [[0, 1, 2, 3, 4]]  # one pass, the batch's order
    assert length_groups(lengths, 5) == [[0, 1, 2, 3, 4]]
    assert length_groups([], 8) == []


def _varied_texts(pairs: PairSet, n: int) -> list[str]:
    """``n`` texts of 1 to 16 words: lengths that differ a lot, as real descriptions do."""
    words = " ".join(pairs.texts_a).split()
    return [" ".join(words[i : i + 1 + (7 * i) % 16]) for i in range(n)]


@pytest.mark.parametrize("loss_name", ["CosineSimilarityLoss", "MultipleNegativesRankingLoss"])
def test_length_grouped_forward_gives_the_same_loss_and_gradients_with_less_padding(
    tiny_model, train_pairs, loss_name
):
    from sentence_transformers import losses

    tiny_model.eval()  # no dropout: its random masks would be drawn in another order
    texts_a, texts_b = _varied_texts(train_pairs, 12), _varied_texts(train_pairs, 13)[1:]
    labels = torch.tensor([float(i % 2) for i in range(12)])
    loss_fn = getattr(losses, loss_name)(tiny_model)
    widths: list[tuple[int, int]] = []
    hook = tiny_model[0].register_forward_pre_hook(
        lambda module, args: widths.append(tuple(args[0]["input_ids"].shape))
    )

    def loss_and_grads(chunk: int):
        tiny_model.zero_grad(set_to_none=True)
        widths.clear()
        embeddings = [batch_embeddings(tiny_model, t, chunk, "cpu") for t in (texts_a, texts_b)]
        loss = loss_fn.compute_loss_from_embeddings(embeddings, labels)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in tiny_model.named_parameters() if p.grad is not None}
        return embeddings, float(loss.detach()), grads, sum(rows * width for rows, width in widths)

    try:
        emb_one, loss_one, grads_one, tokens_one = loss_and_grads(0)
        emb_grouped, loss_grouped, grads_grouped, tokens_grouped = loss_and_grads(4)
    finally:
        hook.remove()
    for one, grouped in zip(emb_one, emb_grouped, strict=True):
        torch.testing.assert_close(grouped, one, atol=1e-5, rtol=0)  # in the texts' order
    assert loss_grouped == pytest.approx(loss_one, abs=1e-5)
    assert grads_one.keys() == grads_grouped.keys() and grads_one
    for name, grad in grads_one.items():
        torch.testing.assert_close(grads_grouped[name], grad, atol=1e-5, rtol=1e-4)
    assert tokens_grouped < 0.75 * tokens_one  # token positions computed, padding included


def test_evaluate_spearman_is_none_when_undefined(tiny_model):
    single_label = PairSet(["a b", "c d"], ["a c", "b d"], [1.0, 1.0])
    assert evaluate_spearman(tiny_model, single_label) is None
    assert evaluate_spearman(tiny_model, PairSet()) is None


def test_training_decreases_loss_and_improves_val_spearman(trained):
    _, result = trained
    assert result.completed and result.global_step == result.total_steps == 36
    losses = [loss for _, loss in result.loss_curve]
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3])
    assert result.spearman_before is not None and result.spearman_after is not None
    assert result.spearman_after > result.spearman_before + 0.15
    assert [epoch for epoch, _ in result.epoch_spearman] == [1, 2]
    assert result.pairs_trained == 2 * 288 and result.pairs_per_s > 0


def test_metrics_callback_gets_loss_curve_and_evaluations(
    tiny_model, train_pairs, val_pairs, tmp_path
):
    seen: list[tuple[dict, int]] = []
    small = train_pairs.subset(range(0, 288, 6))  # 48 pairs, 3 steps
    settings = train_settings(batch_size=16, epochs=1, learning_rate=1e-3, logging_steps=2)
    result = train(
        tiny_model,
        small,
        val_pairs,
        settings,
        tmp_path,
        on_metrics=lambda m, s: seen.append((m, s)),
    )
    assert [s for m, s in seen if "train_loss" in m] == [2, 3]  # every 2 steps + epoch end
    assert [(s, m["val_spearman"]) for m, s in seen if "val_spearman" in m] == [
        (0, result.spearman_before),
        (3, result.spearman_after),
    ]


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_interrupted_training_resumes_to_the_same_weights(
    tiny_model_dir, train_pairs, val_pairs, tmp_path
):
    small = train_pairs.subset(range(0, 288, 3))  # 96 pairs: 6 steps per epoch, 12 in all
    settings = train_settings(
        batch_size=16, epochs=2, learning_rate=3e-3, seed=5, logging_steps=1, checkpoint_steps=4
    )
    straight = SentenceTransformer(tiny_model_dir, device="cpu")
    full = train(straight, small, val_pairs, settings, tmp_path / "straight")

    first = SentenceTransformer(tiny_model_dir, device="cpu")
    part = train(first, small, val_pairs, settings, tmp_path / "resumed", stop_after_steps=9)
    assert not part.completed and part.global_step == 9
    state = read_checkpoint_state(tmp_path / "resumed")
    assert (state.global_step, state.epoch, state.next_batch) == (9, 1, 3)

    second = SentenceTransformer(tiny_model_dir, device="cpu")  # a fresh process, in effect
    resumed = train(second, small, val_pairs, settings, tmp_path / "resumed", meta={"run": "x"})
    assert resumed.completed and resumed.resumed_from_step == 9
    assert resumed.global_step == full.global_step == 12
    assert resumed.spearman_before == full.spearman_before  # kept from the first session
    assert resumed.meta == {"run": "x"}
    assert resumed.session_pairs == 3 * 16  # only the remaining 3 steps were trained
    a, b = _weights(straight), _weights(second)
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-6, rtol=0)
    assert [s for s, _ in resumed.loss_curve] == [s for s, _ in full.loss_curve]
    texts = val_pairs.texts_a[:5]
    np.testing.assert_allclose(straight.encode(texts), second.encode(texts), atol=1e-6)


def test_checkpoints_keep_only_the_newest_complete_one(
    tiny_model, train_pairs, val_pairs, tmp_path
):
    small = train_pairs.subset(range(0, 288, 6))  # 48 pairs, 3 steps
    settings = train_settings(batch_size=16, epochs=1, checkpoint_steps=1)
    train(tiny_model, small, val_pairs, settings, tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["checkpoint-3"]
    (tmp_path / "checkpoint-7").mkdir()  # a folder without state (killed mid-write) is ignored
    assert latest_checkpoint(tmp_path).name == "checkpoint-3"
    assert json.loads((tmp_path / "checkpoint-3" / STATE_FILE).read_text())["completed"] is False
    clear_checkpoints(tmp_path)
    assert latest_checkpoint(tmp_path) is None


def test_checkpoint_from_other_settings_is_refused(tiny_model, train_pairs, val_pairs, tmp_path):
    small = train_pairs.subset(range(0, 288, 6))
    train(tiny_model, small, val_pairs, train_settings(batch_size=16, epochs=1), tmp_path)
    with pytest.raises(ValueError, match="made for 3 steps, not 6"):
        train(tiny_model, small, val_pairs, train_settings(batch_size=8, epochs=1), tmp_path)


def test_no_training_pairs_is_an_error(tiny_model, val_pairs, tmp_path):
    with pytest.raises(ValueError, match="no training pairs"):
        train(tiny_model, PairSet(), val_pairs, train_settings(), tmp_path)
