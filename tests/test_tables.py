"""Helpers of the table contracts: required-column check, DDL of a UDF's output."""

from __future__ import annotations

import pandas as pd
import pytest

from anime_recs import tables
from anime_recs.recommend.scoring import USER_LISTS_DDL, USER_LISTS_SCHEMA


def test_require_columns_names_the_frame_and_every_missing_column():
    frame = pd.DataFrame(columns=["user_id", "rating"])
    tables.require_columns(frame.columns, ("rating", "user_id"), "ratings")  # no error
    message = r"^ratings: missing columns \['anime_id', 'split'\] \(have \['user_id', 'rating'\]\)$"
    with pytest.raises(ValueError, match=message):
        tables.require_columns(frame.columns, ("split", "user_id", "anime_id"), "ratings")


def test_user_lists_ddl_is_the_user_scores_schema_with_nullable_columns():
    assert USER_LISTS_DDL == (
        "recommender string, view string, user_id int, anime_ids array<int>, "
        "scores array<double>, test_ratings array<int>, promoted_test int, test_titles int"
    )
    # the Arrow batches the scoring writes have the same columns in the same order
    assert USER_LISTS_SCHEMA.names == tables.USER_SCORES_SCHEMA.fieldNames()
