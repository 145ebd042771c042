"""Label rule, title-group split, support guards and deterministic negative sampling."""

from __future__ import annotations

import random

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from anime_recs.similarity import labels
from anime_recs.similarity.labels import (
    label_rule,
    labelled_candidates,
    negative_hash_cut,
    negatives_wanted,
    title_split,
    training_pairs,
)
from anime_recs.tables import ANIME_PAIR_JACCARD_SCHEMA, ANIME_SCHEMA, TRAINING_PAIRS_SCHEMA
from tests.similarity.jaccard_data import anime_rows

ALL_TRAIN = 1e-9  # val_fraction so small that no title lands in val (bucket < 0.001)
# the case study's rules and conf/base.yaml's guards, split and seed: each test overrides some
RULES = dict(
    positive_threshold=0.3,
    negative_threshold=0.1,
    negative_ratio=1.0,
    min_promoters=20,
    min_positive_intersection=5,
    val_fraction=0.2,
    seed=7,
)


def test_label_rule_thresholds_and_middle_band(spark):
    values = [0.0, 0.05, 0.0999, 0.1, 0.2, 0.2999, 0.3, 0.9]
    df = spark.createDataFrame([(v,) for v in values], "jaccard double")
    got = df.select("jaccard", label_rule(F.col("jaccard"), 0.3, 0.1).alias("label"))
    expected = [(0.0, None), (0.05, 0.0), (0.0999, 0.0), (0.1, None), (0.2, None)]
    expected += [(0.2999, None), (0.3, 1.0), (0.9, 1.0)]
    assertDataFrameEqual(got, expected)


def test_negatives_wanted_rounds_half_up():
    assert [negatives_wanted(p, r) for p, r in [(3, 1.0), (3, 0.5), (5, 0.5), (0, 2.0)]] == [
        3,
        2,
        3,
        0,
    ]


def _anime(spark, ids, without_description=()):
    return spark.createDataFrame(anime_rows(ids, without_description), ANIME_SCHEMA)


def _pairs(spark, rows):
    full = [(a, b, pa, pb, i, pa + pb - i, i / (pa + pb - i)) for a, b, pa, pb, i in rows]
    return spark.createDataFrame(full, ANIME_PAIR_JACCARD_SCHEMA)


def test_training_pairs_hand_example(spark):
    # promoters: titles 1-4 and 5: 30, title 6: 2, titles 7, 8: 4; title 5 has no description
    pairs = _pairs(
        spark,
        [
            (1, 2, 30, 30, 20),  # 0.5 positive
            (3, 4, 30, 30, 15),  # 0.333 positive
            (1, 3, 30, 30, 2),  # 0.034 negative
            (1, 4, 30, 30, 1),  # 0.017 negative
            (2, 3, 30, 30, 3),  # 0.053 negative
            (2, 4, 30, 30, 10),  # 0.2 middle band: dropped
            (1, 6, 30, 2, 2),  # 0.067 but title 6 has 2 < 3 promoters: dropped
            (7, 8, 4, 4, 3),  # 0.6 but intersection 3 < 5: dropped
            (2, 5, 30, 30, 20),  # title 5 has no description: dropped
        ],
    )
    got = training_pairs(
        pairs,
        _anime(spark, range(1, 9), without_description=[5]),
        **{**RULES, "min_promoters": 3, "val_fraction": ALL_TRAIN},
    )
    assert [(f.name, f.dataType) for f in got.schema.fields] == [
        (f.name, f.dataType) for f in TRAINING_PAIRS_SCHEMA.fields
    ]
    rows = {(r.anime_a, r.anime_b): (r.label, r.split) for r in got.collect()}
    positives = {k for k, (label, _) in rows.items() if label == 1.0}
    negatives = {k for k, (label, _) in rows.items() if label == 0.0}
    assert positives == {(1, 2), (3, 4)}
    assert len(negatives) == 2 and negatives < {(1, 3), (1, 4), (2, 3)}
    assert {split for _, split in rows.values()} == {"train"}


def _random_pairs(n_titles=150, n_pairs=4000, seed=5):
    rng = random.Random(seed)
    promoters = {t: rng.randint(1, 60) for t in range(1, n_titles + 1)}
    chosen = set()
    while len(chosen) < n_pairs:
        a, b = sorted(rng.sample(range(1, n_titles + 1), 2))
        chosen.add((a, b))
    rows = []
    for a, b in sorted(chosen):
        inter = rng.randint(1, min(promoters[a], promoters[b]))
        rows.append((a, b, promoters[a], promoters[b], inter))
    return rows


@pytest.fixture(scope="module")
def random_case(spark):
    rows = _random_pairs()
    no_desc = list(range(1, 151, 10))
    return _pairs(spark, rows), _anime(spark, range(1, 151), no_desc), rows, set(no_desc)


def _run(case, **kwargs):
    pairs, anime, _, _ = case
    params = {**RULES, "min_promoters": 5, "min_positive_intersection": 3, "val_fraction": 0.3}
    params.update(kwargs)
    return training_pairs(pairs, anime, **params)


