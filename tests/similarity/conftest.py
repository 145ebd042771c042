"""Fixtures for the similarity tests (helpers live in ``jaccard_data``)."""

from __future__ import annotations

import pytest

from anime_recs.tables import RATINGS_SCHEMA
from tests.similarity.jaccard_data import make_ratings


@pytest.fixture(scope="session")
def generated_ratings() -> list[tuple[int, int, int, str]]:
    return make_ratings()


@pytest.fixture()
def ratings_df(spark, generated_ratings):
    return spark.createDataFrame(generated_ratings, RATINGS_SCHEMA)
