"""The recommender registry: a toy recommender added by one :func:`register` call and its fit
function is checked in the config, fitted, scored, evaluated and served like the built-in
ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from anime_recs import tables
from anime_recs.config import ConfigError, load_config
from anime_recs.evaluation.evaluate import evaluation_table, flat_lists
from anime_recs.recommend.fitting import recommender_models
from anime_recs.recommend.peers import DenseModel
from anime_recs.recommend.popularity import promoter_counts
from anime_recs.recommend.registry import (
    REGISTRY,
    FitInputs,
    Kind,
    Need,
    Recommender,
    check_config,
    declaration,
    register,
)
from anime_recs.recommend.scoring import build_model, score_users
from anime_recs.recommend.stage import choose_recommenders, evaluated_lists, fitted_recommenders
from anime_recs.serve.lists import MODEL, POPULARITY_FALLBACK, build_serve_model, serve_chunk
from anime_recs.serve.run import (
    lake_recommenders,
    model_version_label,
    neighbour_table,
    served_parts,
)

LOCAL = str(Path(__file__).resolve().parents[2] / "conf" / "local.yaml")
NEWEST = "newest"
K, N_MAX = 2, 3


def fit_newest(name: str, inputs: FitInputs) -> DenseModel:
    """Every title rated in train, each scored by its id over the largest (the newest titles
    score highest) from every promoted title: a user's list is the newest titles not seen."""
    rows = inputs.train.select("anime_id").distinct().collect()
    titles = np.sort(np.array([r.anime_id for r in rows], dtype=np.int64))
    weights = np.tile((titles / titles.max()).astype(np.float32), (titles.size, 1))
    return DenseModel(titles=titles, item_weights=weights)


@pytest.fixture()
def newest():
    declared = register(Recommender(NEWEST, Kind.DENSE, frozenset({Need.RATINGS}), fit_newest))
    yield declared
    del REGISTRY[NEWEST]


# titles 10..50 have train ratings; 60 only a test one (cold)
# user 1: promoted 10, rated 20; tests 60 (cold) and 30 | user 2: promoted 30; test 50
# user 3: promoted 40, rated 50; test 10 | user 4: no promoted title (no test user); test 60
RATINGS = pd.DataFrame(
    [
        (1, 10, 9, "train"),
        (1, 20, 5, "train"),
        (1, 60, 10, "test"),
        (1, 30, 8, "test"),
        (2, 30, 10, "train"),
        (2, 50, 9, "test"),
        (3, 40, 9, "train"),
        (3, 50, 7, "train"),
        (3, 10, 3, "test"),
        (4, 20, 6, "train"),
        (4, 60, 9, "test"),
    ],
    columns=["user_id", "anime_id", "rating", "split"],
)
ANIME = pd.DataFrame({"anime_id": [10, 20, 30, 40, 50, 60], "name": list("ABCDEF")})
# the newest unseen train titles, each scored id / 50 per promoted title in the model
EXPECTED = {1: [50, 40, 30], 2: [50, 40, 20], 3: [30, 20, 10]}


def config(*sets: str):
    return load_config(LOCAL, [f"recommend.k={K}", f"recommend.n_max={N_MAX}", *sets])


def test_register_refuses_a_taken_name_and_a_kind_without_its_fit():
    with pytest.raises(ValueError, match="already registered"):
        register(Recommender("ease", Kind.DENSE, frozenset({Need.RATINGS}), fit_newest))
    with pytest.raises(ValueError, match="needs a fit function"):
        register(Recommender("x", Kind.DENSE, frozenset({Need.RATINGS})))
    assert "x" not in REGISTRY


def test_embedders_are_a_family_of_neighbour_recommenders():
    got = declaration("emb", ["emb"])
    assert got.kind is Kind.NEIGHBOURS and got.reaches_cold and got.needs == {Need.VECTORS}
    assert not got.collaborative and declaration("jaccard_cf", ["emb"]).collaborative
    with pytest.raises(KeyError, match="'nope'"):
        declaration("nope", ["emb"])


def test_config_check_knows_registered_recommenders(newest):
    sets = [f"recommend.recommenders=[{NEWEST}]", f"serve.recommender={NEWEST}"]
    check_config(config(*sets, f"recommend.hybrid.collaborative={NEWEST}"))
    del REGISTRY[NEWEST]
    try:
        with pytest.raises(ConfigError, match=r"^recommend\.recommenders: unknown recommender"):
            check_config(config(*sets))
    finally:
        REGISTRY[NEWEST] = newest
    with pytest.raises(ConfigError, match=r"^serve\.recommender: unknown recommender 'nosuch'"):
        check_config(config("serve.recommender=nosuch"))
    with pytest.raises(ConfigError, match=r"^recommend\.hybrid\.collaborative: 'popularity'"):
        check_config(config("recommend.hybrid.collaborative=popularity"))


