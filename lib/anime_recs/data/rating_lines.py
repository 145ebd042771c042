"""The ratings file parsed by Spark as text lines, with built-in SQL functions only (no Python
UDF): the row rules of :mod:`anime_recs.data.rules`, titles unknown to ``anime.csv`` and
duplicate keys. ``rating_complete.csv`` (57.6M rows, ~800 MB) is never collected: one scan,
one shuffle (the duplicate window), the anime id set broadcast. ``animelist.csv``
(:mod:`anime_recs.data.watch_status`) is read with the same functions.

File order of the ratings in Spark
    Each line is tagged at scan time with ``input_file_block_start()`` (byte offset of the file
    split it was read from) and ``monotonically_increasing_id()`` (increasing within a Spark
    partition, in read order). Splits of one file are read front to back, so ordering by
    (block_start, row_pos) is file order whatever the number of splits or partitions. The header
    is the first line of the split starting at byte 0 (row number 0 in the lower 33 bits of
    ``monotonically_increasing_id``, as documented by Spark).
"""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from anime_recs.data.files import input_path
from anime_recs.data.rules import (
    DUPLICATE_KEY,
    EMPTY_LINE,
    ID_OUT_OF_RANGE,
    MAX_INT,
    MISSING_ID,
    MISSING_RATING,
    NEGATIVE_ID,
    NON_INTEGER_RATING,
    NON_NUMERIC_ID,
    NON_NUMERIC_RATING,
    RATING_OUT_OF_RANGE,
    REQUIRED_COLUMNS,
    UNKNOWN_ANIME_ID,
    UNPARSEABLE,
    WRONG_FIELD_COUNT,
)
from anime_recs.tables import RATINGS_FILE, require_columns


def read_rating_lines(spark: SparkSession, path: str | Path) -> DataFrame:
    """The data lines of the ratings file as ``line, block_start, row_pos`` (header dropped).

    ``(block_start, row_pos)`` orders the lines in file order (see the module docstring).
    """
    low_33_bits = (1 << 33) - 1
    lines = spark.read.text(str(path)).select(
        F.col("value").alias("line"),
        F.input_file_block_start().alias("block_start"),
        F.monotonically_increasing_id().alias("row_pos"),
    )
    is_header = (F.col("block_start") == 0) & (F.col("row_pos").bitwiseAND(F.lit(low_33_bits)) == 0)
    return lines.filter(~is_header)


def id_reason_column(t: Column) -> Column:
    """Why a trimmed id field is invalid, or NULL: the Spark twin of
    :func:`~anime_recs.data.anime_files.id_reason` (fast path first: one regex)."""
    return (
        F.when(t.rlike(r"^[0-9]{1,9}$"), F.lit(None).cast("string"))
        .when(t == "", F.lit(MISSING_ID))
        .when(t.rlike(r"^-[0-9]+$"), F.lit(NEGATIVE_ID))
        .when(~t.rlike(r"^[0-9]+$"), F.lit(NON_NUMERIC_ID))
        .when(t.cast("double") > MAX_INT, F.lit(ID_OUT_OF_RANGE))
    )


def _rating_reason(t: Column) -> Column:
    """Why a trimmed rating field is invalid, or NULL for an integer (``7``, ``+7``, ``7.0``)
    in 1..10 (fast path first: one regex)."""
    integral = t.rlike(r"^[+-]?[0-9]+(\.0*)?$")
    decimal = t.rlike(r"^[+-]?([0-9]+\.[0-9]*|\.[0-9]+)$")
    value = t.cast("double")
    return (
        F.when(t.rlike(r"^([1-9]|10)$"), F.lit(None).cast("string"))
        .when(t == "", F.lit(MISSING_RATING))
        .when(integral & ((value < 1) | (value > 10)), F.lit(RATING_OUT_OF_RANGE))
        .when(integral, F.lit(None).cast("string"))
        .when(decimal, F.lit(NON_INTEGER_RATING))
        .otherwise(F.lit(NON_NUMERIC_RATING))
    )


def split_fields(lines: DataFrame, n_columns: int) -> DataFrame:
    """Split CSV data lines (``line, block_start, row_pos``) of a file with ``n_columns``
    columns into trimmed fields, unquoted when wrapped in double quotes.

    Output ``record`` (the line without a stray final ``\\r``), ``block_start, row_pos``,
    ``_line_reason`` (``empty_line``, ``unparseable``, ``wrong_field_count`` or NULL) and
    ``_clean`` (the fields).
    """
    require_columns(lines.columns, ("line", "block_start", "row_pos"), "split_fields")
    quoted = r'^\s*"([^"]*)"\s*$'

    line = F.col("line")
    step1 = lines.select(
        # the text reader already splits on \n, \r\n and \r; drop a stray final \r
        F.when(line.endswith("\r"), F.expr("substring(line, 1, length(line) - 1)"))
        .otherwise(line)
        .alias("record"),
        "block_start",
        "row_pos",
    ).select("*", F.split("record", ",", -1).alias("_fields"))
    fields = F.col("_fields")
    has_quote = F.col("record").contains('"')
    bad_quoting = has_quote & ~F.forall(fields, lambda f: f.rlike(quoted) | ~f.contains('"'))
    clean = F.when(
        has_quote, F.transform(fields, lambda f: F.trim(F.regexp_replace(f, quoted, "$1")))
    ).otherwise(F.transform(fields, lambda f: F.trim(f)))
    step2 = step1.select(
        "record",
        "block_start",
        "row_pos",
        F.when(F.trim("record") == "", F.lit(EMPTY_LINE))
        .when(bad_quoting, F.lit(UNPARSEABLE))
        .when(F.size(fields) != n_columns, F.lit(WRONG_FIELD_COUNT))
        .alias("_line_reason"),
        clean.alias("_clean"),
    )
    return step2


