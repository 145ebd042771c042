"""The served lists, in numpy over a chunk of whole users: model titles, reasons, fallback.

For every user with at least one rating (any split) the list has ``n`` titles when that many
unseen titles exist:

1. the recommender's list, made as the evaluated lists are made but from the user's whole
   history (rating >= 9 in any split promoted, every seen title excluded): a neighbour
   recommender's candidates (:mod:`anime_recs.recommend.candidates`), a peer's best scored
   titles (:mod:`anime_recs.recommend.peers`), or the hybrid's collaborative list with new
   titles in its cold slots (:mod:`anime_recs.recommend.hybrid`); ``source = model``,
   ``because`` = the promoted titles that led to the title (a neighbour's seeds; for EASE the
   promoted titles of largest positive weight toward it), best first, ties by smaller
   ``anime_id``, at most :data:`MAX_REASONS`;
2. when they run out (or the user promoted nothing), the popularity list (promoters over all
   ratings, ties by smaller ``anime_id``, then every other title of ``anime`` by
   ``anime_id``) minus the titles already listed, ``source = popularity_fallback``, empty
   ``because``, ``score`` = the title's promoter count.

Seen titles (rated in any split, or in any watching status) are never listed. The
``popularity`` recommender is the popularity list itself: all its rows are ``model`` rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pyarrow as pa

from anime_recs.recommend.candidates import (
    candidate_reasons,
    candidate_rows,
    ranked_candidates,
)
from anime_recs.recommend.hybrid import merge_cold_slots
from anime_recs.recommend.neighbors import neighbor_arrays
from anime_recs.recommend.peers import DenseModel, dense_scores
from anime_recs.recommend.popularity import (
    popularity_lists,
    popularity_order,
)
from anime_recs.recommend.scoring import dense_lists
from anime_recs.tables import PROMOTER_MIN_RATING

log = logging.getLogger(__name__)

MODEL = "model"
POPULARITY_FALLBACK = "popularity_fallback"
MAX_REASONS = 3
SERVED_COLUMNS = ("user_id", "rank", "anime_id", "name", "score", "source", "because")
SERVED_DDL = (
    "user_id int, rank int, anime_id int, name string, score double, source string, "
    "because array<int>"
)


@dataclass
class ServeModel:
    """What serving a chunk needs: titles, their names, one recommender's neighbours, the
    popularity list.

    ``universe``: sorted ``anime_id`` of every servable title, ``names`` aligned with it;
    ``neighbors``: ``(index [T, k], similarity [T, k])`` into ``universe`` (-1 = none), None
    for the popularity recommender; ``pop_titles``: universe indexes in popularity order,
    ``pop_scores`` their promoter counts, ``pop_position`` each title's position in it.
    """

    universe: np.ndarray
    names: np.ndarray
    neighbors: tuple[np.ndarray, np.ndarray] | None
    pop_titles: np.ndarray
    pop_scores: np.ndarray
    pop_position: np.ndarray
    dense: DenseModel | None = None
    dense_index: np.ndarray | None = None
    cold: tuple[np.ndarray, np.ndarray] | None = None
    cold_slots: tuple[int, ...] = ()
    min_similarity: float = 0.0


@dataclass(frozen=True)
class ServedParts:
    """What a recommender that is not one neighbour table lists from: a dense model
    (``ease``, ``als``, or the hybrid's collaborative side when it is one) and, for the
    ``hybrid``, its content side's neighbours among the cold titles with its cold slots."""

    dense: DenseModel | None = None
    cold_neighbors: pd.DataFrame | None = None
    cold_slots: tuple[int, ...] = ()
    min_similarity: float = 0.0


def build_serve_model(
    anime: pd.DataFrame,
    neighbors: pd.DataFrame | None,
    promoters: pd.DataFrame,
    k: int,
    parts: ServedParts | None = None,
) -> ServeModel:
    """A :class:`ServeModel` from ``anime`` (anime_id, name), one recommender's neighbour rows
    (anime_id, neighbor_id, rank, similarity; None = popularity) and promoter counts
    (anime_id, promoters) over all ratings.

    Every title of ``anime`` is servable; neighbour rows naming a title outside ``anime`` are
    dropped (logged). Titles without promoter counts have 0 promoters.
    """
    order = np.argsort(anime["anime_id"].to_numpy(dtype=np.int64), kind="stable")
    universe = anime["anime_id"].to_numpy(dtype=np.int64)[order]
    names = anime["name"].to_numpy(dtype=object)[order]
    if np.unique(universe).size != universe.size:
        raise ValueError("anime: anime_id must be unique")
    nb = None
    if neighbors is not None:
        inside = np.isin(neighbors["anime_id"].to_numpy(), universe) & np.isin(
            neighbors["neighbor_id"].to_numpy(), universe
        )
        if not inside.all():
            log.warning("dropped %d neighbour rows of titles not in anime", int((~inside).sum()))
        nb = neighbor_arrays(neighbors[inside], universe, k)
    counts = np.zeros(universe.size, dtype=np.float64)
    ids = promoters["anime_id"].to_numpy(dtype=np.int64)
    known = np.isin(ids, universe)
    counts[np.searchsorted(universe, ids[known])] = promoters["promoters"].to_numpy()[known]
    pop_titles = popularity_order(universe, counts)
    pop_position = np.empty(universe.size, dtype=np.int64)
    pop_position[pop_titles] = np.arange(universe.size)
    model = ServeModel(universe, names, nb, pop_titles, counts[pop_titles], pop_position)
    if parts is not None and parts.dense is not None:
        servable = np.isin(parts.dense.titles, universe)
        dense = parts.dense
        if not servable.all():  # a title outside anime: its column goes
            keep = np.flatnonzero(servable)
            dense = replace(
                dense,
                titles=dense.titles[keep],
                item_weights=None if dense.item_weights is None else dense.item_weights[:, keep],
                item_factors=None if dense.item_factors is None else dense.item_factors[keep],
            )
        model.dense = dense
        model.dense_index = np.searchsorted(universe, dense.titles)
    if parts is not None and parts.cold_neighbors is not None:
        cold = parts.cold_neighbors
        inside = np.isin(cold["anime_id"], universe) & np.isin(cold["neighbor_id"], universe)
        model.cold = neighbor_arrays(cold[inside], universe, k)
        model.cold_slots, model.min_similarity = parts.cold_slots, parts.min_similarity
    return model


def ease_reasons(
    model: ServeModel,
    promoted_user: np.ndarray,
    promoted_title: np.ndarray,
    titles: np.ndarray,
    n_titles: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`~anime_recs.recommend.candidates.candidate_rows`-shaped ``(key, sim, seed)`` rows
    for an EASE list: each listed title with each promoted title of its user whose weight
    toward it is positive (``sim`` = that weight), so the reasons are the promoted titles that
    contributed most to its score."""
    lookup = np.full(n_titles, -1, dtype=np.int64)
    lookup[model.dense_index] = np.arange(model.dense_index.size)
    local = lookup[promoted_title]
    order = np.argsort(promoted_user[local >= 0], kind="stable")
    p_user = promoted_user[local >= 0][order]
    p_title = promoted_title[local >= 0][order]
    p_local = local[local >= 0][order]
    listed_user, listed_pos = np.nonzero(titles >= 0)
    n_users = titles.shape[0]
    starts = np.searchsorted(p_user, np.arange(n_users))
    counts = np.diff(np.r_[starts, p_user.size])[listed_user]
    rows = np.repeat(np.arange(listed_user.size), counts)
    within = np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts)
    promoted_at = starts[listed_user[rows]] + within
    title = titles[listed_user[rows], listed_pos[rows]]
    sim = model.dense.item_weights[p_local[promoted_at], lookup[title]].astype(np.float64)
    keep = sim > 0
    key = listed_user[rows] * n_titles + title
    return key[keep], sim[keep], p_title[promoted_at][keep]


def user_index(user_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows grouped by user -> ``(distinct user ids, user index 0.. of each row)``."""
    n_rows = user_id.size
    if n_rows == 0:
        return user_id[:0], np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, user_id[1:] != user_id[:-1]])
    return user_id[starts], np.repeat(np.arange(starts.size), np.diff(np.r_[starts, n_rows]))


