"""Table names and schemas: the contracts between stages, in one place.

Each Delta table lives at ``<paths.lake>/<name>``. Stages meet only through these tables.
"""

from __future__ import annotations

from collections.abc import Iterable

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

# the raw MAL 2020 files the ingest stage reads from paths.raw
ANIME_FILE = "anime.csv"
SYNOPSIS_FILE = "anime_with_synopsis.csv"
RATINGS_FILE = "rating_complete.csv"
RAW_FILES = (ANIME_FILE, SYNOPSIS_FILE, RATINGS_FILE)
ANIMELIST_FILE = "animelist.csv"  # optional: titles in a watching status (watch_status)
STATUS_FILE = "watching_status.csv"  # optional: the watching status codes
OPTIONAL_RAW_FILES = (ANIMELIST_FILE, STATUS_FILE)

ANIME = "anime"
RATINGS = "ratings"
REJECTED_ROWS = "rejected_rows"
PROMOTERS = "promoters"
ANIME_PAIR_JACCARD = "anime_pair_jaccard"
TRAINING_PAIRS = "training_pairs"
COPROMOTED_PAIRS = "copromoted_pairs"
ANIME_EMBEDDINGS = "anime_embeddings"
EMBEDDING_CACHE = "embedding_cache"
ANIME_NEIGHBORS = "anime_neighbors"
RECOMMENDATIONS = "recommendations"
EVALUATION = "evaluation"
USER_SCORES = "user_scores"
PIPELINE_RUNS = "pipeline_runs"
WATCH_STATUS = "watch_status"
USER_RECOMMENDATIONS = "user_recommendations"

# the NPS bands of a rating (the case study's): promoter 9-10, passive 7-8, detractor 1-6
PROMOTER_MIN_RATING = 9
PASSIVE_MIN_RATING = 7
DETRACTOR_MAX_RATING = PASSIVE_MIN_RATING - 1

TRAIN = "train"
TEST = "test"
VAL = "val"

# values of the `recommender` column besides the embedder names: the baselines, the peers
# (anime_recs.recommend.peers), and the hybrid of a collaborative recommender with one
# embedder (recommend.hybrid); what each one is and does: anime_recs.recommend.registry
JACCARD_CF = "jaccard_cf"
POPULARITY = "popularity"
HYBRID = "hybrid"
EASE = "ease"
ALS = "als"

# the evaluation's views of a recommender's lists (anime_recs.recommend.scoring): ``all`` its
# lists as made, scored on every test rating; ``warm`` ranked among and scored on the titles
# with a train rating; ``cold`` ranked among and scored on the titles without one (the
# newest titles held out by ingest), for the recommenders that can reach them
ALL = "all"
WARM = "warm"
COLD = "cold"
VIEWS = (ALL, WARM, COLD)


def require_columns(columns: Iterable[str], required: Iterable[str], what: str) -> None:
    """Fail with one line naming ``what`` and its missing columns (a Spark or pandas frame's
    ``columns``), before a transformation starts on a frame that cannot fit it."""
    have = list(columns)
    missing = sorted(set(required) - set(have))
    if missing:
        raise ValueError(f"{what}: missing columns {missing} (have {have})")


def nullable_ddl(schema: StructType) -> str:
    """``"name type, ..."`` of a schema with every column nullable (Spark's DDL default), the
    form a pandas/Arrow UDF declares its output in."""
    return ", ".join(f"{f.name} {f.dataType.simpleString()}" for f in schema.fields)


def _schema(*fields: tuple[str, object, bool]) -> StructType:
    return StructType([StructField(name, dtype, nullable) for name, dtype, nullable in fields])


ANIME_SCHEMA = _schema(
    ("anime_id", IntegerType(), False),
    ("name", StringType(), False),
    ("english_name", StringType(), True),
    ("japanese_name", StringType(), True),
    ("type", StringType(), True),
    ("episodes", IntegerType(), True),
    ("aired", StringType(), True),
    ("premiered", StringType(), True),
    ("producers", StringType(), True),
    ("licensors", StringType(), True),
    ("studios", StringType(), True),
    ("source", StringType(), True),
    ("duration", StringType(), True),
    ("age_rating", StringType(), True),
    ("genres", StringType(), True),
    ("score", DoubleType(), True),
    ("ranked", IntegerType(), True),
    ("popularity", IntegerType(), True),
    ("members", IntegerType(), True),
    ("favorites", IntegerType(), True),
    ("synopsis", StringType(), True),
    ("description", StringType(), True),
    ("has_description", BooleanType(), False),
    ("description_source", StringType(), False),
)

RATINGS_SCHEMA = _schema(
    ("user_id", IntegerType(), False),
    ("anime_id", IntegerType(), False),
    ("rating", IntegerType(), False),
    ("split", StringType(), False),
)

REJECTED_ROWS_SCHEMA = _schema(
    ("source", StringType(), False),
    ("record", StringType(), True),
    ("reason", StringType(), False),
)

