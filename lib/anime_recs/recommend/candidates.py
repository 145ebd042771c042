"""Candidates from a user's promoted titles, their scores and the ranked top-N lists.

Everything here is numpy over many users at once (a chunk of users, ``u`` = 0..n_users-1);
titles are indexes into a sorted ``anime_id`` universe, so ordering by index is ordering by
``anime_id`` and "ties by smaller anime_id" is "ties by smaller index".
"""

from __future__ import annotations

import numpy as np


def aggregate_scores(
    max_similarity: np.ndarray, occurrences: np.ndarray, frequency_bonus: float
) -> np.ndarray:
    """Score of a candidate reached through ``occurrences`` promoted titles, the best at
    ``max_similarity``: ``max_similarity + frequency_bonus x (occurrences - 1)``."""
    return np.asarray(max_similarity, dtype=np.float64) + frequency_bonus * (
        np.asarray(occurrences) - 1
    )


def contains(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Boolean mask: which ``keys`` occur in the sorted array ``sorted_keys``."""
    if sorted_keys.size == 0:
        return np.zeros(np.shape(keys), dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
    return sorted_keys[pos] == keys


def top_n(
    user: np.ndarray,
    title: np.ndarray,
    score: np.ndarray,
    n_users: int,
    n_max: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per user, the ``n_max`` best (title, score) rows: score desc, then smaller title.

    Returns ``[n_users, n_max]`` title indexes (-1 = none) and scores (NaN = none).
    """
    titles = np.full((n_users, n_max), -1, dtype=np.int64)
    scores = np.full((n_users, n_max), np.nan)
    if user.size == 0:
        return titles, scores
    order = np.lexsort((title, -score, user))
    user, title, score = user[order], title[order], score[order]
    first = np.searchsorted(user, np.arange(n_users))
    pos = np.arange(user.size) - first[user]
    keep = pos < n_max
    titles[user[keep], pos[keep]] = title[keep]
    scores[user[keep], pos[keep]] = score[keep]
    return titles, scores


def candidate_rows(
    promoted_user: np.ndarray,
    promoted_title: np.ndarray,
    excluded_keys: np.ndarray,
    neighbor_index: np.ndarray,
    neighbor_similarity: np.ndarray,
    k: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (user, candidate) a promoted title leads to: ``(key, similarity, seed)``.

    Candidates of user ``u``: the top-``k`` neighbours (``neighbor_index[p, :k]``, -1 = none)
    of each promoted title ``p`` of ``u``, minus the titles in ``excluded_keys`` (sorted
    ``u * n_titles + title``). ``key = u * n_titles + candidate``; ``seed`` is ``p``, the
    promoted title that led to the candidate. One row per (promoted title, candidate).
    """
    n_titles = neighbor_index.shape[0]
    kk = min(k, neighbor_index.shape[1])
    promoted_title = np.asarray(promoted_title, dtype=np.int64)
    cand = neighbor_index[promoted_title, :kk].ravel().astype(np.int64)
    sim = neighbor_similarity[promoted_title, :kk].ravel()
    user = np.repeat(np.asarray(promoted_user, dtype=np.int64), kk)
    seed = np.repeat(promoted_title, kk)
    key = user * n_titles + cand
    keep = (cand >= 0) & ~contains(excluded_keys, key)
    return key[keep], sim[keep], seed[keep]


def ranked_candidates(
    key: np.ndarray,
    sim: np.ndarray,
    n_titles: int,
    n_users: int,
    n_max: int,
    frequency_bonus: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Aggregate :func:`candidate_rows` per (user, candidate) with :func:`aggregate_scores`
    and rank them with :func:`top_n`: ``[n_users, n_max]`` title indexes and scores."""
    if key.size == 0:
        return top_n(key, key, sim, n_users, n_max)
    order = np.lexsort((-sim, key))
    key, sim = key[order], sim[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    occurrences = np.diff(np.r_[starts, key.size])
    score = aggregate_scores(sim[starts], occurrences, frequency_bonus)
    group_key = key[starts]
    return top_n(group_key // n_titles, group_key % n_titles, score, n_users, n_max)


def candidate_lists(
    promoted_user: np.ndarray,
    promoted_title: np.ndarray,
    train_keys: np.ndarray,
    neighbor_index: np.ndarray,
    neighbor_similarity: np.ndarray,
    k: int,
    n_users: int,
    n_max: int,
    frequency_bonus: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Ranked recommendation lists of a recommender for a chunk of users.

    Candidates of user ``u``: the top-``k`` neighbours of each promoted title of ``u`` minus
    every title ``u`` rated in train (``train_keys`` = sorted ``u * n_titles + title``), see
    :func:`candidate_rows`; aggregated and ranked by :func:`ranked_candidates`.
    """
    key, sim, _ = candidate_rows(
        promoted_user, promoted_title, train_keys, neighbor_index, neighbor_similarity, k
    )
    n_titles = neighbor_index.shape[0]
    return ranked_candidates(key, sim, n_titles, n_users, n_max, frequency_bonus)


def candidate_reasons(
    key: np.ndarray,
    sim: np.ndarray,
    seed: np.ndarray,
    titles: np.ndarray,
    n_titles: int,
    max_reasons: int = 3,
) -> np.ndarray:
    """Why each listed title was recommended: the seeds that led to it, best first.

    ``key, sim, seed`` are :func:`candidate_rows`; ``titles`` the ``[n_users, n_max]`` lists
    (-1 = none). Returns ``[n_users, n_max, max_reasons]`` seed title indexes (-1 = none),
    per listed title the promoted titles that have it among their neighbours, by similarity
    descending, ties by the smaller seed (smaller ``anime_id``).
    """
    n_users, n_max = titles.shape
    out = np.full((n_users, n_max, max_reasons), -1, dtype=np.int64)
    listed = titles >= 0
    if key.size == 0 or not listed.any():
        return out
    listed_user, listed_pos = np.nonzero(listed)
    listed_key = listed_user * n_titles + titles[listed]
    order = np.argsort(listed_key)
    listed_key, listed_user, listed_pos = (
        listed_key[order],
        listed_user[order],
        listed_pos[order],
    )
    keep = contains(listed_key, key)
    key, sim, seed = key[keep], sim[keep], seed[keep]
    if key.size == 0:
        return out
    order = np.lexsort((seed, -sim, key))
    key, seed = key[order], seed[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    within = np.arange(key.size) - np.repeat(starts, np.diff(np.r_[starts, key.size]))
    keep = within < max_reasons
    key, seed, within = key[keep], seed[keep], within[keep]
    at = np.searchsorted(listed_key, key)
    out[listed_user[at], listed_pos[at], within] = seed
    return out
