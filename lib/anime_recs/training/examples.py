"""Labelled pairs of texts on the driver: what the fine-tune trains and validates on.

Needs numpy only (no Spark), like :mod:`anime_recs.training.finetune`, so a training step can
be timed where Spark is not installed; :mod:`anime_recs.training.pairs` builds them from Delta.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class PairSet:
    """Parallel lists: ``texts_a[i]`` and ``texts_b[i]`` have target cosine ``labels[i]``."""

    texts_a: list[str] = field(default_factory=list)
    texts_b: list[str] = field(default_factory=list)
    labels: list[float] = field(default_factory=list)
    ids: list[tuple[int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.texts_a)
        if not len(self.texts_b) == len(self.labels) == n or (self.ids and len(self.ids) != n):
            raise ValueError("PairSet: texts_a, texts_b, labels (and ids) must have equal length")

    def __len__(self) -> int:
        return len(self.labels)

    def positives(self) -> int:
        return sum(1 for v in self.labels if v >= 0.5)

    def subset(self, index: list[int] | np.ndarray) -> PairSet:
        return PairSet(
            [self.texts_a[i] for i in index],
            [self.texts_b[i] for i in index],
            [self.labels[i] for i in index],
            [self.ids[i] for i in index] if self.ids else [],
        )
