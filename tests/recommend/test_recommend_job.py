"""jobs/recommend.py end to end on a synthetic lake, checked against a plain pandas/Python
computation of the same definitions (neighbours, EASE, lists per view, NPS@N, ranking
metrics)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from anime_recs import tables
from anime_recs.evaluation.bootstrap import bootstrap_ratio_ci
from anime_recs.evaluation.page import verdict
from anime_recs.lakehouse import read_table, write_table
from tests.helpers import HtmlPage, load_job
from tests.recommend.recsynth import synthetic_tables

REPO = Path(__file__).resolve().parents[2]
K, N_MAX, BONUS, SAMPLES, SEED = 3, 10, 0.05, 200, 11
HYBRID_CONTENT, COLD_SLOTS, MIN_SIMILARITY, DEPTH = "emb_a", [2, 5], -0.5, 20
EASE_L2 = 3.0
SCHEMAS = {
    tables.RATINGS: tables.RATINGS_SCHEMA,
    tables.ANIME_EMBEDDINGS: tables.ANIME_EMBEDDINGS_SCHEMA,
    tables.ANIME_PAIR_JACCARD: tables.ANIME_PAIR_JACCARD_SCHEMA,
}


def run_job(lake: str, tmp: Path) -> None:
    sets = {
        "paths.lake": lake,
        "paths.reports": str(tmp / "reports"),
        "mlflow.tracking_uri": (tmp / "mlruns").as_uri(),
        "mlflow.artifact_location": str(tmp / "mlartifacts"),
        "spark.shuffle_partitions": 2,
        "recommend.bootstrap_samples": SAMPLES,
        "recommend.seed": SEED,
        # the synthetic lake's embedder becomes the hybrid's content side
        "embed.embedders.emb_a": "{kind: sentence-transformers, model: unused}",
        "embed.embedders.emb_b": "{kind: sentence-transformers, model: unused}",
        "recommend.hybrid.content": HYBRID_CONTENT,
        "recommend.hybrid.collaborative": "ease",
        "recommend.hybrid.cold_slots": str(COLD_SLOTS),
        "recommend.hybrid.min_similarity": MIN_SIMILARITY,
        "recommend.ease.l2": EASE_L2,
        # ALS has its own test (tests/recommend/test_recommend_peers.py)
        "recommend.recommenders": "[emb_a, emb_b, jaccard_cf, hybrid, ease, popularity]",
    }
    argv = ["--conf", str(REPO / "conf" / "local.yaml")]
    for key, value in sets.items():
        argv += ["--set", f"{key}={value}"]
    assert load_job("recommend").main(argv) == 0


# ------------------------------------------------------------------------------------------
# independent, straightforward computation
# ------------------------------------------------------------------------------------------


def expected_neighbors(t: dict[str, pd.DataFrame], k: int = K) -> dict[str, dict[int, list]]:
    out: dict[str, dict[int, list]] = {}
    emb = t[tables.ANIME_EMBEDDINGS]
    for name, rows in emb.groupby("embedder"):
        vec = {
            int(a): np.asarray(v, dtype=np.float32).astype(float)
            for a, v in zip(rows["anime_id"], rows["embedding"], strict=True)
        }
        out[name] = {}
        for a, va in vec.items():
            sims = [
                (round(float(va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb))), 10), b)
                for b, vb in vec.items()
                if b != a
            ]
            out[name][a] = [(b, s) for s, b in sorted(sims, key=lambda x: (-x[0], x[1]))[:k]]
    partners = defaultdict(list)
    for r in t[tables.ANIME_PAIR_JACCARD].itertuples():
        partners[r.anime_a].append((r.jaccard, r.anime_b))
        partners[r.anime_b].append((r.jaccard, r.anime_a))
    out["jaccard_cf"] = {
        a: [(b, s) for s, b in sorted(p, key=lambda x: (-x[0], x[1]))[:k]]
        for a, p in partners.items()
    }
    return out


def expected_hybrid(warm: dict[int, list], cold: dict[int, list]) -> dict[int, list]:
    """Per user: walk the positions; a cold slot takes the next cold title whose similarity
    reaches the threshold, every other position the next warm title."""
    out = {}
    for u, warm_list in warm.items():
        w, c = list(warm_list), [(a, s) for a, s in cold.get(u, [])]
        merged = []
        for position in range(1, N_MAX + 1):
            if position in COLD_SLOTS and c and c[0][1] >= MIN_SIMILARITY:
                merged.append(c.pop(0))
            elif w:
                merged.append(w.pop(0))
        out[u] = merged
    return out


def among(neighbors: dict[int, list], allowed: set[int]) -> dict[int, list]:
    """Each title's first K neighbours of its deep list that are in ``allowed``."""
    return {a: [(b, s) for b, s in rows if b in allowed][:K] for a, rows in neighbors.items()}


