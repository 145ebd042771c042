"""Popularity baseline: order by promoters (ties by id), user's train titles excluded."""

from __future__ import annotations

import numpy as np

from anime_recs.recommend.popularity import popularity_lists, popularity_order


def test_popularity_order_ties_by_smaller_id():
    ids = np.array([7, 3, 5, 9])
    promoters = np.array([2, 5, 2, 0])
    assert ids[popularity_order(ids, promoters)].tolist() == [3, 5, 7, 9]


def test_popularity_lists_hand_example():
    # list positions 0..5; user 0 rated positions 0 and 2, user 1 nothing, user 2 all but 4
    user = np.array([0, 0, 2, 2, 2, 2, 2])
    rank = np.array([2, 0, 0, 1, 2, 3, 5])
    got = popularity_lists(user, rank, n_users=3, n_popular=6, n_max=3)
    assert got.tolist() == [[1, 3, 4], [0, 1, 2], [4, -1, -1]]


def test_popularity_lists_matches_brute_force():
    rng = np.random.default_rng(3)
    n_users, n_pop, n_max = 40, 25, 6
    user, rank = [], []
    for u in range(n_users):
        rated = rng.choice(n_pop, size=int(rng.integers(0, n_pop + 1)), replace=False)
        user += [u] * rated.size
        rank += rated.tolist()
    got = popularity_lists(np.array(user), np.array(rank), n_users, n_pop, n_max)
    for u in range(n_users):
        rated = {r for uu, r in zip(user, rank, strict=True) if uu == u}
        free = [p for p in range(n_pop) if p not in rated][:n_max]
        assert got[u].tolist() == free + [-1] * (n_max - len(free))