# one row per title with a promoter (a train rating of 9-10): its promoters ascending, the
# title block of the tiled Jaccard (anime_recs.similarity.tiles); partitioned by title_block
PROMOTERS_SCHEMA = _schema(
    ("anime_id", IntegerType(), False),
    ("title_block", IntegerType(), False),
    ("promoters", IntegerType(), False),
    ("user_ids", ArrayType(IntegerType(), False), False),
)

ANIME_PAIR_JACCARD_SCHEMA = _schema(
    ("anime_a", IntegerType(), False),
    ("anime_b", IntegerType(), False),
    ("promoters_a", IntegerType(), False),
    ("promoters_b", IntegerType(), False),
    ("intersection", IntegerType(), False),
    ("union", IntegerType(), False),
    ("jaccard", DoubleType(), False),
)

#: Delta table properties that are part of a table's contract (``lakehouse.write_table``
#: sets them before writing). ``anime_pair_jaccard`` (62M rows at full scale, written whole by
#: each run) is laid out for a cheap write (measured with
#: ``python -m benchmarks.bench_jaccard_write``: docs/performance.md):
#: - file statistics (min/max/nulls, for data skipping) on the first two columns only: each
#:   file holds a contiguous range of ``anime_a`` (one block of titles), so ``anime_a`` and
#:   ``anime_b`` statistics let a lookup of some titles' pairs skip files, while ``jaccard``
#:   and the counts span their whole range in every file and could never skip one;
#: - Parquet v2 pages without dictionaries: integers get DELTA_BINARY_PACKED, which suits the
#:   sorted ids and small counts (about the size of dictionary pages) and skips building
#:   dictionaries that ``jaccard`` and ``union`` overflow anyway. Delta passes table
#:   properties to the Parquet writer of every write to the table.
TABLE_PROPERTIES: dict[str, dict[str, str]] = {
    ANIME_PAIR_JACCARD: {
        "delta.dataSkippingNumIndexedCols": "2",
        "parquet.writer.version": "v2",
        "parquet.enable.dictionary": "false",
    },
}

TRAINING_PAIRS_SCHEMA = _schema(
    ("anime_a", IntegerType(), False),
    ("anime_b", IntegerType(), False),
    ("jaccard", DoubleType(), False),
    ("label", DoubleType(), False),
    ("split", StringType(), False),
)

# graded co-promoted pairs: train = each train title's top partners, val = every guarded val
# pair (anime_recs.similarity.copromoted)
COPROMOTED_PAIRS_SCHEMA = _schema(
    ("anime_a", IntegerType(), False),
    ("anime_b", IntegerType(), False),
    ("jaccard", DoubleType(), False),
    ("intersection", IntegerType(), False),
    ("split", StringType(), False),
)

ANIME_EMBEDDINGS_SCHEMA = _schema(
    ("embedder", StringType(), False),
    ("anime_id", IntegerType(), False),
    ("embedding", ArrayType(FloatType(), False), False),
    ("dim", IntegerType(), False),
    ("model", StringType(), False),
    ("model_version", StringType(), True),
    ("text_hash", StringType(), False),
)

EMBEDDING_CACHE_SCHEMA = _schema(
    ("model", StringType(), False),
    ("text_hash", StringType(), False),
    ("embedding", ArrayType(FloatType(), False), False),
    ("dim", IntegerType(), False),
)

ANIME_NEIGHBORS_SCHEMA = _schema(
    ("recommender", StringType(), False),
    ("anime_id", IntegerType(), False),
    ("neighbor_id", IntegerType(), False),
    ("rank", IntegerType(), False),
    ("similarity", DoubleType(), False),
)

RECOMMENDATIONS_SCHEMA = _schema(
    ("recommender", StringType(), False),
    ("user_id", IntegerType(), False),
    ("rank", IntegerType(), False),
    ("anime_id", IntegerType(), False),
    ("score", DoubleType(), False),
)

EVALUATION_SCHEMA = _schema(
    ("recommender", StringType(), False),
    ("view", StringType(), False),
    ("n", IntegerType(), False),
    ("nps", DoubleType(), True),
    ("nps_ci_low", DoubleType(), True),
    ("nps_ci_high", DoubleType(), True),
    ("hits", LongType(), False),
    ("users_scored", LongType(), False),
    ("users_total", LongType(), False),
    ("nps_user_mean", DoubleType(), True),
    ("precision", DoubleType(), True),
    ("precision_ci_low", DoubleType(), True),
    ("precision_ci_high", DoubleType(), True),
    ("recall", DoubleType(), True),
    ("ndcg", DoubleType(), True),
    ("net_promoter_hits", DoubleType(), True),
    ("promoter_share", DoubleType(), True),
    ("cold_share", DoubleType(), True),
    ("unique_anime", LongType(), False),
)

# one row per (recommender, view, test user with a test rating of the view's titles): the
# ranked list, its scores, the user's test rating of each listed title (0 = none) and the
# user's numbers of promoted (9-10) and of all test titles among the view's titles
USER_SCORES_SCHEMA = _schema(
    ("recommender", StringType(), False),
    ("view", StringType(), False),
    ("user_id", IntegerType(), False),
    ("anime_ids", ArrayType(IntegerType(), True), False),
    ("scores", ArrayType(DoubleType(), True), False),
    ("test_ratings", ArrayType(IntegerType(), True), False),
    ("promoted_test", IntegerType(), False),
    ("test_titles", IntegerType(), False),
)

