"""jobs/serve.py and jobs/lookup.py on a small synthetic lake, checked against a plain Python
computation of the serving rules; exports equal the table; reruns write the same rows."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from anime_recs import pipeline, stages, tables
from anime_recs.cli import run_main
from anime_recs.config import load_config
from anime_recs.lakehouse import read_table, table_version, write_table
from tests.helpers import load_job
from tests.recommend.recsynth import synthetic_tables

REPO = Path(__file__).resolve().parents[2]
CONF = str(REPO / "conf" / "local.yaml")
K, N, BONUS = 3, 10, 0.05
UNRATED = (901, 902)  # titles in anime that nobody rated
WATCH_ONLY_USER = 999
EMBEDDER = "finetuned_minilm"  # an embedding recommender


def top_k(partners: dict[int, list[tuple[float, int]]]) -> dict[int, list[tuple[int, float]]]:
    return {
        a: [(b, s) for s, b in sorted(p, key=lambda x: (-x[0], x[1]))[:K]]
        for a, p in partners.items()
    }


def build_tables() -> dict[str, pd.DataFrame]:
    t = synthetic_tables()
    ratings = t["ratings"]
    ids = sorted(set(ratings["anime_id"]) | set(t["anime_pair_jaccard"]["anime_a"]))
    ids = sorted(set(ids) | set(t["anime_embeddings"]["anime_id"]))
    anime = pd.DataFrame({"anime_id": ids + list(UNRATED)})
    anime["name"] = [f"title {a}" for a in anime["anime_id"]]

    partners = defaultdict(list)
    for r in t["anime_pair_jaccard"].itertuples():
        partners[r.anime_a].append((r.jaccard, r.anime_b))
        partners[r.anime_b].append((r.jaccard, r.anime_a))
    rng = np.random.default_rng(3)
    served = defaultdict(list)  # an embedding recommender's lists, without its vectors
    for a in ids:
        for b in ids:
            if a != b:
                served[a].append((round(float(rng.random()), 3), b))  # rounded: some ties
    rows = []
    for name, nb in (("jaccard_cf", top_k(partners)), (EMBEDDER, top_k(served))):
        for a, lst in nb.items():
            rows += [(name, a, b, i + 1, s) for i, (b, s) in enumerate(lst)]
    neighbors = pd.DataFrame(rows, columns=tables.ANIME_NEIGHBORS_SCHEMA.fieldNames())

    users = sorted(ratings["user_id"].unique())
    watch = []
    for u in users[:25]:
        for a in rng.choice(ids, size=3, replace=False):
            watch.append((int(u), int(a), 0, int(rng.choice([1, 2, 3, 4, 6])), 1))
    watch += [(WATCH_ONLY_USER, ids[0], 0, 6, 0)]
    watch = pd.DataFrame(watch, columns=tables.WATCH_STATUS_SCHEMA.fieldNames())
    watch = watch.drop_duplicates(["user_id", "anime_id"])
    return {
        tables.RATINGS: ratings,
        tables.ANIME: anime,
        tables.ANIME_NEIGHBORS: neighbors,
        tables.WATCH_STATUS: watch,
    }


def expected_rows(t: dict[str, pd.DataFrame], recommender: str) -> dict[int, list[tuple]]:
    """Per user: (rank, anime_id, name, score, source, because), straight from the rules."""
    ratings, anime, watch = t[tables.RATINGS], t[tables.ANIME], t[tables.WATCH_STATUS]
    names = dict(zip(anime["anime_id"], anime["name"], strict=True))
    promoters = ratings.assign(p=ratings["rating"] >= 9).groupby("anime_id")["p"].sum()
    counts = {a: float(promoters.get(a, 0)) for a in anime["anime_id"]}
    popular = sorted(counts, key=lambda a: (-counts[a], a))
    nb = t[tables.ANIME_NEIGHBORS]
    nb = nb[nb["recommender"] == recommender].sort_values(["anime_id", "rank"])
    lists = defaultdict(list)
    for r in nb.itertuples():
        lists[r.anime_id].append((r.neighbor_id, r.similarity))
    out = {}
    for u, mine in ratings.groupby("user_id"):
        seen = set(mine["anime_id"]) | set(watch[watch["user_id"] == u]["anime_id"])
        rows = []
        if recommender != "popularity":
            found = defaultdict(list)
            for p in mine[mine["rating"] >= 9]["anime_id"]:
                for b, s in lists.get(p, []):
                    if b not in seen:
                        found[b].append((s, p))
            score = {b: max(s for s, _ in f) + BONUS * (len(f) - 1) for b, f in found.items()}
            for b in sorted(score, key=lambda b: (-round(score[b], 9), b))[:N]:
                why = [p for _, p in sorted(found[b], key=lambda x: (-x[0], x[1]))[:3]]
                rows.append((b, score[b], "model", why))
        listed = {r[0] for r in rows}
        fallback = "model" if recommender == "popularity" else "popularity_fallback"
        for a in popular:
            if len(rows) == N:
                break
            if a not in seen and a not in listed:
                rows.append((a, counts[a], fallback, []))
        out[int(u)] = [
            (i + 1, int(a), names[a], round(s, 9), src, why)
            for i, (a, s, src, why) in enumerate(rows)
        ]
    return out


def table_rows(pdf: pd.DataFrame) -> dict[int, list[tuple]]:
    out = defaultdict(list)
    for r in pdf.sort_values(["user_id", "rank"]).itertuples():
        out[int(r.user_id)].append(
            (r.rank, r.anime_id, r.name, round(r.score, 9), r.source, list(r.because))
        )
    return dict(out)


def write_lake(spark, lake: str, t: dict[str, pd.DataFrame]) -> None:
    """Write the tables of :func:`build_tables` (or changed copies) as new Delta versions."""
    for name, pdf in t.items():
        schema = tables.SCHEMAS[name]
        full = pdf.copy()
        filler = {"has_description": False, "description_source": "metadata"}  # not nullable
        for f in schema.fieldNames():
            if f not in full:
                full[f] = filler.get(f)
        frame = spark.createDataFrame(full[schema.fieldNames()], schema=schema)
        write_table(frame, lake, name, schema)


@pytest.fixture(scope="module")
def served(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    lake = str(root / "lake")
    t = build_tables()
    write_lake(spark, lake, t)
    argv = [
        "--conf", str(REPO / "conf" / "local.yaml"),
        "--set", f"paths.lake={lake}",
        "--set", "spark.shuffle_partitions=2",
        "--set", f"serve.recommender={EMBEDDER}",
        "--set", f"recommend.k={K}",
        "--export", str(root / "export"),
    ]  # fmt: skip
    assert load_job("serve").main(argv) == 0
    return {"lake": lake, "t": t, "root": root, "argv": argv}


def test_serve_matches_the_rules(spark, served):
    lake, t = served["lake"], served["t"]
    got = read_table(spark, lake, tables.USER_RECOMMENDATIONS).toPandas()
    want = expected_rows(t, EMBEDDER)
    assert WATCH_ONLY_USER not in want
    assert table_rows(got) == want
    assert set(got["recommender"]) == {EMBEDDER}
    assert (
        got["run_id"].nunique() == 1
        and got["model_version"].str.startswith("anime_neighbors:").all()
    )
    # every user with a rating gets N rows, or every unseen title when fewer are left
    ratings, watch = t[tables.RATINGS], t[tables.WATCH_STATUS]
    n_titles = len(t[tables.ANIME])
    for u, size in got.groupby("user_id").size().items():
        seen = set(ratings[ratings["user_id"] == u]["anime_id"])
        seen |= set(watch[watch["user_id"] == u]["anime_id"])
        assert size == min(N, n_titles - len(seen)), u
    assert (got.groupby("user_id").size() < N).sum() == 1  # the user who rated all but one
    assert set(got["user_id"]) == set(t[tables.RATINGS]["user_id"])
    # some users are served from the fallback only, some mix both, some are all model rows
    sources = got.groupby("user_id")["source"].agg(set)
    assert {frozenset(s) for s in sources} == {
        frozenset({"model"}), frozenset({"model", "popularity_fallback"}),
        frozenset({"popularity_fallback"}),
    }  # fmt: skip


def test_seen_titles_never_served_and_because_is_grounded(spark, served):
    lake, t = served["lake"], served["t"]
    got = read_table(spark, lake, tables.USER_RECOMMENDATIONS).toPandas()
    ratings, watch = t[tables.RATINGS], t[tables.WATCH_STATUS]
    seen = set(zip(ratings["user_id"], ratings["anime_id"], strict=True))
    watched = set(zip(watch["user_id"], watch["anime_id"], strict=True))
    pairs = set(zip(got["user_id"], got["anime_id"], strict=True))
    assert not pairs & seen and not pairs & watched
    # the watch statuses did remove titles the user would otherwise have been served
    unwatched = {
        u: v for u, v in expected_rows({**t, tables.WATCH_STATUS: watch.iloc[:0]}, EMBEDDER).items()
    }
    assert any((u, r[1]) in watched for u, rows in unwatched.items() for r in rows)

    promoted = set(
        zip(*ratings[ratings["rating"] >= 9][["user_id", "anime_id"]].to_numpy().T, strict=True)
    )
    nb = t[tables.ANIME_NEIGHBORS]
    nb = nb[(nb["recommender"] == EMBEDDER) & (nb["rank"] <= K)]
    neighbours = set(zip(nb["anime_id"], nb["neighbor_id"], strict=True))
    for r in got.itertuples():
        assert len(r.because) <= 3
        if r.source == "popularity_fallback":
            assert len(r.because) == 0
        else:
            assert len(r.because) >= 1
        for p in r.because:
            assert (r.user_id, p) in promoted
            assert (p, r.anime_id) in neighbours


def test_exports_equal_the_table(spark, served):
    lake, export = served["lake"], served["root"] / "export"
    table = read_table(spark, lake, tables.USER_RECOMMENDATIONS).toPandas()
    parquet = spark.read.parquet(str(export / "parquet")).toPandas()
    cols = tables.USER_RECOMMENDATIONS_SCHEMA.fieldNames()
    key = ["user_id", "rank"]
    a = table[cols].sort_values(key).reset_index(drop=True)
    b = parquet[cols].sort_values(key).reset_index(drop=True)
    assert a.drop(columns="because").equals(b.drop(columns="because"))
    assert [list(x) for x in a["because"]] == [list(x) for x in b["because"]]
    assert (export / "parquet" / f"recommender={EMBEDDER}").is_dir()

    lines = []
    for part in sorted((export / "jsonl").glob("part-*.json")):
        lines += [json.loads(line) for line in part.read_text().splitlines()]
    assert [o["user_id"] for o in lines] == sorted(table["user_id"].unique())
    want = {
        u: [
            {"anime_id": r.anime_id, "name": r.name, "score": r.score, "because": list(r.because)}
            for r in rows.sort_values("rank").itertuples()
        ]
        for u, rows in table.groupby("user_id")
    }
    assert {o["user_id"]: o["items"] for o in lines} == want
    assert not list(export.parent.glob(".export.*"))  # nothing left aside


@pytest.mark.e2e  # the whole job again
def test_rerun_writes_the_same_rows_as_a_new_version(spark, served):
    lake = served["lake"]
    before = table_version(spark, lake, tables.USER_RECOMMENDATIONS)
    # forced: an unchanged rerun is skipped (tests/test_runner.py)
    assert load_job("serve").main([*served["argv"], "--force"]) == 0
    after = table_version(spark, lake, tables.USER_RECOMMENDATIONS)
    assert after == before + 1

    def rows(version):
        df = read_table(spark, lake, tables.USER_RECOMMENDATIONS, version)
        return sorted(tuple(map(str, r)) for r in df.collect())

    assert rows(after) == rows(before)


def embedder_rows(name: str, ids: list[int], model_version: str) -> pd.DataFrame:
    """``name``'s rows of ``anime_embeddings`` (the vectors do not matter to serving)."""
    return pd.DataFrame(
        [(name, a, [1.0, 0.0], 2, "m", model_version, f"h{a}") for a in ids],
        columns=tables.ANIME_EMBEDDINGS_SCHEMA.fieldNames(),
    )


