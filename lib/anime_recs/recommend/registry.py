"""The recommenders, each declared once: how it lists, what it needs, how it is fitted.

A :class:`Recommender` says how the recommender lists (:class:`Kind`: candidates from each
title's neighbours, a fitted model's dense scores, the popularity list, or the hybrid of two
others), what it is fitted from (:class:`Need`), its fit function, whether it reaches the cold
titles (those without a train rating), whether the serve stage can serve it and its settings
(``recommend.<section>``). Everything that handles recommenders asks this module: the
recommend stage (what to fit, which views to evaluate), the serve stage and the lookup (what a
served list is read or fitted from, what labels its rows), the stage registry (the settings
serving depends on) and the config check (:func:`check_config`).

Adding a recommender = one :func:`register` call with its fit function (and its settings
section in ``config.RecommendConfig`` when it has settings). The embedders of
``embed.embedders`` are one family of neighbour recommenders, each declared by
:func:`embedder`, not listed here.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import StrEnum

import pandas as pd
from pyspark.sql import DataFrame

from anime_recs.config import AppConfig, ConfigError, RecommendConfig
from anime_recs.recommend.neighbors import cosine_neighbors, embedding_matrix, jaccard_neighbors
from anime_recs.recommend.peers import DenseModel, fit_als, fit_ease
from anime_recs.tables import ALS, EASE, HYBRID, JACCARD_CF, POPULARITY


class Kind(StrEnum):
    """How a recommender makes a user's list."""

    NEIGHBOURS = "neighbours"  # candidates from the neighbours of the user's promoted titles
    DENSE = "dense"  # a fitted model's scores of every title it knows
    POPULARITY = "popularity"  # the most-promoted titles
    HYBRID = "hybrid"  # one recommender's warm list with another's cold titles in some slots


class Need(StrEnum):
    """What a recommender is fitted from."""

    RATINGS = "ratings"  # the train ratings
    PAIRS = "pairs"  # the promoter-Jaccard pairs (table anime_pair_jaccard)
    VECTORS = "vectors"  # its embedder's vectors (table anime_embeddings)


@dataclass(frozen=True)
class FitInputs:
    """What a fit function may read: the ``recommend`` settings, the ``train`` ratings, the
    promoter-Jaccard ``pairs`` (None where the caller read none), an embedder's vectors
    (``anime_id``, ``embedding``) by name, and how deep a neighbour list goes."""

    rc: RecommendConfig
    train: DataFrame
    pairs: DataFrame | None
    vectors_of: Callable[[str], pd.DataFrame]
    depth: int


# a neighbour recommender's fit gives each title's ``depth`` nearest titles (anime_id,
# neighbor_id, rank, similarity); a dense one's its model
Fit = Callable[[str, FitInputs], pd.DataFrame | DenseModel]


@dataclass(frozen=True)
class Recommender:
    """One recommender's declaration. ``fit(name, inputs)`` exists for the neighbour and
    dense kinds; the popularity list needs no fit and the hybrid is made of its parts
    (``recommend.hybrid``)."""

    name: str
    kind: Kind
    needs: frozenset[Need]
    fit: Fit | None = None
    reaches_cold: bool = False  # lists titles without a train rating: evaluated on them too
    servable: bool = True  # the serve stage and the lookup can list it
    section: str | None = None  # its settings: recommend.<section>

    @property
    def collaborative(self) -> bool:
        """Lists warm titles from the ratings alone: it can be the hybrid's warm side."""
        return self.kind in (Kind.NEIGHBOURS, Kind.DENSE) and Need.VECTORS not in self.needs


def fit_jaccard(name: str, inputs: FitInputs) -> pd.DataFrame:
    """Each title's nearest titles by the promoter Jaccard of the pairs."""
    if inputs.pairs is None:
        raise ValueError(f"recommender {name}: no promoter-Jaccard pairs to fit from")
    return jaccard_neighbors(inputs.pairs, inputs.depth)


def fit_cosine(name: str, inputs: FitInputs) -> pd.DataFrame:
    """Each title's nearest titles by the cosine of the embedder ``name``'s vectors."""
    return cosine_neighbors(*embedding_matrix(inputs.vectors_of(name)), inputs.depth)