def test_a_registered_recommender_is_evaluated(spark, newest):
    rc = config().recommend
    default = choose_recommenders([], [], None)  # no vectors: no embedder, no hybrid
    assert [r.name for r in default] == ["jaccard_cf", "ease", "als", "popularity", NEWEST]
    chosen = choose_recommenders([NEWEST, "popularity"], [], None)
    ratings = spark.createDataFrame(RATINGS)
    train = ratings.filter(ratings.split == tables.TRAIN)
    promoters = promoter_counts(ratings).toPandas()
    warm = np.sort(promoters["anime_id"].to_numpy(np.int64))
    fitted = fitted_recommenders(chosen, rc, [])
    views, dense = recommender_models(fitted, rc, warm, train, None, lambda name: None)
    assert list(dense) == [NEWEST] and not views
    lists = evaluated_lists(chosen)
    assert lists == [
        (NEWEST, "all"),
        (NEWEST, "warm"),
        ("popularity", "all"),
        ("popularity", "warm"),
    ]
    model = build_model(lists, views, promoters, K, dense)
    scored = score_users(spark, ratings, model, K, N_MAX, 0.0, partitions=2).cache()

    rows = scored.filter(scored.recommender == NEWEST).toPandas()
    assert {(r.view, r.user_id): list(r.anime_ids) for r in rows.itertuples()} == {
        ("all", 1): EXPECTED[1],
        ("all", 2): EXPECTED[2],
        ("all", 3): EXPECTED[3],
        ("warm", 1): EXPECTED[1],
        ("warm", 2): EXPECTED[2],
        ("warm", 3): EXPECTED[3],
    }
    first = rows[(rows.view == "all") & (rows.user_id == 1)].iloc[0]
    assert list(first.scores) == pytest.approx([1.0, 0.8, 0.6])
    assert list(first.test_ratings) == [0, 0, 8]  # 30 rated 8 in test

    by_view = {view: [n for n, v in lists if v == view] for view in ("all", "warm")}
    flat = flat_lists(scored, N_MAX).toPandas()
    evaluation = evaluation_table(flat, N_MAX, by_view, np.array([60]), 0, 1)
    mine = evaluation[evaluation["recommender"] == NEWEST]
    assert sorted(set(zip(mine["view"], mine["n"], strict=True))) == [
        (view, n) for view in ("all", "warm") for n in range(1, N_MAX + 1)
    ]
    hits = mine[mine["view"] == "all"].set_index("n")["hits"]
    assert hits.to_dict() == {1: 1, 2: 1, 3: 3}  # user 2's 50 first; 1's 30 and 3's 10 third
    assert set(mine["users_total"]) == {3}


def test_a_registered_recommender_is_served(spark, newest, tmp_path):
    rc = config().recommend
    lake = str(tmp_path / "lake")
    assert NEWEST in lake_recommenders(spark, lake)
    assert neighbour_table(NEWEST, rc) is None and neighbour_table("jaccard_cf", rc) == "jaccard_cf"
    label = model_version_label(spark, lake, NEWEST, {tables.RATINGS: "digest"}, None)
    assert label.startswith(f"{tables.RATINGS}:")

    ratings = spark.createDataFrame(RATINGS)
    parts = served_parts(spark, lake, [NEWEST, "popularity"], rc, ratings, {})
    assert list(parts) == [NEWEST]
    promoters = promoter_counts(ratings, split=None).toPandas()
    model = build_serve_model(ANIME, None, promoters, K, parts[NEWEST])
    r = RATINGS.sort_values("user_id", kind="stable")
    table = serve_chunk(
        r["user_id"].to_numpy(),
        r["anime_id"].to_numpy(),
        r["rating"].to_numpy(),
        np.ones(len(r), bool),
        model,
        3,
        K,
        0.0,
    )
    first = [row for row in table.to_pylist() if row["user_id"] == 1]
    # seen (any split): 10, 20, 30, 60; the model's 50, 40 (because of the promoted 10), then
    # the popularity fallback has nothing unseen left
    assert [(x["anime_id"], x["source"], x["because"]) for x in first] == [
        (50, MODEL, [10]),
        (40, MODEL, [10]),
    ]
    fourth = [row for row in table.to_pylist() if row["user_id"] == 4]
    # user 4 promoted 60 (test), outside the model: the popularity fallback only
    assert {x["source"] for x in fourth} == {POPULARITY_FALLBACK}
