"""Generated ratings with edge cases and the brute-force (pure Python sets) Jaccard reference."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from anime_recs.tables import ANIME_PAIR_JACCARD_SCHEMA, ANIME_SCHEMA
from tests.helpers import load_job


def make_ratings(
    seed: int = 1, n_users: int = 120, n_titles: int = 60
) -> list[tuple[int, int, int, str]]:
    """Ratings ``(user_id, anime_id, rating, split)`` with a popularity skew and edge cases.

    Ids are sparse and unordered (``anime_id = 7 * k + 3``, shuffled user ids); included:
    titles whose only 9-10 ratings are in the test split (0 promoters), titles rated below 9
    only, users with exactly one promoted title, and one user promoting half of all titles.
    """
    rng = random.Random(seed)
    titles = [7 * k + 3 for k in range(n_titles)]
    weights = [1.0 / (k + 2) for k in range(n_titles)]
    users = rng.sample(range(1000, 1000 + 50 * n_users), n_users)
    rows: dict[tuple[int, int], tuple[int, str]] = {}
    for u in users:
        for t in set(rng.choices(titles, weights=weights, k=rng.randint(1, 12))):
            rows[(u, t)] = (rng.choice([5, 7, 8, 9, 9, 10, 10]), "train")
    # a heavy user promoting half of the titles
    for t in titles[: n_titles // 2]:
        rows[(users[0], t)] = (10, "train")
    # users with exactly one promoter rating
    for i, u in enumerate(range(900, 905)):
        rows[(u, titles[i])] = (9, "train")
    # only test-split promoters and only low ratings: titles with 0 promoters
    rows[(901, 5000)] = (10, "test")
    rows[(902, 5007)] = (4, "train")
    # test-split promoters never count
    for u in users[:10]:
        rows.setdefault((u, titles[-1]), (10, "test"))
    return [(u, t, r, s) for (u, t), (r, s) in sorted(rows.items())]


def brute_force_pairs(
    rows: Iterable[tuple[int, int, int, str]], min_intersection: int = 1
) -> list[tuple[int, int, int, int, int, int, float]]:
    """Every pair with its promoter counts and Jaccard, from Python sets.

    Candidate pairs come from each user's promoted titles (pairs sharing no promoter have
    intersection 0 and are never kept); intersection and union are then taken from the sets.
    """
    promoters: dict[int, set[int]] = defaultdict(set)
    promoted: dict[int, set[int]] = defaultdict(set)
    for user, anime, rating, split in rows:
        if split == "train" and rating >= 9:
            promoters[anime].add(user)
            promoted[user].add(anime)
    candidates = set()
    for titles in promoted.values():
        candidates.update(itertools.combinations(sorted(titles), 2))
    out = []
    for a, b in sorted(candidates):
        inter = len(promoters[a] & promoters[b])
        union = len(promoters[a] | promoters[b])
        if inter >= min_intersection:
            out.append((a, b, len(promoters[a]), len(promoters[b]), inter, union, inter / union))
    return out


def expected_pairs_df(spark, rows, min_intersection: int = 1):
    return spark.createDataFrame(
        brute_force_pairs(rows, min_intersection), ANIME_PAIR_JACCARD_SCHEMA
    )


def anime_rows(anime_ids: Iterable[int], without_description: Iterable[int] = ()) -> list[tuple]:
    """Minimal ``anime`` rows (ANIME_SCHEMA): id, name, description flag, other columns null."""
    skip = set(without_description)
    rows = []
    for a in sorted(set(anime_ids)):
        values = {
            "anime_id": a,
            "name": f"title {a}",
            "has_description": a not in skip,
            "description_source": "synopsis",
        }
        if a not in skip:
            values["description"] = f"about {a}"
        rows.append(tuple(values.get(f.name) for f in ANIME_SCHEMA.fields))
    return rows


REPO_ROOT = Path(__file__).resolve().parents[2]


def run_job(spark, lake: str, ratings, anime, overrides: list[str]) -> None:
    """Write the input tables (when given) and run the job's ``main`` against ``lake``."""
    from anime_recs.lakehouse import write_table
    from anime_recs.tables import ANIME, RATINGS, RATINGS_SCHEMA

    if ratings is not None:
        write_table(ratings, lake, RATINGS, RATINGS_SCHEMA)
    if anime is not None:
        write_table(anime, lake, ANIME, ANIME_SCHEMA)
    argv = ["--conf", str(REPO_ROOT / "conf" / "local.yaml"), "--set", f"paths.lake={lake}"]
    argv += ["--set", "spark.shuffle_partitions=2"]
    for item in overrides:
        argv += ["--set", item]
    assert load_job("jaccard").main(argv) == 0
