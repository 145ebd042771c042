"""Served lists on a hand-computed example: seeds, reasons, exclusions, fallback, ties."""

import numpy as np
import pandas as pd

from anime_recs.serve.lists import (
    MODEL,
    POPULARITY_FALLBACK,
    build_serve_model,
    serve_chunk,
)

ANIME = pd.DataFrame({"anime_id": [50, 10, 30, 20, 40], "name": ["E", "A", "C", "B", "D"]})
# neighbours (k = 2): 10 -> 20 .9, 30 .5 | 20 -> 30 .8, 10 .7 | 40 -> 30 .6, 50 .4
#                     50 -> 10 .5, 20 .5 (a tie)
NEIGHBORS = pd.DataFrame(
    [
        (10, 20, 1, 0.9),
        (10, 30, 2, 0.5),
        (20, 30, 1, 0.8),
        (20, 10, 2, 0.7),
        (40, 30, 1, 0.6),
        (40, 50, 2, 0.4),
        (50, 10, 1, 0.5),
        (50, 20, 2, 0.5),
    ],
    columns=["anime_id", "neighbor_id", "rank", "similarity"],
)
PROMOTERS = pd.DataFrame({"anime_id": [50, 40, 30, 20], "promoters": [5, 4, 3, 2]})  # 10: none

# (user, anime, rating, is_rated): rating 0 + is_rated False = a watching-status entry
ROWS = [
    (1, 10, 9, True),
    (1, 20, 5, True),
    (1, 40, 10, True),
    (1, 50, 0, False),
    (2, 20, 3, True),
    (3, 30, 0, False),  # watching only: not served
    (4, 20, 10, True),
    (5, 50, 9, True),
    (6, 10, 10, True),
    (6, 20, 9, True),
]


def served(neighbors, n=3, k=2):
    model = build_serve_model(ANIME, neighbors, PROMOTERS, k)
    u, a, r, rated = (np.array(c) for c in zip(*ROWS, strict=True))
    table = serve_chunk(u, a, r, rated, model, n, k, 0.05)
    out = {}
    for row in table.to_pylist():
        out.setdefault(row["user_id"], []).append(
            (
                row["rank"],
                row["anime_id"],
                row["name"],
                round(row["score"], 9),
                row["source"],
                row["because"],
            )
        )
    return out


def test_model_lists_reasons_exclusions_and_fallback():
    got = served(NEIGHBORS)
    assert sorted(got) == [1, 2, 4, 5, 6]  # user 3 has no rating
    # user 1 saw 10, 20, 40 (rated) and 50 (watching): 30 is reached from 40 (.6) and 10 (.5):
    # 0.6 + 0.05 x (2 - 1); nothing unseen is left to fill with
    assert got[1] == [(1, 30, "C", 0.65, MODEL, [40, 10])]
    # user 2 promoted nothing: popularity minus 20
    assert got[2] == [
        (1, 50, "E", 5.0, POPULARITY_FALLBACK, []),
        (2, 40, "D", 4.0, POPULARITY_FALLBACK, []),
        (3, 30, "C", 3.0, POPULARITY_FALLBACK, []),
    ]
    # user 4: 20's neighbours, then the most popular title not seen nor listed
    assert got[4] == [
        (1, 30, "C", 0.8, MODEL, [20]),
        (2, 10, "A", 0.7, MODEL, [20]),
        (3, 50, "E", 5.0, POPULARITY_FALLBACK, []),
    ]
    # user 5: a tie between 10 and 20 (0.5 each) goes to the smaller anime_id
    assert got[5][:2] == [(1, 10, "A", 0.5, MODEL, [50]), (2, 20, "B", 0.5, MODEL, [50])]
    assert got[5][2] == (3, 40, "D", 4.0, POPULARITY_FALLBACK, [])
    # user 6: 30 is reached from 20 (.8) and 10 (.5): reasons best first, not by id
    assert got[6][0] == (1, 30, "C", 0.85, MODEL, [20, 10])


def test_popularity_recommender_rows_are_model_rows():
    got = served(None)
    assert got[4] == [
        (1, 50, "E", 5.0, MODEL, []),
        (2, 40, "D", 4.0, MODEL, []),
        (3, 30, "C", 3.0, MODEL, []),
    ]
    # titles nobody rated close the list (promoters 0), and only seen titles are left out
    assert [r[1] for r in got[1]] == [30]
    assert [r[1] for r in served(None, n=5)[2]] == [50, 40, 30, 10]


def test_at_most_three_reasons_and_n_cut():
    # four seeds all leading to 30 with different similarities
    neighbors = pd.DataFrame(
        [(a, 30, 1, s) for a, s in ((10, 0.2), (20, 0.4), (40, 0.3), (50, 0.1))],
        columns=["anime_id", "neighbor_id", "rank", "similarity"],
    )
    model = build_serve_model(ANIME, neighbors, PROMOTERS, 1)
    ids = np.array([10, 20, 40, 50])
    rated = np.ones(4, bool)
    table = serve_chunk(np.full(4, 7), ids, np.full(4, 10), rated, model, 1, 1, 0.05)
    assert table.to_pylist() == [
        {
            "user_id": 7,
            "rank": 1,
            "anime_id": 30,
            "name": "C",
            "score": 0.4 + 0.05 * 3,
            "source": MODEL,
            "because": [20, 40, 10],
        }
    ]


def test_ease_lists_with_a_cold_slot_and_their_reasons():
    from anime_recs.recommend.peers import DenseModel
    from anime_recs.serve.lists import ServedParts

    # EASE weights over the warm titles 10, 20, 30 (rows: promoted title, columns: scored)
    weights = np.array([[0.0, 0.6, 0.2], [0.3, 0.0, 0.1], [0.5, -0.2, 0.0]], np.float32)
    ease = DenseModel(titles=np.array([10, 20, 30]), item_weights=weights)
    # 40 and 50 are cold: 40 is the content neighbour of 10 (.7), 50 of 20 (.3)
    cold = pd.DataFrame(
        [(10, 40, 1, 0.7), (20, 50, 1, 0.3)],
        columns=["anime_id", "neighbor_id", "rank", "similarity"],
    )
    parts = ServedParts(dense=ease, cold_neighbors=cold, cold_slots=(1,), min_similarity=0.5)
    model = build_serve_model(ANIME, None, PROMOTERS, 2, parts)
    # user 7 promoted 10 and 30: scores 20 -> 0.6 - 0.2 = 0.4; slot 1 takes 40 (0.7 >= 0.5)
    # user 8 promoted 20: 10 -> 0.3, 30 -> 0.1; 50's similarity 0.3 is below: no cold title
    u = np.array([7, 7, 8])
    a = np.array([10, 30, 20])
    table = serve_chunk(u, a, np.array([9, 10, 9]), np.ones(3, bool), model, 3, 2, 0)
    rows = [
        (r["user_id"], r["anime_id"], round(r["score"], 6), r["because"]) for r in table.to_pylist()
    ]
    assert rows[:2] == [(7, 40, 0.7, [10]), (7, 20, 0.4, [10])]
    assert rows[3:5] == [(8, 10, 0.3, [20]), (8, 30, 0.1, [20])]
    # the rest is the popularity fallback (50 first: 5 promoters)
    assert rows[2][:2] == (7, 50) and rows[5][:2] == (8, 50)
