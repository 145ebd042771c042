"""Embedding fixtures: titled anime rows (the tiny random model ``tiny_model_dir`` is shared,
in tests/conftest.py)."""

from __future__ import annotations

import pytest
from tests.tiny_model import TINY_MAX_SEQ  # noqa: F401 - re-exported for the tests

from anime_recs.tables import ANIME_SCHEMA

DESCRIPTIONS = {
    1: "A boy and his robot travel the galaxy looking for a lost planet.",
    2: "High school students form a volleyball team\nand aim for the national finals.",
    3: "  A detective   with a notebook that kills.  ",
    4: "Cooking battles decide the fate of a famous culinary academy.",
    5: "A quiet slice-of-life story about a girl who moves to the countryside "
    "and learns to grow vegetables with her grandmother, season after season.",
    6: "Mecha pilots defend the last city of humanity against giant invaders.",
}


def anime_row(anime_id: int, description: str | None, has_description: bool) -> dict:
    row = {f.name: None for f in ANIME_SCHEMA.fields}
    row.update(
        anime_id=anime_id,
        name=f"Title {anime_id}",
        description=description,
        has_description=has_description,
        description_source="synopsis",
    )
    return row


@pytest.fixture()
def anime_df(spark):
    """Six titled anime, one without a description, one with only whitespace."""
    rows = [anime_row(i, d, True) for i, d in DESCRIPTIONS.items()]
    rows.append(anime_row(7, None, False))
    rows.append(anime_row(8, "   ", True))
    return spark.createDataFrame(rows, ANIME_SCHEMA)
