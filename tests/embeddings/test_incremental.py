"""Incremental sentence-transformers embeddings: a rerun encodes only new or changed texts,
and gives the same vectors as a full run; a new model version re-embeds everything."""

import logging

import numpy as np
import pytest
from pyspark.sql import functions as F

from anime_recs.lakehouse import read_table
from anime_recs.tables import ANIME_EMBEDDINGS
from tests.embeddings.embed_data import (
    DESCRIPTIONS,
    TINY_MAX_SEQ,
    counts_logged,
    run_job,
    tiny,
    write_anime,
)

pytestmark = pytest.mark.e2e  # job reruns


def vectors(spark, lake) -> dict[int, tuple[str, str, np.ndarray]]:
    rows = read_table(spark, lake, ANIME_EMBEDDINGS).filter(F.col("embedder") == "tiny").collect()
    return {
        r.anime_id: (r.text_hash, r.model_version, np.asarray(r.embedding, np.float32))
        for r in rows
    }


def test_rerun_embeds_only_new_titles_and_equals_a_full_run(
    spark, tmp_path, tiny_model_dir, caplog
):
    caplog.set_level(logging.INFO)
    lake, full_lake = str(tmp_path / "lake"), str(tmp_path / "full")
    first = {i: DESCRIPTIONS[i] for i in (1, 2, 3, 4)}
    write_anime(spark, lake, first)
    embedders = {"tiny": tiny(tiny_model_dir)}
    assert run_job(lake, ["tiny"], embedders) == 0
    assert counts_logged(caplog) == (0, 4)

    # two new titles and one changed description: only those three are encoded
    later = {**DESCRIPTIONS, 4: DESCRIPTIONS[4] + " A rival school appears."}
    write_anime(spark, lake, later)
    assert run_job(lake, ["tiny"], embedders) == 0
    assert counts_logged(caplog) == (3, 3)

    write_anime(spark, full_lake, later)
    assert run_job(full_lake, ["tiny"], embedders) == 0
    assert counts_logged(caplog) == (0, 6)
    got, want = vectors(spark, lake), vectors(spark, full_lake)
    assert sorted(got) == sorted(want) == [1, 2, 3, 4, 5, 6]
    for i in want:
        assert got[i][:2] == want[i][:2]  # text_hash, model_version
        np.testing.assert_allclose(got[i][2], want[i][2], atol=1e-5)

    # another version of the encoder (a new window) re-embeds everything
    assert run_job(lake, ["tiny"], {"tiny": tiny(tiny_model_dir, 8)}) == 0
    assert counts_logged(caplog) == (0, 6)
    new_version = want[1][1].replace(f"seq{TINY_MAX_SEQ}", "seq8")
    assert {v[1] for v in vectors(spark, lake).values()} == {new_version}
