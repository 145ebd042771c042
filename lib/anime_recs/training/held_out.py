"""The held-out-title measures every fine-tuning recipe reports, before and after training.

The ``val`` rows of ``copromoted_pairs`` are every guarded pair of two titles that no train
pair has (the title-group split), graded by their Jaccard. For vectors of those titles:

- ``spearman``: Spearman correlation of the pairs' cosine with their Jaccard;
- ``ndcg``: NDCG@``finetune.validation_k`` of each held-out title's
  ``finetune.validation_candidates`` nearest held-out titles, the lists drawn once from the
  vectors before training and re-ranked by the vectors measured, gains = Jaccard. This is how
  the recommender uses vectors (the top k neighbours of each promoted title), so it is the
  measure the default recipe is chosen by (docs/quality.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anime_recs.training.examples import PairSet

SPEARMAN, NDCG = "spearman", "ndcg"
NEIGHBOURHOOD_CHUNK = 1024  # titles per block of the similarity matrix


@dataclass(frozen=True)
class TrainExamples:
    """Row indexes into the vectors: ``in_batch`` uses the pairs ``(first[i], second[i, 0])``;
    ``listwise`` the anchors ``first[i]`` with candidates ``second[i]`` and gains ``gains[i]``
    (each row with a positive sum)."""

    first: np.ndarray  # [n]
    second: np.ndarray  # [n, c]
    gains: np.ndarray | None = None  # [n, c], listwise only

    @classmethod
    def pairs(cls, a: np.ndarray, b: np.ndarray) -> TrainExamples:
        return cls(np.asarray(a, np.int64), np.asarray(b, np.int64).reshape(-1, 1))

    def __len__(self) -> int:
        return int(self.first.size)


def pair_rows(
    ids: np.ndarray, anime_a: np.ndarray, anime_b: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of titles as row indexes of ``ids`` (the titles with a vector, one per row), with
    their values; pairs with a title not in ``ids`` dropped."""
    ids = np.asarray(ids, np.int64)
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]

    def rows(titles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        titles = np.asarray(titles, np.int64)
        at = np.clip(np.searchsorted(sorted_ids, titles), 0, max(ids.size - 1, 0))
        found = sorted_ids[at] == titles if ids.size else np.zeros(titles.size, bool)
        return order[at] if ids.size else at, found

    ra, fa = rows(anime_a)
    rb, fb = rows(anime_b)
    keep = fa & fb
    return ra[keep], rb[keep], np.asarray(values, np.float64)[keep]


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman rank correlation (Pearson of average ranks); None for fewer than 2 pairs or a
    constant input."""
    from scipy.stats import spearmanr

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(spearmanr(x, y).statistic)


def pair_cosines(vectors: np.ndarray, index_a: np.ndarray, index_b: np.ndarray) -> np.ndarray:
    """Cosine of rows ``index_a[i]`` and ``index_b[i]`` of unit-norm ``vectors``."""
    v = np.asarray(vectors, np.float64)
    return np.einsum("ij,ij->i", v[index_a], v[index_b])


def neighbourhoods(vectors: np.ndarray, titles: np.ndarray, k: int) -> np.ndarray:
    """``[len(titles), k]``: for each row index in ``titles``, the ``k`` rows of ``titles``
    (itself excluded) of highest cosine in unit-norm ``vectors``, best first, ties by the
    smaller row index. Computed ``NEIGHBOURHOOD_CHUNK`` titles at a time (memory
    ``chunk x titles``, not ``titles^2``)."""
    titles = np.asarray(titles, np.int64)
    kk = max(min(k, titles.size - 1), 0)
    out = np.zeros((titles.size, kk), np.int64)
    v = np.asarray(vectors, np.float64)[titles]
    for lo in range(0, titles.size, NEIGHBOURHOOD_CHUNK):
        sims = v[lo : lo + NEIGHBOURHOOD_CHUNK] @ v.T
        rows = np.arange(sims.shape[0])
        sims[rows, lo + rows] = -np.inf
        order = np.lexsort((np.broadcast_to(titles, sims.shape), -sims), axis=1)[:, :kk]
        out[lo : lo + sims.shape[0]] = titles[order]
    return out


def relevance_matrix(
    anchors: np.ndarray,
    candidates: np.ndarray,
    pair_a: np.ndarray,
    pair_b: np.ndarray,
    pair_value: np.ndarray,
) -> np.ndarray:
    """``rel[i, j]`` = the value of the pair (``anchors[i]``, ``candidates[i, j]``) in the
    unordered pairs ``(pair_a, pair_b, pair_value)`` (row indexes), 0 where there is none."""
    lookup = {}
    for a, b, v in zip(pair_a.tolist(), pair_b.tolist(), pair_value.tolist(), strict=True):
        lookup[(a, b)] = lookup[(b, a)] = v
    rel = np.zeros(candidates.shape)
    for i, anchor in enumerate(np.asarray(anchors).tolist()):
        for j, c in enumerate(candidates[i].tolist()):
            rel[i, j] = lookup.get((anchor, c), 0.0)
    return rel


def anchor_ndcgs(
    vectors: np.ndarray, anchors: np.ndarray, candidates: np.ndarray, rel: np.ndarray, k: int
) -> np.ndarray:
    """NDCG@k of each anchor with a relevant candidate (in order; the others left out): its
    candidates ranked by cosine to it (unit-norm ``vectors``), gains ``rel``:
    ``DCG = sum_{r<k} rel_(r) / log2(r + 2)`` over the ranking, ``IDCG`` the same over ``rel``
    sorted descending."""
    v = np.asarray(vectors, np.float64)
    keep = rel.sum(axis=1) > 0
    if not keep.any():
        return np.zeros(0)
    sims = np.einsum("id,ijd->ij", v[anchors[keep]], v[candidates[keep]])
    rel = rel[keep]
    kk = min(k, rel.shape[1])
    discount = 1.0 / np.log2(np.arange(kk) + 2)
    ranked = np.take_along_axis(rel, np.argsort(-sims, axis=1, kind="stable")[:, :kk], axis=1)
    ideal = -np.sort(-rel, axis=1)[:, :kk]
    return (ranked * discount).sum(axis=1) / (ideal * discount).sum(axis=1)


def neighbourhood_ndcg(
    vectors: np.ndarray, anchors: np.ndarray, candidates: np.ndarray, rel: np.ndarray, k: int
) -> float | None:
    """Mean of :func:`anchor_ndcgs` over the anchors with a relevant candidate; None when no
    anchor has one."""
    values = anchor_ndcgs(vectors, anchors, candidates, rel, k)
    return float(values.mean()) if values.size else None


def listwise_examples(
    vectors: np.ndarray,
    pair_a: np.ndarray,
    pair_b: np.ndarray,
    pair_value: np.ndarray,
    candidates: int,
) -> TrainExamples:
    """The listwise examples of graded pairs (row indexes, values): each title of the pairs
    with its ``candidates`` nearest titles among them (:func:`neighbourhoods`) and their
    values as gains (:func:`relevance_matrix`); titles without a valued candidate dropped."""
    titles = np.unique(np.r_[pair_a, pair_b]).astype(np.int64)
    if titles.size < 2:
        return TrainExamples(np.zeros(0, np.int64), np.zeros((0, 0), np.int64), np.zeros((0, 0)))
    near = neighbourhoods(vectors, titles, candidates)
    gains = relevance_matrix(titles, near, pair_a, pair_b, pair_value)
    keep = gains.sum(axis=1) > 0
    return TrainExamples(titles[keep], near[keep], gains[keep])


@dataclass(frozen=True)
class HeldOut:
    """The held-out titles' measures of a set of vectors (rows = the source's titles)."""

    pair_a: np.ndarray
    pair_b: np.ndarray
    jaccard: np.ndarray
    lists: TrainExamples  # each held-out title's neighbourhood among them, gains = Jaccard
    k: int

    @property
    def titles(self) -> int:
        return int(np.unique(np.r_[self.pair_a, self.pair_b]).size)

    def anchor_ndcgs(self, vectors: np.ndarray) -> np.ndarray:
        """NDCG@k of each held-out title with a valued candidate (the same titles, in the same
        order, for any vectors: a paired comparison)."""
        if not len(self.lists):
            return np.zeros(0)
        return anchor_ndcgs(vectors, self.lists.first, self.lists.second, self.lists.gains, self.k)

    def measures(self, vectors: np.ndarray) -> dict[str, float | None]:
        """Spearman of cosine vs Jaccard over the pairs, and NDCG@k of the neighbourhoods."""
        return {
            SPEARMAN: spearman(pair_cosines(vectors, self.pair_a, self.pair_b), self.jaccard),
            NDCG: neighbourhood_ndcg(
                vectors, self.lists.first, self.lists.second, self.lists.gains, self.k
            )
            if len(self.lists)
            else None,
        }


def held_out_of(
    ids: np.ndarray,
    vectors: np.ndarray,
    val: tuple[np.ndarray, np.ndarray, np.ndarray],
    candidates: int,
    k: int,
) -> HeldOut:
    """The held-out measures over ``val`` pairs ``(anime_a, anime_b, jaccard)`` of titles with
    a row in ``ids``; each held-out title's ``candidates`` are its nearest held-out titles by
    ``vectors`` (the source's: the same lists for every map measured on them)."""
    va, vb, vj = pair_rows(ids, *val)
    return HeldOut(va, vb, vj, listwise_examples(vectors, va, vb, vj, candidates), k)


def pair_set_titles(pairs: PairSet) -> tuple[np.ndarray, list[str]]:
    """The distinct titles of ``pairs`` (ids ascending) and their texts."""
    texts = {}
    for (a, b), text_a, text_b in zip(pairs.ids, pairs.texts_a, pairs.texts_b, strict=True):
        texts[a], texts[b] = text_a, text_b
    ids = np.array(sorted(texts), np.int64)
    return ids, [texts[int(i)] for i in ids]


def pair_set_values(pairs: PairSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(anime_a, anime_b, label)`` arrays of ``pairs``."""
    ids = np.array(pairs.ids, np.int64).reshape(-1, 2)
    return ids[:, 0], ids[:, 1], np.asarray(pairs.labels, np.float64)
