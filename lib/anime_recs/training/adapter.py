"""A vector adapter: a small map trained on top of frozen embeddings, on the driver with torch.

Fine-tuning the whole encoder on a few thousand users' co-promotions moves 22M weights with
little signal, and on real ratings it made held-out titles worse (docs/quality.md). The
adapter keeps the encoder and its vectors as they are and learns a low-rank residual map
(:func:`anime_recs.embeddings.adapted.adapt`, which the embed stage applies)::

    f(v) = normalise(v + B (A v))        A: rank x dim, B: dim x rank, B = 0 at the start

so an untrained adapter is the identity (the base recommender), and it applies to any
embedder's stored vectors, OpenAI's included, which cannot be fine-tuned. Training sees only
vectors, so it costs seconds on a CPU and can use every training pair.

Two objectives (:func:`train_adapter`), each plus ``l2`` times the squared size of the residual
on the batch's vectors (:func:`residual_penalty`), which keeps the map near the identity where
the pairs say little:

- ``in_batch``: the contrastive recipe's loss (:func:`in_batch_loss`) over the co-promoted
  train pairs, each title's target its partner among the batch;
- ``listwise``: for every train title, its ``candidates`` nearest train titles by the frozen
  vectors, and ListNet (:func:`listwise_loss`) toward their graded Jaccard with it: the map
  learns to re-rank content neighbourhoods by co-promotion, which is how the recommender uses
  the vectors (its top-k neighbours of each promoted title).

After every epoch a validation measure on held-out titles is taken (a caller's function of the
adapted vectors: :func:`spearman` of cosine vs graded Jaccard over held-out pairs, or
:func:`neighbourhood_ndcg` of their neighbourhoods), and the epoch with the best one is kept
(epoch 0, the identity, included): the held-out-title measure, not the test users, chooses.

Needs numpy and torch only (no Spark), like the fine-tuning loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from anime_recs.embeddings.adapted import adapt
from anime_recs.options import ADAPTER_OBJECTIVES, IN_BATCH

log = logging.getLogger(__name__)

NEIGHBOURHOOD_CHUNK = 1024


@dataclass(frozen=True)
class AdapterSettings:
    """What :func:`train_adapter` needs (explicit values from the caller's config)."""

    rank: int
    epochs: int
    batch_size: int
    learning_rate: float
    l2: float  # weight of residual_penalty
    scale: float  # the losses' similarity scale (1 / temperature)
    seed: int
    loss: str  # one of anime_recs.options.ADAPTER_OBJECTIVES


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


@dataclass
class AdapterResult:
    """The kept map (``a``: rank x dim, ``b``: dim x rank) and what happened."""

    a: np.ndarray
    b: np.ndarray
    best_epoch: int
    measure_before: float | None
    measure_after: float | None
    epoch_measure: list[tuple[int, float]] = field(default_factory=list)
    loss_curve: list[tuple[int, float]] = field(default_factory=list)
    train_s: float = 0.0


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


def listwise_loss(anchors, candidates, rel, scale: float):
    """ListNet over each anchor's candidates: the cross-entropy between the target
    distribution ``rel / sum(rel)`` and ``softmax(scale x cos(anchor, candidate))`` (torch
    tensors: anchors ``[n, d]``, candidates ``[n, c, d]`` unit norm, ``rel`` ``[n, c]`` with
    a positive sum per row)."""
    import torch

    logits = scale * torch.einsum("nd,ncd->nc", anchors, candidates)
    target = rel / rel.sum(dim=1, keepdim=True)
    return -(target * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()


def in_batch_loss(anchors, positives, scale: float):
    """Symmetric in-batch contrastive loss: with ``S = scale x cos(a_i, p_j)`` over the batch,
    ``(CE(S, i) + CE(S^T, i)) / 2``: each title's partner is its target among the batch's
    partners, and the other way round (torch tensors, rows unit norm)."""
    import torch

    logits = scale * anchors @ positives.T
    target = torch.arange(logits.shape[0], device=logits.device)
    cross = torch.nn.functional.cross_entropy
    return (cross(logits, target) + cross(logits.T, target)) / 2


def residual_penalty(vectors, a, b):
    """Mean over the rows ``v`` of ``|B A v|^2``: how far the map moves the batch's vectors
    (torch tensors)."""
    return ((vectors @ a.T @ b.T) ** 2).sum(dim=1).mean()


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


def train_adapter(
    vectors: np.ndarray,
    examples: TrainExamples,
    validate: Callable[[np.ndarray], float | None],
    settings: AdapterSettings,
) -> AdapterResult:
    """Train the residual map on ``examples`` over ``vectors`` (unit norm, ``[titles, dim]``)
    with ``settings.loss``; keep the epoch whose adapted vectors score best by ``validate``
    (see the module docstring)."""
    import torch

    if settings.loss not in ADAPTER_OBJECTIVES:
        raise ValueError(
            f"unknown adapter loss {settings.loss!r}; expected one of {ADAPTER_OBJECTIVES}"
        )
    threads = torch.get_num_threads()
    # the matrices are small: more threads only add synchronisation (and spin against other
    # processes on a busy machine)
    torch.set_num_threads(1)
    try:
        return _train(torch, vectors, examples, validate, settings)
    finally:
        torch.set_num_threads(threads)


def _train(torch, vectors, examples, validate, settings) -> AdapterResult:
    start = time.perf_counter()
    torch.manual_seed(settings.seed)
    base = torch.tensor(np.asarray(vectors, np.float32))
    dim = base.shape[1]
    a = torch.nn.Parameter(torch.randn(settings.rank, dim) / np.sqrt(dim))
    b = torch.nn.Parameter(torch.zeros(dim, settings.rank))
    optimizer = torch.optim.Adam([a, b], lr=settings.learning_rate)
    gains = None if examples.gains is None else torch.tensor(examples.gains, dtype=torch.float32)

    def current() -> tuple[np.ndarray, np.ndarray]:
        return a.detach().numpy().copy(), b.detach().numpy().copy()

    def mapped(v):
        return torch.nn.functional.normalize(v + v @ a.T @ b.T, dim=-1)

    before = validate(adapt(vectors, *current()))
    result = AdapterResult(*current(), 0, before, before)
    best = before
    rng = np.random.default_rng(settings.seed)
    for epoch in range(1, settings.epochs + 1):
        order = rng.permutation(len(examples))
        total, batches = 0.0, 0
        for lo in range(0, len(examples), settings.batch_size):
            idx = order[lo : lo + settings.batch_size]
            if idx.size < 2:
                continue
            first = base[examples.first[idx]]
            second = base[examples.second[idx]]  # [batch, c, dim]
            if settings.loss == IN_BATCH:
                loss = in_batch_loss(mapped(first), mapped(second[:, 0]), settings.scale)
            else:
                loss = listwise_loss(mapped(first), mapped(second), gains[idx], settings.scale)
            loss = loss + settings.l2 * residual_penalty(first, a, b)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            batches += 1
        result.loss_curve.append((epoch, total / max(batches, 1)))
        value = validate(adapt(vectors, *current()))
        if value is not None:
            result.epoch_measure.append((epoch, value))
            if best is None or value > best:
                result.a, result.b = current()
                result.best_epoch, best = epoch, value
    result.measure_after = best
    result.train_s = time.perf_counter() - start
    log.info(
        "adapter (%s): %s examples, rank %s; validation %s -> %s (epoch %s of %s) in %.1fs",
        settings.loss,
        len(examples),
        settings.rank,
        before,
        best,
        result.best_epoch,
        settings.epochs,
        result.train_s,
    )
    return result