def fill_from_popularity(
    titles: np.ndarray,
    scores: np.ndarray,
    seen_user: np.ndarray,
    seen_title: np.ndarray,
    model: ServeModel,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Complete left-packed ``[n_users, n]`` lists (-1 = empty) from the popularity list.

    Skips the user's seen titles and the titles already listed. Returns the lists, their
    scores and a mask of the filled (fallback) entries.
    """
    n_users, n = titles.shape
    n_titles = model.universe.size
    listed = titles >= 0
    listed_user, _ = np.nonzero(listed)
    keys = np.unique(
        np.r_[seen_user * n_titles + seen_title, listed_user * n_titles + titles[listed]]
    )
    positions = popularity_lists(
        keys // n_titles, model.pop_position[keys % n_titles], n_users, n_titles, n
    )
    model_count = listed.sum(axis=1)
    slot = np.arange(n)[None, :] - model_count[:, None]
    fill_pos = np.where(slot >= 0, positions[np.arange(n_users)[:, None], np.maximum(slot, 0)], -1)
    filled = fill_pos >= 0
    out_titles = np.where(filled, model.pop_titles[np.maximum(fill_pos, 0)], titles)
    out_scores = np.where(filled, model.pop_scores[np.maximum(fill_pos, 0)], scores)
    return out_titles, out_scores, filled


def serve_chunk(
    user_id: np.ndarray,
    anime_id: np.ndarray,
    rating: np.ndarray,
    is_rated: np.ndarray,
    model: ServeModel,
    n: int,
    k: int,
    frequency_bonus: float,
) -> pa.Table:
    """The served rows (:data:`SERVED_COLUMNS`) of the whole users of a chunk.

    Input rows are grouped by user: ``is_rated`` rows are ratings (any split), the others are
    watching-status entries (seen, never a seed). Users without a rating are not served.
    """
    users, user = user_index(np.asarray(user_id))
    served = np.bincount(user[is_rated], minlength=users.size) > 0
    new_index = np.cumsum(served) - 1
    keep = served[user]
    users = users[served]
    user, anime_id = new_index[user[keep]], np.asarray(anime_id)[keep]
    rating, is_rated = np.asarray(rating)[keep], np.asarray(is_rated)[keep]
    n_users, n_titles = users.size, model.universe.size

    pos = np.minimum(np.searchsorted(model.universe, anime_id), max(n_titles - 1, 0))
    known = (model.universe[pos] == anime_id) if n_titles else np.zeros(user.size, bool)
    seen_user, seen_title = user[known], pos[known]
    titles = np.full((n_users, n), -1, dtype=np.int64)
    scores = np.full((n_users, n), np.nan)
    reasons = np.full((n_users, n, MAX_REASONS), -1, dtype=np.int64)
    promoted = known & is_rated & (rating >= PROMOTER_MIN_RATING)
    seen_keys = np.unique(seen_user * n_titles + seen_title)
    why: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    if model.dense is not None:
        dense = dense_scores(model.dense, users, user[promoted], anime_id[promoted], n_users)
        titles, scores = dense_lists(dense, model.dense_index, seen_keys, n_titles, n)
        if model.dense.item_weights is not None:
            why.append(ease_reasons(model, user[promoted], pos[promoted], titles, n_titles))
    elif model.neighbors is not None:
        nb_index, nb_sim = model.neighbors
        rows = candidate_rows(user[promoted], pos[promoted], seen_keys, nb_index, nb_sim, k)
        titles, scores = ranked_candidates(rows[0], rows[1], n_titles, n_users, n, frequency_bonus)
        why.append(rows)
    if model.cold is not None:
        rows = candidate_rows(user[promoted], pos[promoted], seen_keys, *model.cold, k)
        cold_titles, cold_scores = ranked_candidates(
            rows[0], rows[1], n_titles, n_users, n, frequency_bonus
        )
        titles, scores, _ = merge_cold_slots(
            titles, scores, cold_titles, cold_scores, model.cold_slots, model.min_similarity
        )
        why.append(rows)
    if why:
        key, sim, seed = (np.concatenate(parts) for parts in zip(*why, strict=True))
        reasons = candidate_reasons(key, sim, seed, titles, n_titles, MAX_REASONS)
    titles, scores, filled = fill_from_popularity(titles, scores, seen_user, seen_title, model)
    if model.neighbors is None and model.dense is None:  # popularity: its list is the model
        filled = np.zeros_like(filled)
    return served_table(users, titles, scores, filled, reasons, model)


def served_table(
    users: np.ndarray,
    titles: np.ndarray,
    scores: np.ndarray,
    filled: np.ndarray,
    reasons: np.ndarray,
    model: ServeModel,
) -> pa.Table:
    """Long rows (one per listed title, ``rank`` 1-based) from left-packed ``[n_users, n]``
    lists; fallback entries get no reasons."""
    valid = titles >= 0
    u, i = np.nonzero(valid)
    t = titles[valid]
    why = np.where(filled[valid][:, None], -1, reasons[valid])
    has = why >= 0
    offsets = np.r_[0, np.cumsum(has.sum(axis=1))].astype(np.int32)
    because = pa.ListArray.from_arrays(
        pa.array(offsets), pa.array(model.universe[why[has]], type=pa.int32())
    )
    source = np.where(filled[valid], POPULARITY_FALLBACK, MODEL).astype(object)
    return pa.Table.from_arrays(
        [
            pa.array(users[u], pa.int32()),
            pa.array(i + 1, pa.int32()),
            pa.array(model.universe[t], pa.int32()),
            pa.array(model.names[t], pa.string()),
            pa.array(scores[valid], pa.float64()),
            pa.array(source, pa.string()),
            because,
        ],
        names=list(SERVED_COLUMNS),
    )