def test_training_pairs_rules_on_random_pairs(spark, random_case):
    _, anime, rows, no_desc = random_case
    got = _run(random_case).collect()
    by_pair = {(a, b): (pa, pb, i, i / (pa + pb - i)) for a, b, pa, pb, i in rows}
    split_of = {r.anime_id: r.split for r in title_split(anime, 0.3, 7).collect()}
    assert set(split_of.values()) == {"train", "val"}
    for r in got:
        pa, pb, inter, jac = by_pair[(r.anime_a, r.anime_b)]
        assert r.jaccard == pytest.approx(jac)
        assert r.anime_a not in no_desc and r.anime_b not in no_desc
        assert pa >= 5 and pb >= 5
        assert split_of[r.anime_a] == split_of[r.anime_b] == r.split  # mixed pairs dropped
        if r.label == 1.0:
            assert jac >= 0.3 and inter >= 3
        else:
            assert r.label == 0.0 and 0 < jac < 0.1
    # no title is in both splits
    train_titles = {t for r in got if r.split == "train" for t in (r.anime_a, r.anime_b)}
    val_titles = {t for r in got if r.split == "val" for t in (r.anime_a, r.anime_b)}
    assert train_titles and val_titles and not train_titles & val_titles
    # every eligible positive is kept (only negatives are sampled)
    eligible_pos = {
        (a, b)
        for (a, b), (pa, pb, i, j) in by_pair.items()
        if j >= 0.3
        and i >= 3
        and pa >= 5
        and pb >= 5
        and a not in no_desc
        and b not in no_desc
        and split_of[a] == split_of[b]
    }
    assert {(r.anime_a, r.anime_b) for r in got if r.label == 1.0} == eligible_pos


@pytest.mark.parametrize("ratio", [0.5, 1.0, 50.0])
def test_negative_ratio_per_split(spark, random_case, ratio):
    pairs, anime, _, _ = random_case
    candidates = labelled_candidates(pairs, title_split(anime, 0.3, 7), 0.3, 0.1, 5, 3, 7)
    available = {
        r.split: r["count"]
        for r in candidates.where("label = 0").groupBy("split").count().collect()
    }
    got = _run(random_case, negative_ratio=ratio).groupBy("split", "label").count().collect()
    counts = {(r.split, r.label): r["count"] for r in got}
    for split in ("train", "val"):
        assert counts[(split, 1.0)] > 0
        wanted = negatives_wanted(counts[(split, 1.0)], ratio)
        assert counts[(split, 0.0)] == min(wanted, available[split])
    if ratio == 50.0:  # more wanted than exist: every candidate negative is kept
        assert counts[("train", 0.0)] == available["train"]


def test_sampling_is_deterministic_by_seed(spark, random_case):
    first = _run(random_case, seed=7)
    assertDataFrameEqual(_run(random_case, seed=7), first)
    negatives = {(r.anime_a, r.anime_b) for r in first.where("label = 0").collect()}
    other = {(r.anime_a, r.anime_b) for r in _run(random_case, seed=8).where("label = 0").collect()}
    assert negatives != other


def test_negative_hash_cut_keeps_the_expected_fraction_of_the_hash_range():
    # wanted 1 of 1,000: expect 4 * 1 + 64 = 68 kept, i.e. 68/1000 of [-2^63, 2^63)
    assert negative_hash_cut(1, 1000) == -(2**63) + (68 * 2**64) // 1000
    assert negative_hash_cut(10, 100) is None  # 104 expected >= 100 available: keep all
    assert negative_hash_cut(0, 100) == -(2**63)  # keeps nothing


@pytest.mark.parametrize("oversample", [(4, 64), (0, 0)], ids=["cut", "cut-too-tight"])
def test_sampled_negatives_are_the_smallest_hashes(spark, random_case, monkeypatch, oversample):
    """Hash-cut narrowing (or its fallback when the cut keeps too few) gives exactly the
    ``wanted`` negatives of smallest ``(rank_hash, anime_a, anime_b)`` of each split."""
    monkeypatch.setattr(labels, "NEGATIVE_OVERSAMPLE", oversample[0])
    monkeypatch.setattr(labels, "NEGATIVE_OVERSAMPLE_EXTRA", oversample[1])
    pairs, anime, _, _ = random_case
    candidates = labelled_candidates(pairs, title_split(anime, 0.3, 7), 0.3, 0.1, 5, 3, 7)
    rows = candidates.collect()
    got = _run(random_case, negative_ratio=0.05).where("label = 0").collect()
    for split in ("train", "val"):
        positives = sum(1 for r in rows if r.split == split and r.label == 1.0)
        ranked = sorted(
            (r.rank_hash, r.anime_a, r.anime_b) for r in rows if r.split == split and r.label == 0.0
        )
        wanted = negatives_wanted(positives, 0.05)
        assert wanted > 0
        if split == "train":  # the cut really narrows the candidates there
            assert negative_hash_cut(wanted, len(ranked)) is not None
        expected = {(a, b) for _, a, b in ranked[:wanted]}
        assert {(r.anime_a, r.anime_b) for r in got if r.split == split} == expected


def test_title_split_is_a_stable_fraction_of_described_titles(spark):
    anime = _anime(spark, range(1, 4001), without_description=[1, 2])
    split = title_split(anime, 0.2, 7)
    rows = {r.anime_id: r.split for r in split.collect()}
    assert 1 not in rows and 2 not in rows and len(rows) == 3998
    val = sum(s == "val" for s in rows.values()) / len(rows)
    assert 0.18 < val < 0.22
    assert rows == {r.anime_id: r.split for r in title_split(anime, 0.2, 7).collect()}
    assert rows != {r.anime_id: r.split for r in title_split(anime, 0.2, 8).collect()}


def test_training_pairs_requires_columns(spark):
    pairs = spark.createDataFrame([(1, 2, 0.5)], "anime_a int, anime_b int, jaccard double")
    with pytest.raises(ValueError, match=r"anime_pair_jaccard: missing columns"):
        training_pairs(pairs, _anime(spark, [1, 2]), **RULES)