def parse_rating_lines(lines: DataFrame, columns: list[str]) -> DataFrame:
    """Parse ratings lines with the header ``columns`` (fields found by name).

    Input ``line, block_start, row_pos``; output ``user_id, anime_id, rating`` (INT, NULL when
    rejected), ``record`` (the line), ``reason`` (NULL when valid; the row rules of
    :mod:`anime_recs.data.rules`, first failing check wins), ``block_start, row_pos``.
    Built-in functions only; a well-formed line costs one regular expression per field.
    """
    idx = {c: columns.index(c) for c in REQUIRED_COLUMNS[RATINGS_FILE]}
    step2 = split_fields(lines, len(columns))
    u = F.col("_clean")[idx["user_id"]]
    a = F.col("_clean")[idx["anime_id"]]
    r = F.col("_clean")[idx["rating"]]
    step3 = step2.select(
        "record",
        "block_start",
        "row_pos",
        u.alias("_u"),
        a.alias("_a"),
        r.alias("_r"),
        F.coalesce(
            F.col("_line_reason"), id_reason_column(u), id_reason_column(a), _rating_reason(r)
        ).alias("reason"),
    )
    ok = F.col("reason").isNull()
    return step3.select(
        F.when(ok, F.col("_u").cast("int")).alias("user_id"),
        F.when(ok, F.col("_a").cast("int")).alias("anime_id"),
        F.when(ok, F.col("_r").cast("double").cast("int")).alias("rating"),
        "record",
        "reason",
        "block_start",
        "row_pos",
    )


def reject_unknown_anime(df: DataFrame, anime_ids: DataFrame) -> DataFrame:
    """Set ``reason = 'unknown_anime_id'`` on valid rows whose ``anime_id`` is not in
    ``anime_ids`` (one INT column ``anime_id``, small: broadcast)."""
    for frame, cols in ((df, ("anime_id", "reason")), (anime_ids, ("anime_id",))):
        require_columns(frame.columns, cols, "reject_unknown_anime")
    known = F.broadcast(
        anime_ids.select(F.col("anime_id").alias("_known_id")).distinct()
    ).withColumn("_known", F.lit(True))
    joined = df.join(known, df["anime_id"] == known["_known_id"], "left")
    reason = F.when(
        F.col("reason").isNull() & F.col("_known").isNull(), F.lit(UNKNOWN_ANIME_ID)
    ).otherwise(F.col("reason"))
    return joined.select(*[reason.alias(c) if c == "reason" else F.col(c) for c in df.columns])


def reject_duplicates(df: DataFrame, values: tuple[str, ...] = ("rating",)) -> DataFrame:
    """Set ``reason = 'duplicate_key'`` on every valid row but the first, in file order
    ``(block_start, row_pos)``, of each (user_id, anime_id); drop the order columns and
    the record of accepted rows.

    One shuffle: a window partitioned by the key of valid rows; rejected rows get their own
    unique partition key (``row_pos``) so they do not pile up in one NULL-key partition.
    Output ``user_id, anime_id, <values>, record, reason`` (``values``: the value columns
    kept, NULL on rejected rows).
    """
    needed = ("user_id", "anime_id", *values, "record", "reason", "block_start", "row_pos")
    require_columns(df.columns, needed, "reject_duplicates")
    valid = F.col("reason").isNull()
    window = Window.partitionBy(
        F.when(valid, F.col("user_id")),
        F.when(valid, F.col("anime_id")),
        F.when(~valid, F.col("row_pos")),
    ).orderBy("block_start", "row_pos")
    ranked = df.select("*", F.row_number().over(window).alias("_rank"))
    reason = F.when(valid & (F.col("_rank") > 1), F.lit(DUPLICATE_KEY)).otherwise(F.col("reason"))
    ok = reason.isNull()
    return ranked.select(
        F.when(ok, F.col("user_id")).alias("user_id"),
        F.when(ok, F.col("anime_id")).alias("anime_id"),
        *[F.when(ok, F.col(v)).alias(v) for v in values],
        F.when(~ok, F.col("record")).alias("record"),
        reason.alias("reason"),
    )


def parse_ratings(
    spark: SparkSession, raw_dir: str | Path, columns: list[str], anime_ids: DataFrame
) -> DataFrame:
    """The ratings file judged line by line (lazy): ``user_id, anime_id, rating`` (NULL when
    rejected), ``record`` (NULL when accepted) and ``reason`` (NULL when accepted): the row
    rules (:func:`parse_rating_lines`, header ``columns``), titles missing from ``anime_ids``
    (:func:`reject_unknown_anime`) and duplicates, the first in file order kept
    (:func:`reject_duplicates`)."""
    lines = read_rating_lines(spark, input_path(raw_dir, RATINGS_FILE))
    return (
        parse_rating_lines(lines, columns)
        .transform(reject_unknown_anime, anime_ids)
        .transform(reject_duplicates)
    )
