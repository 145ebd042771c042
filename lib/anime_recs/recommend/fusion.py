"""The fusion formulas of the ``hybrid`` recommender (:mod:`anime_recs.recommend.hybrid`),
one per name in :data:`anime_recs.options.FUSIONS`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


def cf_weight(weight_cf: float, cf_known: np.ndarray) -> np.ndarray:
    """The collaborative weight per candidate: ``w`` when the candidate title has collaborative
    data (it has promoter-Jaccard neighbours), else 0, so a cold-start title is judged by its
    content similarity alone instead of losing the weight of a signal it cannot have."""
    return np.where(np.asarray(cf_known, dtype=bool), weight_cf, 0.0)


def rrf_similarity(
    rank_cf: np.ndarray,
    rank_content: np.ndarray,
    weight_cf: float,
    rrf_k: int,
    cf_known: np.ndarray | None = None,
) -> np.ndarray:
    """Weighted reciprocal-rank fusion, scaled to (0, 1]::

        s = (rrf_k + 1) x ( w_c / (rrf_k + rank_cf) + (1 - w_c) / (rrf_k + rank_content) )

    with 1-based ranks in each source's list, a missing rank (0) contributing nothing, and
    ``w_c`` = :func:`cf_weight` (``w`` unless the candidate has no collaborative data; all
    known when ``cf_known`` is None); a candidate first in both lists gets 1.
    """
    rank_cf = np.asarray(rank_cf, dtype=np.float64)
    rank_content = np.asarray(rank_content, dtype=np.float64)
    w = cf_weight(weight_cf, np.ones(rank_cf.shape, bool) if cf_known is None else cf_known)
    cf = np.where(rank_cf > 0, w / (rrf_k + rank_cf), 0.0)
    content = np.where(rank_content > 0, (1.0 - w) / (rrf_k + rank_content), 0.0)
    return (rrf_k + 1) * (cf + content)


def score_similarity(
    sim_cf: np.ndarray,
    sim_content: np.ndarray,
    weight_cf: float,
    cf_known: np.ndarray | None = None,
) -> np.ndarray:
    """Weighted sum of per-title min-max normalised similarities::

        s = w_c x cf_norm + (1 - w_c) x content_norm

    where each input is already normalised to [0, 1] within the title's list
    (:func:`minmax_by_key`), a candidate missing from a list has 0 there (NaN in, 0 used), and
    ``w_c`` = :func:`cf_weight` (all known when ``cf_known`` is None).
    """
    cf = np.nan_to_num(np.asarray(sim_cf, dtype=np.float64), nan=0.0)
    content = np.nan_to_num(np.asarray(sim_content, dtype=np.float64), nan=0.0)
    w = cf_weight(weight_cf, np.ones(cf.shape, bool) if cf_known is None else cf_known)
    return w * cf + (1.0 - w) * content


def minmax_by_key(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``(v - min_t) / (max_t - min_t)`` within each key ``t``; 1 where a key's values are all
    equal (a single neighbour is that title's best)."""
    keys = np.asarray(keys)
    values = np.asarray(values, dtype=np.float64)
    if keys.size == 0:
        return values
    frame = pd.DataFrame({"k": keys, "v": values})
    low = frame.groupby("k")["v"].transform("min").to_numpy()
    high = frame.groupby("k")["v"].transform("max").to_numpy()
    span = high - low
    return np.where(span > 0, (values - low) / np.where(span > 0, span, 1.0), 1.0)


def title_prior(
    promoters: np.ndarray,
    detractors: np.ndarray,
    raters: np.ndarray,
    strength: float,
    global_mean: float,
) -> np.ndarray:
    """The expected NPS points of a title's next rating, shrunk toward the catalogue's::

        prior = (promoters - detractors + strength x global_mean) / (raters + strength)

    from its train ratings (promoters 9-10, detractors 1-6, all raters); a title with few
    ratings stays near ``global_mean`` (``(sum promoters - sum detractors) / sum raters``
    over all titles), one with none (a cold-start title) is exactly ``global_mean``."""
    promoters = np.asarray(promoters, dtype=np.float64)
    detractors = np.asarray(detractors, dtype=np.float64)
    raters = np.asarray(raters, dtype=np.float64)
    return (promoters - detractors + strength * global_mean) / (raters + strength)


@dataclass(frozen=True)
class TitlePrior:
    """:func:`title_prior` per title: ``anime_ids`` (sorted) and their ``values``;
    ``default`` (the catalogue mean) for a title not listed."""

    anime_ids: np.ndarray
    values: np.ndarray
    default: float

    def of(self, anime_ids: np.ndarray) -> np.ndarray:
        """The prior of each of ``anime_ids``."""
        ids = np.asarray(anime_ids, dtype=np.int64)
        if self.anime_ids.size == 0:
            return np.full(ids.shape, self.default)
        pos = np.minimum(np.searchsorted(self.anime_ids, ids), self.anime_ids.size - 1)
        return np.where(self.anime_ids[pos] == ids, self.values[pos], self.default)


def title_priors_of_counts(
    anime_ids: np.ndarray,
    promoters: np.ndarray,
    detractors: np.ndarray,
    raters: np.ndarray,
    strength: float,
) -> TitlePrior:
    """:func:`title_prior` of titles ``anime_ids`` (ascending) from their train counts, with
    the catalogue mean ``(sum promoters - sum detractors) / sum raters`` (0 without raters)
    as ``global_mean`` and as the default of an unlisted title."""
    raters = np.asarray(raters, dtype=np.float64)
    net = np.asarray(promoters, dtype=np.float64) - np.asarray(detractors, dtype=np.float64)
    mean = float(net.sum() / raters.sum()) if raters.sum() > 0 else 0.0
    values = title_prior(promoters, detractors, raters, strength, mean)
    return TitlePrior(np.asarray(anime_ids, dtype=np.int64), np.asarray(values), mean)


def with_prior(similarity: np.ndarray, prior: np.ndarray, prior_weight: float) -> np.ndarray:
    """``(1 - b) x similarity + b x prior`` with ``b = prior_weight``: the fused similarity
    of a candidate blended with its title prior (:func:`title_prior`), so that of two
    equally similar candidates the one its raters liked more comes first."""
    s = np.asarray(similarity, dtype=np.float64)
    return (1.0 - prior_weight) * s + prior_weight * np.asarray(prior, dtype=np.float64)