def expected_ease(t: dict[str, pd.DataFrame]) -> tuple[list[int], np.ndarray]:
    """EASE written out: the Gram matrix of the promoted train ratings, B = I - P / diag(P)."""
    ratings = t[tables.RATINGS]
    liked = ratings[(ratings["split"] == "train") & (ratings["rating"] >= 9)]
    titles = sorted(liked["anime_id"].unique())
    x = np.zeros((liked["user_id"].nunique(), len(titles)))
    users = {u: i for i, u in enumerate(sorted(liked["user_id"].unique()))}
    for r in liked.itertuples():
        x[users[r.user_id], titles.index(r.anime_id)] = 1
    p = np.linalg.inv(x.T @ x + EASE_L2 * np.eye(len(titles)))
    b = np.eye(len(titles)) - p / np.diag(p)
    return titles, b


def expected_lists(t, neighbors, ease) -> tuple[list[int], dict[str, dict[int, list]]]:
    ratings = t[tables.RATINGS]
    train = ratings[ratings["split"] == "train"]
    test = ratings[ratings["split"] == "test"]
    users = sorted(set(test["user_id"]) & set(train[train["rating"] >= 9]["user_id"]))
    counts = train.assign(p=train["rating"] >= 9).groupby("anime_id")["p"].sum()
    popular = sorted(counts.index, key=lambda a: (-counts[a], a))
    lists: dict[str, dict[int, list]] = {name: {} for name in [*neighbors, "ease", "popularity"]}
    ease_titles, weights = ease
    for u in users:
        rated = set(train[train["user_id"] == u]["anime_id"])
        promoted = train[(train["user_id"] == u) & (train["rating"] >= 9)]["anime_id"]
        for name, nb in neighbors.items():
            found = defaultdict(list)
            for p in promoted:
                for b, s in nb.get(p, []):
                    if b not in rated:
                        found[b].append(s)
            score = {b: max(s) + BONUS * (len(s) - 1) for b, s in found.items()}
            ranked = sorted(score, key=lambda b: (-round(score[b], 9), b))[:N_MAX]
            lists[name][u] = [(b, score[b]) for b in ranked]
        lists["popularity"][u] = [(a, float(counts[a])) for a in popular if a not in rated][:N_MAX]
        scores = sum(weights[ease_titles.index(p)] for p in promoted if p in ease_titles)
        ranked = sorted(
            (j for j, a in enumerate(ease_titles) if a not in rated and scores[j] > 0),
            key=lambda j: (-round(scores[j], 5), ease_titles[j]),
        )
        lists["ease"][u] = [(ease_titles[j], scores[j]) for j in ranked[:N_MAX]]
    return users, lists


