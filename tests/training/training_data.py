"""Generated titles and pairs with a learnable signal (shared by the fine-tune tests).

Every title belongs to one of a few groups; its description mixes some of its group's marker
words with shared filler words; two titles are a positive pair (label 1) when they share a
group, else negative (label 0). Train and val pairs come from disjoint titles (as in the real
split), same groups.
"""

from __future__ import annotations

import random

import numpy as np

from anime_recs.training.examples import PairSet
from anime_recs.training.finetune import TrainSettings
from anime_recs.training.held_out import neighbourhoods

GROUP_WORDS = [
    ["dragon", "castle", "knight", "sword", "magic", "king", "queen", "forest"],
    ["robot", "space", "pilot", "laser", "planet", "engine", "star", "ship"],
    ["school", "class", "teacher", "exam", "club", "student", "friend", "summer"],
    ["detective", "murder", "police", "crime", "secret", "case", "victim", "clue"],
]
FILLER = (
    "the a story of young man woman who finds new life world after day night time old girl boy "
    "family home city town long way must learn find help one two three years ago begins when "
    "strange people meet soon together against what their own"
).split()
N_TITLES = 48
VAL_TITLES = range(36, 48)  # ids 36..47 are validation titles, 0..35 train titles


def make_descriptions(n_titles: int = N_TITLES, seed: int = 0) -> dict[int, str]:
    rng = random.Random(seed)
    out = {}
    for title in range(n_titles):
        words = rng.sample(GROUP_WORDS[title % len(GROUP_WORDS)], 4) + rng.sample(FILLER, 12)
        rng.shuffle(words)
        out[title] = " ".join(words)
    return out


def make_pair_rows(seed: int = 0) -> list[tuple[int, int, float, float, str]]:
    """(anime_a, anime_b, jaccard, label, split): all positives, as many sampled negatives."""
    rng = random.Random(seed)
    rows = []
    for split, titles in (("train", range(0, 36)), ("val", VAL_TITLES)):
        titles = list(titles)
        pos, neg = [], []
        for i, a in enumerate(titles):
            for b in titles[i + 1 :]:
                (pos if a % len(GROUP_WORDS) == b % len(GROUP_WORDS) else neg).append((a, b))
        neg = rng.sample(neg, len(pos))
        rows += [(a, b, 0.4, 1.0, split) for a, b in pos]
        rows += [(a, b, 0.05, 0.0, split) for a, b in neg]
    return sorted(rows)


def make_copromoted_rows() -> list[tuple[int, int, float, int, str]]:
    """(anime_a, anime_b, jaccard, intersection, split) like ``copromoted_pairs``: train = the
    same-group pairs (the co-promoted partners), val = every val pair with a graded Jaccard."""
    rows = []
    for a, b, jaccard, label, split in make_pair_rows():
        if split == "train" and label == 1.0:
            rows.append((a, b, jaccard, 5, split))
    val = list(VAL_TITLES)
    for i, a in enumerate(val):
        for b in val[i + 1 :]:
            same = a % len(GROUP_WORDS) == b % len(GROUP_WORDS)
            rows.append((a, b, 0.4 if same else 0.05, 5 if same else 1, "val"))
    return rows


def pair_set(split: str) -> PairSet:
    texts = make_descriptions()
    rows = [r for r in make_pair_rows() if r[4] == split]
    return PairSet(
        [texts[r[0]] for r in rows],
        [texts[r[1]] for r in rows],
        [r[3] for r in rows],
        [(r[0], r[1]) for r in rows],
    )


def train_settings(**overrides: object) -> TrainSettings:
    """The training loop's settings for these tests: ``finetune`` of conf/base.yaml's values
    (2e-5, 10% warmup, seed 13, the case study's loss, whole-batch forward passes) with the
    tests' own batch size, epochs and steps, overridden by ``overrides``."""
    values: dict[str, object] = dict(
        batch_size=16,
        epochs=1,
        learning_rate=2e-5,
        warmup_ratio=0.1,
        seed=13,
        logging_steps=10,
        checkpoint_steps=200,
        loss="CosineSimilarityLoss",
        forward_chunk=0,
    )
    return TrainSettings(**{**values, **overrides})


def hidden_world(seed: int = 3, n: int = 400, dim: int = 16):
    """Titles whose co-promotion follows a hidden linear view of their vectors: the pairs'
    graded value is the cosine in that view, so a map learned on some titles transfers to
    titles it never saw."""
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, dim))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    view = np.diag(np.r_[np.full(2, 4.0), np.full(dim - 2, 0.2)])
    w = v @ view
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    truth = w @ w.T
    near = neighbourhoods(v, np.arange(n), 30)
    a = np.repeat(np.arange(n), near.shape[1])
    b = near.ravel()
    value = np.clip(truth[a, b] - 0.5, 0, None)
    train, val = np.arange(n) < 300, np.arange(n) >= 300
    return v, a, b, value, train, val
