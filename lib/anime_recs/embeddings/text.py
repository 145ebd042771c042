"""The text an embedder sees and its identity: whitespace normalisation and the SHA-256 hash.

Every embedder embeds the *normalised* description, and ``text_hash`` is the SHA-256 of that
normalised text, so the hash names exactly what was embedded (the OpenAI cache key and the
``anime_embeddings.text_hash`` column). The same rule exists twice, as a Python function (the
OpenAI path, tests) and as a Spark column expression (the job); a test pins them on tricky
strings. The whitespace class is spelled out explicitly because Python's ``\\s`` and Java's
``\\s`` disagree on Unicode spaces.
"""

from __future__ import annotations

import hashlib
import re

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from anime_recs.tables import require_columns

# ASCII whitespace only: space, \t, \n, \r, \f, \v - identical in Python and Java regexes
_PY_WHITESPACE = re.compile("[ \t\n\r\f\x0b]+")
_JAVA_WHITESPACE = "[ \\t\\n\\r\\f\\x0B]+"


def normalise_text(text: str) -> str:
    """Collapse runs of ASCII whitespace to one space and strip spaces at both ends."""
    return _PY_WHITESPACE.sub(" ", text).strip(" ")


def text_hash(text: str) -> str:
    """SHA-256 (hex) of the UTF-8 bytes of ``normalise_text(text)``."""
    return hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()


def normalised_text_col(col: Column) -> Column:
    """Spark twin of :func:`normalise_text` (regexp_replace + trim of spaces)."""
    return F.trim(F.regexp_replace(col, _JAVA_WHITESPACE, " "))


def text_hash_col(normalised: Column) -> Column:
    """Spark twin of :func:`text_hash` for an already normalised column: sha2(text, 256)."""
    return F.sha2(normalised, 256)


def titles_to_embed(anime: DataFrame) -> DataFrame:
    """Titles with a usable description -> (anime_id, text, text_hash), text normalised.

    Keeps rows with ``has_description`` whose normalised description is not empty.
    """
    require_columns(anime.columns, ("anime_id", "description", "has_description"), "anime")
    text = normalised_text_col(F.col("description"))
    return (
        anime.filter(F.col("has_description") & F.col("description").isNotNull())
        .select(F.col("anime_id").cast("int").alias("anime_id"), text.alias("text"))
        .filter(F.length("text") > 0)
        .select("anime_id", "text", text_hash_col(F.col("text")).alias("text_hash"))
    )