@pytest.mark.e2e  # a whole job
def test_serve_reads_every_input_at_the_version_the_runner_pinned(spark, tmp_path):
    """The runner pins the inputs' versions (``StageRun.versions``) and fingerprints them
    into ``run_id``: tables rewritten before the stage reads them (a concurrent recommend,
    ingest or embed) must not reach the served rows, or ``run_id`` and ``model_version``
    would describe other rows than the ones served."""
    lake = str(tmp_path / "lake")
    t = build_tables()
    # the embedder's vectors: its model_version comes from them
    nb = t[tables.ANIME_NEIGHBORS]
    ids = sorted(t[tables.ANIME]["anime_id"])
    t[tables.ANIME_EMBEDDINGS] = embedder_rows(EMBEDDER, ids, "v1")
    write_lake(spark, lake, t)
    sets = [f"paths.lake={lake}", "spark.shuffle_partitions=2", f"serve.recommender={EMBEDDER}"]
    config = load_config(CONF, [*sets, f"recommend.k={K}"])
    stage = stages.by_name("serve")
    run = pipeline.prepare(spark, config, stage, "pinned")

    # then every input rewritten: other names, other neighbours, another model version
    jaccard = nb[nb["recommender"] == "jaccard_cf"]
    write_lake(
        spark,
        lake,
        {
            tables.ANIME: t[tables.ANIME].assign(name=lambda f: "renamed " + f["name"]),
            tables.ANIME_NEIGHBORS: jaccard.assign(recommender=EMBEDDER),
            tables.ANIME_EMBEDDINGS: embedder_rows(EMBEDDER, ids, "v2"),
        },
    )
    jaccard_lists = expected_rows({**t, tables.ANIME_NEIGHBORS: nb}, "jaccard_cf")
    assert expected_rows(t, EMBEDDER) != jaccard_lists  # the rewrite would serve other rows
    stage.run(spark, config, run)

    got = read_table(spark, lake, tables.USER_RECOMMENDATIONS).toPandas()
    assert table_rows(got) == expected_rows(t, EMBEDDER)
    assert set(got["model_version"]) == {"m@v1"} and set(got["run_id"]) == {run.fingerprint}
    assert run.versions.get(tables.ANIME_EMBEDDINGS) == 0  # declared: pinned, fingerprinted


