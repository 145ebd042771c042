"""Fitting the bi-encoder of an encoder recipe (``contrastive``, ``case_study``, ``lora``): the
base model loaded, wrapped in LoRA adapters when the recipe says so
(:mod:`anime_recs.training.lora`), trained on pairs (:func:`~anime_recs.training.finetune.train`)
and the adapters merged back, so what comes out is a plain sentence-transformers model.

No Spark and no MLflow: the finetune stage (:mod:`anime_recs.training.stage`) chooses the pairs,
tracks the run and registers the model; ``tools/learning_curve.py`` embeds with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anime_recs.config import FinetuneConfig
from anime_recs.models import load_sentence_transformer
from anime_recs.steps import step
from anime_recs.training.examples import PairSet
from anime_recs.training.finetune import (
    MetricsCallback,
    TrainResult,
    TrainSettings,
    pick_device,
    train,
)
from anime_recs.training.lora import apply_lora, merge_lora
from anime_recs.training.recipes import RECIPES, lora_settings, train_settings

ModelHook = Callable[[Any], None]


@dataclass
class FittedEncoder:
    """The trained encoder (LoRA merged: loading it needs no ``peft``), the training loop's
    result and the device it trained on."""

    model: Any
    result: TrainResult
    device: str


def fit_encoder(
    ft: FinetuneConfig,
    train_pairs: PairSet,
    val_pairs: PairSet,
    checkpoint_dir: str | Path,
    *,
    device: str | None = None,
    settings: TrainSettings | None = None,
    on_loaded: ModelHook | None = None,
    on_trained: ModelHook | None = None,
    on_metrics: MetricsCallback | None = None,
    meta: dict[str, Any] | None = None,
) -> FittedEncoder:
    """Load ``ft.base_model`` on ``device`` (None: the GPU when there is one, else the CPU),
    wrap it in LoRA adapters for a ``lora`` recipe, train it on ``train_pairs`` with
    ``settings`` (None: the recipe's, :func:`~anime_recs.training.recipes.train_settings`),
    continuing from the newest checkpoint in ``checkpoint_dir``, and merge the adapters.

    ``on_loaded`` sees the model before training (a LoRA model's untrained update is 0, so it
    encodes as the base model does), ``on_trained`` the trained model before the merge;
    ``on_metrics`` and ``meta`` go to the training loop (its logged metrics; what its
    checkpoints remember).
    """
    recipe = RECIPES[ft.recipe]
    settings = settings or train_settings(ft)
    device = device or pick_device()
    with step("load base model") as facts:
        model = load_sentence_transformer(ft.base_model, ft.max_seq_length, device)
        facts.update(model=ft.base_model, device=device, max_seq_length=model.max_seq_length)
        if recipe.lora:
            # before any checkpoint is loaded: a resumed run's checkpoint holds the wrapped model
            weights = apply_lora(model, lora_settings(ft))
            facts.update(lora=weights)
    if on_loaded is not None:
        on_loaded(model)
    with step("train") as facts:
        result = train(
            model,
            train_pairs,
            val_pairs,
            settings,
            checkpoint_dir,
            on_metrics=on_metrics,
            meta=meta,
        )
        facts.update(
            steps=result.global_step,
            spearman_before=result.spearman_before,
            spearman_after=result.spearman_after,
            pairs_per_s=round(result.pairs_per_s, 2),
        )
    if on_trained is not None:
        on_trained(model)
    if recipe.lora:
        merge_lora(model)  # a plain encoder: loading it needs no peft
    return FittedEncoder(model, result, device)
