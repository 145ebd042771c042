"""The fine-tuning recipes: what a recipe trains on and with which loss.

``contrastive`` learns from each title's most co-promoted partners
(:mod:`anime_recs.similarity.copromoted`) with in-batch negatives; ``case_study`` is the case
study's 0/1-labelled pairs (:mod:`anime_recs.similarity.labels`) with a cosine loss;
``lora`` is ``contrastive`` through low-rank updates of the encoder's attention projections
(:mod:`anime_recs.training.lora`). Each fine-tunes the encoder, registered as
``finetune.registered_model``. The names are :data:`anime_recs.options.RECIPES` (what
the config validates ``finetune.recipe`` against).
"""

from __future__ import annotations

from dataclasses import dataclass

from anime_recs import options
from anime_recs.config import FinetuneConfig
from anime_recs.tables import COPROMOTED_PAIRS, TRAINING_PAIRS
from anime_recs.training.finetune import TrainSettings
from anime_recs.training.lora import LoraSettings


@dataclass(frozen=True)
class Recipe:
    pairs_table: str  # the Delta table of its examples (rows with split = train)
    loss: str  # a sentence-transformers loss (options.LOSSES)
    lora: bool = False  # the encoder through low-rank adapters (finetune.lora), merged


RECIPES = {
    "contrastive": Recipe(COPROMOTED_PAIRS, "MultipleNegativesRankingLoss"),
    "case_study": Recipe(TRAINING_PAIRS, "CosineSimilarityLoss"),
    "lora": Recipe(COPROMOTED_PAIRS, "MultipleNegativesRankingLoss", lora=True),
}
assert tuple(RECIPES) == options.RECIPES, "one recipe per name in anime_recs.options.RECIPES"


def train_settings(ft: FinetuneConfig) -> TrainSettings:
    """The training loop's settings of the encoder recipe ``ft.recipe`` (``lora`` takes its
    own learning rate, ``finetune.lora.learning_rate``)."""
    recipe = RECIPES[ft.recipe]
    return TrainSettings(
        batch_size=ft.batch_size,
        forward_chunk=ft.forward_chunk,
        epochs=ft.epochs,
        learning_rate=ft.lora.learning_rate if recipe.lora else ft.learning_rate,
        warmup_ratio=ft.warmup_ratio,
        seed=ft.seed,
        logging_steps=ft.logging_steps,
        checkpoint_steps=ft.checkpoint_steps,
        loss=recipe.loss,
    )


def lora_settings(ft: FinetuneConfig) -> LoraSettings:
    """``finetune.lora`` as the LoRA wrapper's settings, initialised with ``finetune.seed``."""
    lora = ft.lora
    return LoraSettings(
        lora.rank, lora.alpha, lora.dropout, tuple(lora.target_modules), seed=ft.seed
    )