def expected_evaluation(
    t, users, lists, titles: set[int] | None = None
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The evaluation of ``lists`` on the test ratings of ``titles`` (None: all), over the
    ``users`` with such a rating."""
    test = t[tables.RATINGS][t[tables.RATINGS]["split"] == "test"]
    if titles is not None:
        test = test[test["anime_id"].isin(titles)]
    users = [u for u in users if u in set(test["user_id"])]
    rows, sums, hits = [], [], []
    for name in sorted(lists):
        for n in range(1, N_MAX + 1):
            s_u, h_u, prec, rec, nd, net, seen = [], [], [], [], [], [], set()
            for u in users:
                mine = dict(
                    zip(
                        test[test["user_id"] == u]["anime_id"],
                        test[test["user_id"] == u]["rating"],
                        strict=True,
                    )
                )
                promoted = sum(r >= 9 for r in mine.values())
                s = h = p = d = dcg = 0.0
                for i, (a, _) in enumerate(lists[name][u][:n]):
                    seen.add(a)
                    if a in mine:
                        h += 1
                        d += mine[a] <= 6
                        s += (n - i) / n * (1 if mine[a] >= 9 else 0 if mine[a] >= 7 else -1)
                        if mine[a] >= 9:
                            p += 1
                            dcg += 1 / np.log2(i + 2)
                s_u.append(s)
                h_u.append(h)
                prec.append(p / n)
                net.append(p - d)
                if promoted:
                    rec.append(p / promoted)
                    nd.append(dcg / sum(1 / np.log2(i + 2) for i in range(min(n, promoted))))
            scored = [s / h for s, h in zip(s_u, h_u, strict=True) if h]
            rows.append(
                {
                    "recommender": name,
                    "n": n,
                    "nps": sum(s_u) / sum(h_u) if sum(h_u) else np.nan,
                    "hits": int(sum(h_u)),
                    "users_scored": len(scored),
                    "users_total": len(users),
                    "nps_user_mean": np.mean(scored) if scored else np.nan,
                    "precision": np.mean(prec),
                    "recall": np.mean(rec),
                    "ndcg": np.mean(nd),
                    "net_promoter_hits": np.mean(net),
                    "promoter_share": sum(prec) * n / sum(h_u) if sum(h_u) else np.nan,
                    "unique_anime": len(seen),
                }
            )
            sums.append(s_u)
            hits.append(h_u)
    return pd.DataFrame(rows), np.array(sums).T, np.array(hits).T


# ------------------------------------------------------------------------------------------


@pytest.fixture()
def synthetic_lake(spark, lake):
    t = synthetic_tables()
    for name, pdf in t.items():
        schema = SCHEMAS[name]
        write_table(
            spark.createDataFrame(pdf[schema.fieldNames()], schema=schema), lake, name, schema
        )
    return t


@pytest.mark.e2e  # a whole job
def test_recommend_job_matches_independent_computation(spark, lake, synthetic_lake, tmp_path):
    run_job(lake, tmp_path)
    t = synthetic_lake
    ratings = t[tables.RATINGS]
    warm = set(ratings[ratings["split"] == "train"]["anime_id"])
    cold = set(ratings["anime_id"]) - warm
    assert len(cold) == 3
    deep = expected_neighbors(t, DEPTH)
    ease = expected_ease(t)
    views = {
        "all": ({name: among(nb, set(ratings["anime_id"])) for name, nb in deep.items()}, None),
        "warm": ({name: among(nb, warm) for name, nb in deep.items()}, warm),
        "cold": ({n: among(nb, cold) for n, nb in deep.items() if n != "jaccard_cf"}, cold),
    }

    stored = read_table(spark, lake, tables.ANIME_NEIGHBORS).toPandas()
    assert sorted(stored["recommender"].unique()) == ["emb_a", "emb_b", "jaccard_cf"]
    for name, nb in views["all"][0].items():
        got = stored[stored["recommender"] == name].sort_values(["anime_id", "rank"])
        want = [(a, b, i + 1) for a in sorted(nb) for i, (b, _) in enumerate(nb[a])]
        assert (
            list(got[["anime_id", "neighbor_id", "rank"]].itertuples(index=False, name=None))
            == want
        )

    users, lists = expected_lists(t, views["all"][0], ease)
    assert len(users) > 30
    _, cold_lists = expected_lists(t, views["cold"][0], ease)
    lists["hybrid"] = expected_hybrid(lists["ease"], cold_lists[HYBRID_CONTENT])
    recs = read_table(spark, lake, tables.RECOMMENDATIONS).toPandas()
    for name, per_user in lists.items():
        mine = recs[recs["recommender"] == name].sort_values(["user_id", "rank"])
        want = [(u, i + 1, a) for u in users for i, (a, _) in enumerate(per_user[u])]
        got = mine[["user_id", "rank", "anime_id"]].itertuples(index=False, name=None)
        assert list(got) == want, name
        want_scores = [s for u in users for _, s in per_user[u]]
        assert np.allclose(mine["score"].to_numpy(), want_scores, rtol=1e-5)

    evaluation = read_table(spark, lake, tables.EVALUATION).toPandas()
    assert set(evaluation["view"]) == {"all", "warm", "cold"}
    for view, (neighbors, titles) in views.items():
        _, lists = expected_lists(t, neighbors, ease)
        # the hybrid ranks warm titles as ease, cold ones as its content side, and merges both
        lists["hybrid"] = {
            "all": expected_hybrid(lists["ease"], cold_lists[HYBRID_CONTENT]),
            "warm": lists["ease"],
            "cold": lists[HYBRID_CONTENT],
        }[view]
        if view == "cold":  # only the recommenders that can list a title without train rating
            lists = {name: lists[name] for name in [*neighbors, "hybrid"]}
        got = evaluation[evaluation["view"] == view]
        got = got.sort_values(["recommender", "n"]).reset_index(drop=True)
        want, sums, hits = expected_evaluation(t, users, lists, titles)
        pd.testing.assert_frame_equal(got[want.columns], want, check_dtype=False, rtol=1e-9)
        low, high = bootstrap_ratio_ci(sums, hits, SAMPLES, SEED)
        assert np.allclose(got["nps_ci_low"], low, equal_nan=True)
        assert np.allclose(got["nps_ci_high"], high, equal_nan=True)
        shares = [
            np.mean([a in cold for u in lists[name] for a, _ in lists[name][u][:n]])
            for name in sorted(lists)
            for n in range(1, N_MAX + 1)
        ]
        assert np.allclose(got["cold_share"], shares)
    assert (evaluation[evaluation["view"] == "cold"]["precision"] > 0).any()

    reports = tmp_path / "reports"
    assert {p.name for p in reports.iterdir()} >= {
        "nps_by_n.png",
        "precision_warm.png",
        "precision_cold.png",
        "unique_anime.png",
        "evaluation.md",
    }
    import mlflow

    mlflow.set_tracking_uri((tmp_path / "mlruns").as_uri())
    runs = mlflow.search_runs(search_all_experiments=True)
    assert len(runs) == 1
    assert runs["metrics.precision.warm.ease"].notna().all()
    assert runs["params.recommend.hybrid.cold_slots"].tolist() == ["[2, 5]"]

    # the report page: well-formed tables, the verdict of the stored table, logged with the run
    page = HtmlPage((reports / "index.html").read_text(encoding="utf-8"))
    assert page.verdict == verdict(evaluation, HYBRID_CONTENT)
    assert page.verdict.startswith("hybrid: warm P@10 ")
    for table in page.tables:
        assert {len(row) for row in table["rows"]} == {len(table["rows"][0])}
    views = [t["attrs"]["data-view"] for t in page.tables if "data-view" in t["attrs"]]
    assert views == ["warm", "cold", "all"]
    artifacts = mlflow.MlflowClient().list_artifacts(runs["run_id"][0])
    assert "index.html" in {a.path for a in artifacts}


@pytest.mark.slow
def test_rerun_gives_the_same_tables(spark, lake, synthetic_lake, tmp_path):
    run_job(lake, tmp_path / "first")
    first = {
        name: read_table(spark, lake, name).toPandas()
        for name in (tables.ANIME_NEIGHBORS, tables.RECOMMENDATIONS, tables.EVALUATION)
    }
    run_job(lake, tmp_path / "second")
    for name, before in first.items():
        after = read_table(spark, lake, name).toPandas()
        keys = [c for c in ("recommender", "anime_id", "user_id", "rank", "n") if c in after]
        pd.testing.assert_frame_equal(
            before.sort_values(keys).reset_index(drop=True),
            after.sort_values(keys).reset_index(drop=True),
        )
