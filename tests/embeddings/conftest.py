"""Embedding fixtures: titled anime rows (the tiny random model ``tiny_model_dir`` is shared,
in tests/conftest.py)."""

from __future__ import annotations

import pytest

from anime_recs.tables import ANIME_SCHEMA
from tests.embeddings.embed_data import DESCRIPTIONS, anime_row


@pytest.fixture()
def anime_df(spark):
    """Six titled anime, one without a description, one with only whitespace."""
    rows = [anime_row(i, d, True) for i, d in DESCRIPTIONS.items()]
    rows.append(anime_row(7, None, False))
    rows.append(anime_row(8, "   ", True))
    return spark.createDataFrame(rows, ANIME_SCHEMA)
