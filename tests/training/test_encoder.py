"""fit_encoder: an encoder recipe's load -> LoRA -> train -> merge, without Spark or MLflow."""

from __future__ import annotations

from anime_recs.config import FinetuneConfig, load_config
from anime_recs.training.encoder import fit_encoder
from anime_recs.training.examples import PairSet
from tests.training.training_data import train_settings


def finetune_config(recipe: str, model_dir: str) -> FinetuneConfig:
    overrides = [
        f"finetune.recipe={recipe}",
        f"finetune.base_model={model_dir}",
        "finetune.max_seq_length=64",
        "finetune.lora.rank=4",
    ]
    return load_config(overrides=overrides).finetune


def wrapped(model) -> bool:
    return any("lora" in key for key in model.state_dict())


def test_the_lora_recipe_trains_the_adapters_and_returns_a_merged_encoder(
    tiny_model_dir, train_pairs, tmp_path
):
    import torch
    from sentence_transformers import SentenceTransformer

    seen = []
    fitted = fit_encoder(
        finetune_config("lora", tiny_model_dir),
        train_pairs,
        PairSet(),
        tmp_path / "checkpoints",
        device="cpu",
        settings=train_settings(learning_rate=0.01, loss="MultipleNegativesRankingLoss"),
        on_loaded=lambda model: seen.append(("loaded", wrapped(model))),
        on_trained=lambda model: seen.append(("trained", wrapped(model))),
    )
    # the hooks see the wrapped model, before and after training; the result is merged
    assert seen == [("loaded", True), ("trained", True)]
    assert fitted.device == "cpu" and fitted.result.completed and fitted.result.global_step > 0
    assert not wrapped(fitted.model)
    base = SentenceTransformer(tiny_model_dir, device="cpu").state_dict()
    changed = {k for k, v in fitted.model.state_dict().items() if not torch.equal(v, base[k])}
    assert changed and all(key.endswith(("query.weight", "value.weight")) for key in changed)
