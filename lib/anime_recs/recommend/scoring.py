"""One pass over the ratings, grouped by user: every recommender's list for every test user.

The ratings are repartitioned by ``user_id`` and sorted within partitions, then a
``mapInArrow`` function cuts the stream into chunks of whole users and, per chunk, builds the
lists of all recommenders at once in numpy (:mod:`candidates`, :mod:`popularity`). The
neighbour arrays of all recommenders travel to the executors in one broadcast
(:class:`ScoringModel`). Output: one row per (recommender, test user) with the ranked list,
its scores, the user's test rating of each listed title and the user's number of promoted
test titles - everything the evaluation needs (the ``user_scores`` table).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from anime_recs.recommend.candidates import candidate_lists
from anime_recs.recommend.hybrid import merge_cold_slots
from anime_recs.recommend.neighbors import neighbor_arrays
from anime_recs.recommend.peers import DenseModel, dense_scores
from anime_recs.recommend.popularity import (
    PROMOTER_MIN_RATING,
    popularity_lists,
    popularity_order,
)
from anime_recs.recommend.registry import REGISTRY, Kind
from anime_recs.tables import (
    ALL,
    COLD,
    TEST,
    TRAIN,
    USER_SCORES_SCHEMA,
    VIEWS,
    WARM,
    nullable_ddl,
    require_columns,
)

log = logging.getLogger(__name__)


USER_LISTS_DDL = nullable_ddl(USER_SCORES_SCHEMA)
USER_LISTS_SCHEMA = pa.schema(
    [
        ("recommender", pa.string()),
        ("view", pa.string()),
        ("user_id", pa.int32()),
        ("anime_ids", pa.list_(pa.int32())),
        ("scores", pa.list_(pa.float64())),
        ("test_ratings", pa.list_(pa.int32())),
        ("promoted_test", pa.int32()),
        ("test_titles", pa.int32()),
    ]
)


@dataclass
class ScoringModel:
    """What the executors need: the title universe, neighbour arrays, dense models, popularity.

    ``universe``: sorted anime_ids; ``warm``: which of them have a train rating;
    ``neighbors[(name, view)] = (index [T, k], similarity [T, k])`` with indexes into
    ``universe`` (-1 = none), each view's neighbours restricted to its titles; ``dense[name]``:
    a :class:`~anime_recs.recommend.peers.DenseModel` and ``dense_index[name]`` the universe
    index of each of its titles; ``popularity``: universe indexes in popularity order, their
    promoter counts, and each title's position in that list (-1 = not in it), listed by the
    recommenders in ``popular``. ``lists`` fixes the output order: (recommender, view) pairs.
    """

    universe: np.ndarray
    warm: np.ndarray
    lists: list[tuple[str, str]]
    neighbors: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    dense: dict[str, DenseModel] = field(default_factory=dict)
    dense_index: dict[str, np.ndarray] = field(default_factory=dict)
    pop_titles: np.ndarray | None = None
    pop_scores: np.ndarray | None = None
    pop_position: np.ndarray | None = None
    hybrids: dict[str, HybridParts] = field(default_factory=dict)
    # resolved on the driver: the executors' registry holds no recommender registered at run time
    popular: frozenset[str] = frozenset()


@dataclass(frozen=True)
class HybridParts:
    """The ``hybrid`` recommender's parts (``recommend.hybrid``): the recommender whose warm
    list it serves, the embedder whose cold list fills its cold slots, the slots and the
    similarity a cold title needs."""

    collaborative: str
    content: str
    cold_slots: tuple[int, ...]
    min_similarity: float


def list_views(reaches_cold: bool) -> tuple[str, ...]:
    """The views a recommender is evaluated in: ``all`` and ``warm``, and ``cold`` when it can
    list titles without train ratings (content and hybrid recommenders)."""
    return VIEWS if reaches_cold else (ALL, WARM)


def build_model(
    lists: list[tuple[str, str]],
    neighbors: dict[tuple[str, str], pd.DataFrame],
    promoters: pd.DataFrame,
    k: int,
    dense: dict[str, DenseModel] | None = None,
    hybrids: dict[str, HybridParts] | None = None,
) -> ScoringModel:
    """Assemble a :class:`ScoringModel` from neighbour frames, dense models and the train
    promoter counts (every title rated in train: the warm titles).

    ``lists`` names every (recommender, view) to score: a registered recommender of the
    popularity kind, a dense model's name, a key of ``hybrids`` (made of its parts' lists:
    the ``warm`` list of its collaborative side and the ``cold`` list of its content side),
    or a key of ``neighbors`` (frames with ``anime_id``, ``neighbor_id``, ``rank``,
    ``similarity``).
    """
    dense, hybrids = dense or {}, hybrids or {}
    needed = [key for key in lists if key[0] not in hybrids]
    for name in {key[0] for key in lists if key[0] in hybrids}:
        needed += [(hybrids[name].collaborative, WARM), (hybrids[name].content, COLD)]
    popular = frozenset(
        name for name, _ in needed if name in REGISTRY and REGISTRY[name].kind is Kind.POPULARITY
    )
    listed = popular | set(dense)
    unknown = [key for key in needed if key[0] not in listed and key not in neighbors]
    if unknown:
        raise ValueError(f"no neighbours for recommenders {unknown}")
    ids = [promoters["anime_id"].to_numpy(dtype=np.int64)]
    ids += [m.titles for m in dense.values()]
    for frame in neighbors.values():
        ids += [frame["anime_id"].to_numpy(np.int64), frame["neighbor_id"].to_numpy(np.int64)]
    universe = np.unique(np.concatenate(ids))
    warm = np.isin(universe, promoters["anime_id"].to_numpy(dtype=np.int64))
    model = ScoringModel(
        universe=universe, warm=warm, lists=list(lists), hybrids=hybrids, popular=popular
    )
    for key, frame in neighbors.items():
        if key in needed:
            model.neighbors[key] = neighbor_arrays(frame, universe, k)
    for name, dense_model in dense.items():
        model.dense[name] = dense_model
        model.dense_index[name] = np.searchsorted(universe, dense_model.titles)
    pop_ids = promoters["anime_id"].to_numpy(dtype=np.int64)
    order = popularity_order(pop_ids, promoters["promoters"].to_numpy())
    model.pop_titles = np.searchsorted(universe, pop_ids[order])
    model.pop_scores = promoters["promoters"].to_numpy(dtype=np.float64)[order]
    model.pop_position = np.full(universe.size, -1, dtype=np.int64)
    model.pop_position[model.pop_titles] = np.arange(order.size)
    return model


def find_test_users(
    user: np.ndarray, is_test: np.ndarray, rating: np.ndarray, n_users: int
) -> np.ndarray:
    """Test users: at least one ``test`` rating and at least one promoted (9-10) train title.

    ``user`` holds user indexes 0..n_users-1 per rating; returns a mask over users.
    """
    has_test = np.bincount(user[is_test], minlength=n_users) > 0
    promoted_train = ~is_test & (rating >= PROMOTER_MIN_RATING)
    has_promoted = np.bincount(user[promoted_train], minlength=n_users) > 0
    return has_test & has_promoted


def dense_top_n(
    scores: np.ndarray, excluded: np.ndarray, n_max: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``scores [users, T]``, the ``n_max`` best columns not ``excluded`` (a mask
    of the same shape): score descending, ties by the smaller column. Returns column indexes
    (-1 = none) and scores (NaN = none)."""
    n_users, n_titles = scores.shape
    masked = np.where(excluded, -np.inf, scores.astype(np.float64))
    n = min(n_max, n_titles)
    cols = np.full((n_users, n_max), -1, dtype=np.int64)
    values = np.full((n_users, n_max), np.nan)
    if n == 0 or n_users == 0:
        return cols, values
    top = (
        np.argpartition(-masked, n - 1, axis=1)[:, :n]
        if n < n_titles
        else (np.tile(np.arange(n_titles), (n_users, 1)))
    )
    top_scores = np.take_along_axis(masked, top, axis=1)
    order = np.lexsort((top, -top_scores), axis=1)
    top = np.take_along_axis(top, order, axis=1)
    top_scores = np.take_along_axis(top_scores, order, axis=1)
    valid = np.isfinite(top_scores)
    cols[:, :n] = np.where(valid, top, -1)
    values[:, :n] = np.where(valid, top_scores, np.nan)
    return cols, values


