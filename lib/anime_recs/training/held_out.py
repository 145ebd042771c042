"""The held-out-title measures every fine-tuning recipe reports and keeps its epoch by.

The ``val`` rows of ``copromoted_pairs`` are every guarded pair of two titles that no train
pair has (the title-group split), graded by their Jaccard. For vectors of those titles:

- ``spearman``: Spearman correlation of the pairs' cosine with their Jaccard;
- ``ndcg``: NDCG@``finetune.validation_k`` of each held-out title's
  ``finetune.validation_candidates`` nearest held-out titles, the lists drawn once from the
  vectors before training and re-ranked by the vectors measured, gains = Jaccard. This is how
  the recommender uses vectors (the top k neighbours of each promoted title), so it is the
  measure the default recipe is chosen by (docs/quality.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anime_recs.options import IN_BATCH
from anime_recs.training.adapter import (
    TrainExamples,
    anchor_ndcgs,
    listwise_examples,
    neighbourhood_ndcg,
    pair_cosines,
    pair_rows,
    spearman,
)
from anime_recs.training.examples import PairSet

SPEARMAN, NDCG = "spearman", "ndcg"


@dataclass(frozen=True)
class HeldOut:
    """The held-out titles' measures of a set of vectors (rows = the source's titles)."""

    pair_a: np.ndarray
    pair_b: np.ndarray
    jaccard: np.ndarray
    lists: TrainExamples  # each held-out title's neighbourhood among them, gains = Jaccard
    k: int

    @property
    def titles(self) -> int:
        return int(np.unique(np.r_[self.pair_a, self.pair_b]).size)

    def anchor_ndcgs(self, vectors: np.ndarray) -> np.ndarray:
        """NDCG@k of each held-out title with a valued candidate (the same titles, in the same
        order, for any vectors: a paired comparison)."""
        if not len(self.lists):
            return np.zeros(0)
        return anchor_ndcgs(vectors, self.lists.first, self.lists.second, self.lists.gains, self.k)

    def measures(self, vectors: np.ndarray) -> dict[str, float | None]:
        """Spearman of cosine vs Jaccard over the pairs, and NDCG@k of the neighbourhoods."""
        return {
            SPEARMAN: spearman(pair_cosines(vectors, self.pair_a, self.pair_b), self.jaccard),
            NDCG: neighbourhood_ndcg(
                vectors, self.lists.first, self.lists.second, self.lists.gains, self.k
            )
            if len(self.lists)
            else None,
        }


def held_out_of(
    ids: np.ndarray,
    vectors: np.ndarray,
    val: tuple[np.ndarray, np.ndarray, np.ndarray],
    candidates: int,
    k: int,
) -> HeldOut:
    """The held-out measures over ``val`` pairs ``(anime_a, anime_b, jaccard)`` of titles with
    a row in ``ids``; each held-out title's ``candidates`` are its nearest held-out titles by
    ``vectors`` (the source's: the same lists for every map measured on them)."""
    va, vb, vj = pair_rows(ids, *val)
    return HeldOut(va, vb, vj, listwise_examples(vectors, va, vb, vj, candidates), k)


def chosen_measure(objective: str) -> str:
    """The held-out measure that keeps an epoch: Spearman for ``in_batch`` (its loss is over
    pairs), neighbourhood NDCG for ``listwise`` (its loss is over neighbourhoods)."""
    return SPEARMAN if objective == IN_BATCH else NDCG


def pair_set_titles(pairs: PairSet) -> tuple[np.ndarray, list[str]]:
    """The distinct titles of ``pairs`` (ids ascending) and their texts."""
    texts = {}
    for (a, b), text_a, text_b in zip(pairs.ids, pairs.texts_a, pairs.texts_b, strict=True):
        texts[a], texts[b] = text_a, text_b
    ids = np.array(sorted(texts), np.int64)
    return ids, [texts[int(i)] for i in ids]


def pair_set_values(pairs: PairSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(anime_a, anime_b, label)`` arrays of ``pairs``."""
    ids = np.array(pairs.ids, np.int64).reshape(-1, 2)
    return ids[:, 0], ids[:, 1], np.asarray(pairs.labels, np.float64)
