"""Embedding fixtures: titled anime rows (the tiny random model ``tiny_model_dir`` is shared,
in tests/conftest.py)."""

from __future__ import annotations

import pytest

from anime_recs.tables import ANIME_SCHEMA
from tests.embeddings.embed_data import anime_rows


@pytest.fixture()
def anime_df(spark):
    """Six titled anime, one without a description, one with only whitespace."""
    return spark.createDataFrame(anime_rows(), ANIME_SCHEMA)
