"""LoRA on the encoder: only the adapters train, and merging folds them into the weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anime_recs.training.lora import LoraSettings, apply_lora, merge_lora, transformer_module

TEXTS = ["a dragon and a knight", "robot pilots in space", "a school club in summer"]


def test_only_the_adapters_are_trainable_and_their_count_is_by_hand(tiny_model):
    total = sum(p.numel() for p in tiny_model.parameters())
    counts = apply_lora(tiny_model, LoraSettings(4, 8.0, 0.0, ("query", "value"), 0))
    # 2 layers x 2 projections x (A: 4 x 32 + B: 32 x 4) = 1,024 weights
    assert counts == {"trainable": 1024, "total": total + 1024}
    names = [n for n, p in tiny_model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)


def test_merging_folds_alpha_over_rank_b_a_into_the_weights(tiny_model):
    module = transformer_module(tiny_model)
    query = module.auto_model.encoder.layer[0].attention.self.query
    weight = query.weight.detach().clone()
    apply_lora(tiny_model, LoraSettings(4, 8.0, 0.0, ("query", "value"), 0))
    torch.manual_seed(0)
    for name, param in tiny_model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.3)  # untrained B is 0: the identity
    wrapped = tiny_model.encode(TEXTS)
    lora = module.auto_model.base_model.model.encoder.layer[0].attention.self.query
    a, b = lora.lora_A["default"].weight.detach(), lora.lora_B["default"].weight.detach()

    merge_lora(tiny_model)
    merged_query = module.auto_model.encoder.layer[0].attention.self.query
    np.testing.assert_allclose(merged_query.weight.detach(), weight + (8.0 / 4) * b @ a, atol=1e-6)
    assert not any("lora" in key for key in tiny_model.state_dict())
    assert all(p.requires_grad for p in tiny_model.parameters())
    np.testing.assert_allclose(tiny_model.encode(TEXTS), wrapped, atol=1e-5)


def test_an_untrained_adapter_changes_nothing(tiny_model):
    before = tiny_model.encode(TEXTS)
    apply_lora(tiny_model, LoraSettings(2, 4.0, 0.1, ("query",), 0))
    tiny_model.eval()
    np.testing.assert_allclose(tiny_model.encode(TEXTS), before, atol=1e-6)


def test_an_unknown_target_module_is_refused(tiny_model):
    with pytest.raises(ValueError, match="nosuch"):
        apply_lora(tiny_model, LoraSettings(2, 4.0, 0.0, ("nosuch",), 0))


def test_the_lora_recipe_trains_with_its_own_learning_rate_and_lora_settings():
    from anime_recs.config import load_config
    from anime_recs.training.recipes import lora_settings, train_settings

    overrides = ["finetune.learning_rate=0.00002", "finetune.lora.learning_rate=0.0005"]
    lora = load_config(overrides=[*overrides, "finetune.recipe=lora"]).finetune
    contrastive = load_config(overrides=[*overrides, "finetune.recipe=contrastive"]).finetune
    assert train_settings(lora).learning_rate == 0.0005
    assert train_settings(contrastive).learning_rate == 0.00002
    assert train_settings(lora).loss == train_settings(contrastive).loss
    assert lora_settings(lora) == LoraSettings(
        lora.lora.rank,
        lora.lora.alpha,
        lora.lora.dropout,
        tuple(lora.lora.target_modules),
        seed=lora.seed,
    )


def test_the_initial_adapters_depend_on_the_seed_only_and_leave_the_process_rng_alone(
    tiny_model_dir,
):
    from sentence_transformers import SentenceTransformer

    def initial_a(seed: int, draws_before: int) -> tuple[torch.Tensor, torch.Tensor]:
        torch.manual_seed(123)
        torch.rand(draws_before)  # whatever the process drew before wrapping
        model = SentenceTransformer(tiny_model_dir, device="cpu")
        apply_lora(model, LoraSettings(4, 8.0, 0.0, ("query", "value"), seed))
        weights = [p.detach().clone() for n, p in model.named_parameters() if "lora_A" in n]
        return torch.cat([w.ravel() for w in weights]), torch.rand(1)

    first, after_first = initial_a(7, draws_before=1)
    again, _ = initial_a(7, draws_before=5)
    other, _ = initial_a(8, draws_before=1)
    torch.testing.assert_close(first, again)
    assert not torch.equal(first, other)
    torch.manual_seed(123)
    torch.rand(1)
    SentenceTransformer(tiny_model_dir, device="cpu")
    assert torch.equal(after_first, torch.rand(1))  # as if no adapters had been drawn
