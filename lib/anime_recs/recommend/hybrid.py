"""The ``hybrid`` recommender: the best warm ranking, with new titles in a few slots.

Its list is the list of a collaborative recommender (``recommend.hybrid.collaborative``, EASE
by default: titles with train ratings only) in which the positions ``cold_slots`` may hold a
title without train ratings instead: the best of the content embedder's cold candidates
(``recommend.hybrid.content``: its neighbours among the cold titles of the user's promoted
titles), when its similarity is at least ``min_similarity``. So on warm titles it ranks exactly
as its collaborative side, on cold titles exactly as its content side, and the slots and the
threshold (chosen on a validation carve of the train split: ``tools.tune``) decide how much of
the list goes to new titles.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def merge_cold_slots(
    warm_titles: np.ndarray,
    warm_scores: np.ndarray,
    cold_titles: np.ndarray,
    cold_scores: np.ndarray,
    cold_slots: Sequence[int],
    min_similarity: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per user (rows), fill ``n = warm_titles.shape[1]`` positions: at a 1-based position in
    ``cold_slots``, the user's next cold candidate (``cold_titles`` ranked best first, -1 =
    none) when its score is at least ``min_similarity``; at every other position, and at a
    slot without such a candidate, the next warm title; when the warm list runs out the list is
    packed to the left. Returns the titles (-1 = none), their scores (NaN = none) and a mask of
    the cold entries."""
    n_users, n = warm_titles.shape
    titles = np.full((n_users, n), -1, dtype=np.int64)
    scores = np.full((n_users, n), np.nan)
    from_cold = np.zeros((n_users, n), dtype=bool)
    rows = np.arange(n_users)
    next_warm = np.zeros(n_users, dtype=np.int64)
    next_cold = np.zeros(n_users, dtype=np.int64)
    n_cold = cold_titles.shape[1]
    slots = set(cold_slots)
    for i in range(n):
        take_cold = np.zeros(n_users, dtype=bool)
        if i + 1 in slots and n_cold:
            at = np.minimum(next_cold, n_cold - 1)
            take_cold = (
                (next_cold < n_cold)
                & (cold_titles[rows, at] >= 0)
                & (cold_scores[rows, at] >= min_similarity)
            )
        at_warm = np.minimum(next_warm, n - 1)
        warm_title = np.where(next_warm < n, warm_titles[rows, at_warm], -1)
        warm_score = np.where(next_warm < n, warm_scores[rows, at_warm], np.nan)
        if n_cold:
            at_cold = np.minimum(next_cold, n_cold - 1)
            titles[:, i] = np.where(take_cold, cold_titles[rows, at_cold], warm_title)
            scores[:, i] = np.where(take_cold, cold_scores[rows, at_cold], warm_score)
        else:
            titles[:, i], scores[:, i] = warm_title, warm_score
        from_cold[:, i] = take_cold
        next_cold += take_cold
        next_warm += ~take_cold
    order = np.argsort(titles < 0, axis=1, kind="stable")
    return (
        np.take_along_axis(titles, order, axis=1),
        np.take_along_axis(scores, order, axis=1),
        np.take_along_axis(from_cold, order, axis=1),
    )