def lookup(argv_extra, lake, capsys):
    argv = ["--conf", str(REPO / "conf" / "local.yaml"), "--set", f"paths.lake={lake}",
            "--set", f"recommend.k={K}", *argv_extra]  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        run_main(load_job("lookup").main, argv)
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


def test_lookup_prints_each_recommenders_rows(spark, served, capsys):
    lake, t = served["lake"], served["t"]
    ratings = t[tables.RATINGS]
    user = int(ratings[ratings["rating"] >= 9]["user_id"].iloc[0])
    asked = [EMBEDDER, "jaccard_cf", "popularity"]
    code, out, _ = lookup(["--user", str(user), "--n", "4", "--recommender", *asked], lake, capsys)
    assert code == 0
    names = dict(zip(t[tables.ANIME]["anime_id"], t[tables.ANIME]["name"], strict=True))
    mine = ratings[(ratings["user_id"] == user) & (ratings["rating"] >= 9)]
    assert f"user {user}: {len(mine)} promoted titles (rating >= 9)" in out
    for a in mine["anime_id"]:
        assert f"{names[a]}" in out
    for name in asked:
        assert f"recommender {name}: top 4" in out
        block = out.split(f"recommender {name}: top 4\n")[1].splitlines()[:4]
        for line, (rank, a, title, score, source, why) in zip(
            block, expected_rows(t, name)[user][:4], strict=True
        ):
            assert line.split()[:3] == [f"{rank}.", str(a), *title.split()[:1]]
            assert f"score {score:.4f}  {source}" in line
            for p in why:
                assert f"{names[p]} ({p})" in line


def test_lookup_unknown_user_or_recommender_exits_2(served, capsys):
    lake = served["lake"]
    code, out, err = lookup(["--user", "123456"], lake, capsys)
    assert code == 2 and err.strip().splitlines() == [
        "error: unknown user 123456: no ratings in table ratings"
    ]
    code, out, err = lookup(["--user", "1", "--recommender", "nope"], lake, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "'nope'" in err