PIPELINE_RUNS_SCHEMA = _schema(
    ("run_id", StringType(), False),
    ("stage", StringType(), False),
    ("fingerprint", StringType(), False),
    ("status", StringType(), False),
    ("inputs", StringType(), True),  # JSON: {table: delta version}
    # JSON: {table: delta version} and the stage's extra outputs (the fine-tune's
    # {"registered_model": "models:/NAME/VERSION"}); a failed run: {"failed_step": step,
    # "error": one line}
    ("outputs", StringType(), True),
    ("started_at", TimestampType(), False),
    ("finished_at", TimestampType(), True),
    ("wall_s", DoubleType(), True),
)

# animelist.csv, validated: every (user, title) in some watching status (codes in
# watching_status.csv); rating 0 = not rated
WATCH_STATUS_SCHEMA = _schema(
    ("user_id", IntegerType(), False),
    ("anime_id", IntegerType(), False),
    ("rating", IntegerType(), False),
    ("watching_status", IntegerType(), False),
    ("watched_episodes", IntegerType(), False),
)

# what a scheduled run serves: per user, serve.n ranked titles of one recommender
USER_RECOMMENDATIONS_SCHEMA = _schema(
    ("user_id", IntegerType(), False),
    ("rank", IntegerType(), False),
    ("anime_id", IntegerType(), False),
    ("name", StringType(), False),
    ("score", DoubleType(), False),
    ("source", StringType(), False),  # model | popularity_fallback
    ("because", ArrayType(IntegerType(), True), False),
    ("recommender", StringType(), False),
    ("model_version", StringType(), False),
    ("run_id", StringType(), False),
)

#: Every table's contract, by name: ``lakehouse.read_table`` refuses a stored table whose
#: columns (names, order, types) differ from it, and ``jobs/check.py`` reports it.
SCHEMAS: dict[str, StructType] = {
    ANIME: ANIME_SCHEMA,
    RATINGS: RATINGS_SCHEMA,
    REJECTED_ROWS: REJECTED_ROWS_SCHEMA,
    PROMOTERS: PROMOTERS_SCHEMA,
    ANIME_PAIR_JACCARD: ANIME_PAIR_JACCARD_SCHEMA,
    TRAINING_PAIRS: TRAINING_PAIRS_SCHEMA,
    COPROMOTED_PAIRS: COPROMOTED_PAIRS_SCHEMA,
    ANIME_EMBEDDINGS: ANIME_EMBEDDINGS_SCHEMA,
    EMBEDDING_CACHE: EMBEDDING_CACHE_SCHEMA,
    ANIME_NEIGHBORS: ANIME_NEIGHBORS_SCHEMA,
    RECOMMENDATIONS: RECOMMENDATIONS_SCHEMA,
    EVALUATION: EVALUATION_SCHEMA,
    USER_SCORES: USER_SCORES_SCHEMA,
    WATCH_STATUS: WATCH_STATUS_SCHEMA,
    USER_RECOMMENDATIONS: USER_RECOMMENDATIONS_SCHEMA,
    PIPELINE_RUNS: PIPELINE_RUNS_SCHEMA,
}

#: The key of each table that has one: no two rows share these columns' values
#: (``jobs/check.py`` verifies it on a full check).
TABLE_KEYS: dict[str, tuple[str, ...]] = {
    RATINGS: ("user_id", "anime_id"),
    ANIME: ("anime_id",),
    PROMOTERS: ("anime_id",),
    ANIME_EMBEDDINGS: ("embedder", "anime_id"),
    EMBEDDING_CACHE: ("model", "text_hash"),
    USER_SCORES: ("recommender", "view", "user_id"),
    WATCH_STATUS: ("user_id", "anime_id"),
    USER_RECOMMENDATIONS: ("user_id", "rank"),
}

#: The job (``jobs/<job>.py``) that writes each table: the rerun a damage diagnosis proposes.
#: The stage registry (``anime_recs.stages``) is the source; the foundations cannot import it,
#: so ``tests/test_stages.py`` fails when this mapping differs from ``stages.written_by()``.
WRITTEN_BY: dict[str, str] = {
    ANIME: "ingest",
    RATINGS: "ingest",
    REJECTED_ROWS: "ingest",
    PROMOTERS: "jaccard",
    ANIME_PAIR_JACCARD: "jaccard",
    TRAINING_PAIRS: "jaccard",
    COPROMOTED_PAIRS: "jaccard",
    ANIME_EMBEDDINGS: "embed",
    EMBEDDING_CACHE: "embed",
    ANIME_NEIGHBORS: "recommend",
    RECOMMENDATIONS: "recommend",
    EVALUATION: "recommend",
    USER_SCORES: "recommend",
    WATCH_STATUS: "ingest",
    USER_RECOMMENDATIONS: "serve",
}
