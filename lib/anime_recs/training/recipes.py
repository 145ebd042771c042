"""The fine-tuning recipes: what a recipe trains on and with which loss.

``contrastive`` learns from each title's most co-promoted partners
(:mod:`anime_recs.similarity.copromoted`) with in-batch negatives; ``case_study`` is the case
study's 0/1-labelled pairs (:mod:`anime_recs.similarity.labels`) with a cosine loss. The names
are :data:`anime_recs.options.RECIPES` (what the config validates ``finetune.recipe`` against).
"""

from __future__ import annotations

from dataclasses import dataclass

from anime_recs import options
from anime_recs.tables import COPROMOTED_PAIRS, TRAINING_PAIRS


@dataclass(frozen=True)
class Recipe:
    pairs_table: str  # the Delta table of its examples (rows with split = train)
    loss: str  # a sentence-transformers loss, one of options.LOSSES


RECIPES = {
    "contrastive": Recipe(COPROMOTED_PAIRS, "MultipleNegativesRankingLoss"),
    "case_study": Recipe(TRAINING_PAIRS, "CosineSimilarityLoss"),
}
assert tuple(RECIPES) == options.RECIPES, "one recipe per name in anime_recs.options.RECIPES"
