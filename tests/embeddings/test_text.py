"""Description normalisation and hashing: the Python rule and its Spark twin agree."""

import hashlib

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from anime_recs.embeddings.text import (
    normalise_text,
    normalised_text_col,
    text_hash,
    text_hash_col,
    titles_to_embed,
)

TRICKY = [
    "plain",
    "  leading and trailing  ",
    "tabs\tand\nnew\r\nlines",
    "form\x0cfeed and\x0bvertical tab",
    "non-breaking\u00a0space stays",
    "ideographic\u3000space stays",
    "émigré café — naïve 日本語",
    "",
]


def test_normalise_text_pinned():
    assert normalise_text("  a \t b\n\nc  ") == "a b c"
    assert normalise_text("x\u00a0y") == "x\u00a0y"  # only ASCII whitespace collapses


def test_text_hash_is_sha256_of_normalised_text():
    assert text_hash(" a  b ") == hashlib.sha256(b"a b").hexdigest()
    assert text_hash("a b") == text_hash("a\n b")


def test_spark_twin_matches_python(spark):
    df = spark.createDataFrame([(i, t) for i, t in enumerate(TRICKY)], "i INT, t STRING")
    got = df.select("i", normalised_text_col(F.col("t")).alias("n")).select(
        "i", "n", text_hash_col(F.col("n")).alias("h")
    )
    expected = spark.createDataFrame(
        [(i, normalise_text(t), text_hash(t)) for i, t in enumerate(TRICKY)],
        "i INT, n STRING, h STRING",
    )
    assertDataFrameEqual(got, expected)


def test_titles_to_embed_keeps_described_titles(spark, anime_df):
    got = titles_to_embed(anime_df)
    assert got.columns == ["anime_id", "text", "text_hash"]
    rows = {r.anime_id: r for r in got.collect()}
    assert sorted(rows) == [1, 2, 3, 4, 5, 6]  # 7: no description, 8: whitespace only
    assert rows[3].text == "A detective with a notebook that kills."
    assert rows[2].text_hash == text_hash(rows[2].text)


def test_titles_to_embed_requires_columns(spark):
    with pytest.raises(ValueError, match=r"missing columns \['description', 'has_description'\]"):
        titles_to_embed(spark.createDataFrame([(1,)], "anime_id INT"))