def fit_ease_model(name: str, inputs: FitInputs) -> DenseModel:
    """EASE on the train ratings with ``recommend.ease``."""
    return fit_ease(inputs.train, inputs.rc.ease.l2, inputs.rc.ease.max_titles)


def fit_als_model(name: str, inputs: FitInputs) -> DenseModel:
    """Implicit ALS on the train ratings with ``recommend.als``."""
    als = inputs.rc.als
    return fit_als(inputs.train, als.rank, als.reg, als.alpha, als.max_iter, als.seed)


#: The recommenders besides the embedders, in the order a run lists them (after the embedders).
REGISTRY: dict[str, Recommender] = {}


def register(recommender: Recommender) -> Recommender:
    """Declare ``recommender``; ValueError when its name is taken or its kind lacks a fit."""
    if recommender.name in REGISTRY:
        raise ValueError(f"recommender {recommender.name!r} is already registered")
    fitted = recommender.kind in (Kind.NEIGHBOURS, Kind.DENSE)
    if fitted != (recommender.fit is not None):
        raise ValueError(
            f"recommender {recommender.name!r}: a {recommender.kind} recommender "
            + ("needs a fit function" if fitted else "takes no fit function")
        )
    REGISTRY[recommender.name] = recommender
    return recommender


register(Recommender(JACCARD_CF, Kind.NEIGHBOURS, frozenset({Need.PAIRS}), fit_jaccard))
register(Recommender(EASE, Kind.DENSE, frozenset({Need.RATINGS}), fit_ease_model, section="ease"))
register(Recommender(ALS, Kind.DENSE, frozenset({Need.RATINGS}), fit_als_model, section="als"))
# its needs are its parts' (recommend.hybrid): the collaborative side's and the content vectors
register(
    Recommender(HYBRID, Kind.HYBRID, frozenset({Need.VECTORS}), reaches_cold=True, section="hybrid")
)
register(Recommender(POPULARITY, Kind.POPULARITY, frozenset({Need.RATINGS})))


def embedder(name: str) -> Recommender:
    """The declaration of the embedder ``name`` as a recommender: the nearest titles by the
    cosine of its vectors, which reach the cold titles (every title has a description)."""
    return Recommender(name, Kind.NEIGHBOURS, frozenset({Need.VECTORS}), fit_cosine, True)


def declaration(name: str, embedders: Collection[str]) -> Recommender:
    """The declaration of ``name``: a registered recommender or one of the ``embedders``;
    KeyError naming it otherwise."""
    if name in REGISTRY:
        return REGISTRY[name]
    if name in embedders:
        return embedder(name)
    raise KeyError(f"unknown recommender {name!r}")


def collaborative() -> list[str]:
    """The registered recommenders the hybrid's warm side can be."""
    return [r.name for r in REGISTRY.values() if r.collaborative]


def sections() -> list[str]:
    """The ``recommend`` settings sections of the registered recommenders (dotted keys)."""
    return [f"recommend.{r.section}" for r in REGISTRY.values() if r.section]


def check_config(config: AppConfig) -> None:
    """The recommender settings: every name in ``recommend.recommenders`` and
    ``serve.recommender`` is registered or an embedder (the served one servable), no embedder
    takes a registered name, and the hybrid's collaborative side is a collaborative
    recommender. :class:`ConfigError` naming the key."""
    embedders = sorted(config.embed.embedders)
    taken = [name for name in embedders if name in REGISTRY]
    if taken:
        raise ConfigError(f"embed.embedders: {taken} are names of recommenders")
    known = embedders + list(REGISTRY)
    side = config.recommend.hybrid.collaborative
    if side not in collaborative():
        raise ConfigError(
            f"recommend.hybrid.collaborative: {side!r} is not a collaborative "
            f"recommender ({collaborative()})"
        )
    for name in config.recommend.recommenders:
        if name not in known:
            raise ConfigError(
                f"recommend.recommenders: unknown recommender {name!r} (known: {known})"
            )
    served = config.serve.recommender
    if served not in known or not declaration(served, embedders).servable:
        servable = [n for n in known if declaration(n, embedders).servable]
        raise ConfigError(f"serve.recommender: unknown recommender {served!r} (known: {servable})")