def dense_lists(
    scores: np.ndarray, index: np.ndarray, seen_keys: np.ndarray, n_titles: int, n_max: int
) -> tuple[np.ndarray, np.ndarray]:
    """A dense model's lists: its ``scores [users, T]`` of the titles at universe positions
    ``index``, without the titles in ``seen_keys`` (sorted ``u * n_titles + title``) and
    without the titles it scores 0 or below (nothing in the user's history points to them: a
    user without one gets an empty list, not the smallest ids), ranked by
    :func:`dense_top_n`; universe indexes (-1 = none) and scores."""
    lookup = np.full(n_titles, -1, dtype=np.int64)
    lookup[index] = np.arange(index.size)
    excluded = scores <= 0
    if n_titles:
        cols = lookup[seen_keys % n_titles]
        seen = cols >= 0
        excluded[(seen_keys // n_titles)[seen], cols[seen]] = True
    cols, values = dense_top_n(scores, excluded, n_max)
    return np.where(cols >= 0, index[np.maximum(cols, 0)], -1), values


def score_chunk(
    user_id: np.ndarray,
    anime_id: np.ndarray,
    rating: np.ndarray,
    is_test: np.ndarray,
    model: ScoringModel,
    k: int,
    n_max: int,
    frequency_bonus: float,
) -> pa.Table:
    """Lists of every (recommender, view) for the whole users of a chunk (rows grouped by
    user). A view's rows are its users with a test rating of its titles: ``all`` every
    title, ``warm`` the titles with a train rating, ``cold`` the others."""
    n_rows = user_id.size
    starts = (
        np.flatnonzero(np.r_[True, user_id[1:] != user_id[:-1]]) if n_rows else np.zeros(0, int)
    )
    n_users = starts.size
    user = np.repeat(np.arange(n_users), np.diff(np.r_[starts, n_rows]))
    selected = find_test_users(user, is_test, rating, n_users)
    users = user_id[starts][selected]
    new_index = np.cumsum(selected) - 1
    keep = selected[user]
    user, anime_id = new_index[user[keep]], anime_id[keep]
    rating, is_test = rating[keep], is_test[keep]
    n_users = users.size

    universe = model.universe
    n_titles = universe.size
    pos = np.minimum(np.searchsorted(universe, anime_id), max(n_titles - 1, 0))
    title = np.where(universe[pos] == anime_id, pos, -1) if n_titles else np.full(user.size, -1)
    known = title >= 0
    warm_row = known & model.warm[np.maximum(title, 0)] if n_titles else known
    train = ~is_test
    train_keys = np.unique(user[train & known] * n_titles + title[train & known])
    promoted = train & known & (rating >= PROMOTER_MIN_RATING)
    tests = {}
    for view, rows in ((ALL, is_test), (WARM, is_test & warm_row), (COLD, is_test & ~warm_row)):
        in_universe = rows & known
        keys = user[in_universe] * n_titles + title[in_universe]
        order = np.argsort(keys, kind="stable")
        tests[view] = (
            keys[order],
            rating[in_universe][order],
            np.bincount(user[rows & (rating >= PROMOTER_MIN_RATING)], minlength=n_users),
            np.bincount(user[rows], minlength=n_users),
        )

    made: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    dense_scores_of: dict[str, np.ndarray] = {}

    def lists_of(name: str, view: str) -> tuple[np.ndarray, np.ndarray]:
        if (name, view) in made:
            return made[(name, view)]
        if name in model.hybrids:
            parts = model.hybrids[name]
            warm_lists = lists_of(parts.collaborative, WARM)
            cold_lists = lists_of(parts.content, COLD)
            if view == WARM:
                titles, scores = warm_lists
            elif view == COLD:
                titles, scores = cold_lists
            else:
                titles, scores, _ = merge_cold_slots(
                    *warm_lists, *cold_lists, parts.cold_slots, parts.min_similarity
                )
        elif name in model.popular:
            train_rank = model.pop_position[title[train & known]]
            positions = popularity_lists(
                user[train & known][train_rank >= 0],
                train_rank[train_rank >= 0],
                n_users,
                model.pop_titles.size,
                n_max,
            )
            titles = np.where(positions >= 0, model.pop_titles[positions], -1)
            scores = np.where(positions >= 0, model.pop_scores[positions], np.nan)
        elif name in model.dense:
            if name not in dense_scores_of:
                dense_scores_of[name] = dense_scores(
                    model.dense[name], users, user[promoted], anime_id[promoted], n_users
                )
            titles, scores = dense_lists(
                dense_scores_of[name], model.dense_index[name], train_keys, n_titles, n_max
            )
        else:
            nb_index, nb_sim = model.neighbors[(name, view)]
            titles, scores = candidate_lists(
                user[promoted],
                title[promoted],
                train_keys,
                nb_index,
                nb_sim,
                k,
                n_users,
                n_max,
                frequency_bonus,
            )
        made[(name, view)] = titles, scores
        return titles, scores

    batches = []
    for name, view in model.lists:
        titles, scores = lists_of(name, view)
        test_keys, test_rating, promoted_test, test_titles = tests[view]
        ratings_at = lookup_test_ratings(titles, test_keys, test_rating, n_titles)
        rows = test_titles > 0
        batches.append(
            _lists_batch(
                name,
                view,
                users[rows],
                titles[rows],
                scores[rows],
                ratings_at[rows],
                promoted_test[rows],
                test_titles[rows],
                model,
            )
        )
    return pa.Table.from_batches(batches, schema=USER_LISTS_SCHEMA)


def lookup_test_ratings(
    titles: np.ndarray, test_keys: np.ndarray, test_rating: np.ndarray, n_titles: int
) -> np.ndarray:
    """``[n_users, n_max]`` test rating of each listed title (0 = no test rating / no title)."""
    n_users = titles.shape[0]
    keys = np.arange(n_users)[:, None] * n_titles + titles
    if test_keys.size == 0:
        return np.zeros(titles.shape, dtype=np.int32)
    pos = np.minimum(np.searchsorted(test_keys, keys), test_keys.size - 1)
    found = (titles >= 0) & (test_keys[pos] == keys)
    return np.where(found, test_rating[pos], 0).astype(np.int32)


def _list_array(matrix: np.ndarray, valid: np.ndarray, pa_type: pa.DataType) -> pa.Array:
    offsets = np.r_[0, np.cumsum(valid.sum(axis=1))].astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(matrix[valid], type=pa_type))


def _lists_batch(
    name: str,
    view: str,
    users: np.ndarray,
    titles: np.ndarray,
    scores: np.ndarray,
    ratings_at: np.ndarray,
    promoted_test: np.ndarray,
    test_titles: np.ndarray,
    model: ScoringModel,
) -> pa.RecordBatch:
    valid = titles >= 0
    anime = np.where(valid, model.universe[np.maximum(titles, 0)], 0)
    return pa.RecordBatch.from_arrays(
        [
            pa.array(np.full(users.size, name, dtype=object), pa.string()),
            pa.array(np.full(users.size, view, dtype=object), pa.string()),
            pa.array(users, pa.int32()),
            _list_array(anime, valid, pa.int32()),
            _list_array(scores, valid, pa.float64()),
            _list_array(ratings_at, valid, pa.int32()),
            pa.array(promoted_test, pa.int32()),
            pa.array(test_titles, pa.int32()),
        ],
        schema=USER_LISTS_SCHEMA,
    )


def user_chunks(batches: Iterator[pa.RecordBatch], chunk_rows: int) -> Iterator[pa.Table]:
    """Cut a stream of Arrow batches sorted by ``user_id`` into tables of whole users.

    Each table holds about ``chunk_rows`` rows (more when one user has more) and never splits
    a user's rows between two tables.
    """
    buffered: list[pa.RecordBatch] = []
    size = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        buffered.append(batch)
        size += batch.num_rows
        if size < chunk_rows:
            continue
        table = pa.Table.from_batches(buffered).combine_chunks()
        users = table.column("user_id").to_numpy()
        cut = int(np.searchsorted(users, users[-1], side="left"))
        if cut == 0:  # one user so far: keep reading
            continue
        yield table.slice(0, cut)
        rest = table.slice(cut)
        buffered, size = rest.to_batches(), rest.num_rows
    if size:
        yield pa.Table.from_batches(buffered).combine_chunks()


def _score_partition(model_ref, k, n_max, frequency_bonus, chunk_rows):
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        model = model_ref.value if hasattr(model_ref, "value") else model_ref
        for table in user_chunks(batches, chunk_rows):
            cols = [table.column(c).to_numpy() for c in ("user_id", "anime_id", "rating")]
            is_test = table.column("is_test").to_numpy(zero_copy_only=False).astype(bool)
            out = score_chunk(*cols, is_test, model, k, n_max, frequency_bonus)
            yield from (b for b in out.to_batches() if b.num_rows)

    return run


def score_users(
    spark: SparkSession,
    ratings: DataFrame,
    model: ScoringModel,
    k: int,
    n_max: int,
    frequency_bonus: float,
    partitions: int | None = None,
    chunk_rows: int = 200_000,
) -> DataFrame:
    """Per (recommender, test user): ranked list, scores, test ratings of the listed titles.

    ``ratings`` (``user_id``, ``anime_id``, ``rating``, ``split``) is repartitioned by user and
    sorted within partitions; every chunk of about ``chunk_rows`` ratings of whole users is
    scored by :func:`score_chunk`. Output schema: :data:`USER_LISTS_DDL`.
    """
    require_columns(ratings.columns, ("user_id", "anime_id", "rating", "split"), "ratings")
    partitions = partitions or int(spark.conf.get("spark.sql.shuffle.partitions"))
    model_ref = spark.sparkContext.broadcast(model)
    return (
        ratings.filter(F.col("split").isin(TRAIN, TEST))
        .select(
            F.col("user_id").cast("int"),
            F.col("anime_id").cast("int"),
            F.col("rating").cast("int"),
            (F.col("split") == TEST).alias("is_test"),
        )
        .repartition(partitions, "user_id")
        .sortWithinPartitions("user_id")
        .mapInArrow(
            _score_partition(model_ref, k, n_max, frequency_bonus, chunk_rows),
            USER_LISTS_DDL,
        )
    )


def recommendations_from_lists(lists: DataFrame) -> DataFrame:
    """Explode per-user lists into ``recommendations`` rows (``rank`` 1-based)."""
    exploded = lists.where(F.col("view") == ALL).select(
        "recommender",
        "user_id",
        F.posexplode(F.arrays_zip("anime_ids", "scores")).alias("pos", "item"),
    )
    return exploded.select(
        "recommender",
        "user_id",
        (F.col("pos") + 1).cast("int").alias("rank"),
        F.col("item.anime_ids").cast("int").alias("anime_id"),
        F.col("item.scores").cast("double").alias("score"),
    )
