"""A tiny seeded synthetic lake for the recommend tests: ratings, embeddings, Jaccard pairs.

Built with pandas/numpy only (no project code), written to Delta by the tests.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd


def synthetic_tables(
    n_users: int = 60,
    n_titles: int = 30,
    per_user: int = 12,
    dim: int = 6,
    seed: int = 5,
    cold_titles: int = 3,
) -> dict[str, pd.DataFrame]:
    """Ratings (the last ``cold_titles`` titles by id held out whole: every rating of them in
    test), two embedders' vectors of every title and the promoter Jaccard of the train pairs."""
    rng = np.random.default_rng(seed)
    anime_ids = np.sort(rng.choice(np.arange(1, 500), size=n_titles, replace=False))
    popularity = rng.dirichlet(np.full(n_titles, 0.7))
    rows = []
    for user in range(1, n_users + 1):
        size = int(rng.integers(3, per_user + 1))
        titles = rng.choice(anime_ids, size=size, replace=False, p=popularity)
        for title in titles:
            rating = int(rng.choice(np.arange(1, 11), p=_RATING_P))
            split = "test" if rng.random() < 0.25 else "train"
            rows.append((user, int(title), rating, split))
    # a user who rated all titles but one in train (short lists), one without promoted train
    # titles, one without test ratings
    heavy = n_users + 1
    rows += [(heavy, int(t), 9 if i % 2 else 6, "train") for i, t in enumerate(anime_ids[:-1])]
    rows += [(heavy, int(anime_ids[-1]), 10, "test")]
    rows += [
        (n_users + 2, int(anime_ids[1]), 5, "train"),
        (n_users + 2, int(anime_ids[2]), 9, "test"),
    ]
    rows += [(n_users + 3, int(anime_ids[3]), 10, "train")]
    ratings = pd.DataFrame(rows, columns=["user_id", "anime_id", "rating", "split"])
    cold = ratings["anime_id"].isin(anime_ids[n_titles - cold_titles :])
    ratings.loc[cold, "split"] = "test"

    embeddings = []
    for name in ("emb_a", "emb_b"):
        vectors = rng.normal(size=(n_titles, dim))
        vectors[5] = vectors[4]  # equal vectors: exact ties, decided by the smaller anime_id
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        for title, vector in zip(anime_ids, vectors, strict=True):
            embeddings.append((name, int(title), vector.astype(np.float32).tolist()))
    embeddings = pd.DataFrame(embeddings, columns=["embedder", "anime_id", "embedding"])
    embeddings["dim"] = dim
    embeddings["model"] = embeddings["embedder"]
    embeddings["model_version"] = None
    embeddings["text_hash"] = "h"

    train = ratings[(ratings["split"] == "train") & (ratings["rating"] >= 9)]
    fans = train.groupby("anime_id")["user_id"].apply(set).to_dict()
    pairs = []
    for a, b in itertools.combinations(sorted(fans), 2):
        inter = len(fans[a] & fans[b])
        if inter:
            union = len(fans[a] | fans[b])
            pairs.append((a, b, len(fans[a]), len(fans[b]), inter, union, inter / union))
    pairs = pd.DataFrame(
        pairs,
        columns=[
            "anime_a",
            "anime_b",
            "promoters_a",
            "promoters_b",
            "intersection",
            "union",
            "jaccard",
        ],
    )
    return {"ratings": ratings, "anime_embeddings": embeddings, "anime_pair_jaccard": pairs}


_RATING_P = np.array([1, 1, 2, 3, 5, 8, 14, 17, 14, 10], dtype=float)
_RATING_P /= _RATING_P.sum()
