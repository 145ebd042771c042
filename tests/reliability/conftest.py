"""The ingested lake that the storage-fault tests damage copies of, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from anime_recs import tables
from anime_recs.lakehouse import table_version
from tests.helpers import load_job
from tests.reliability.lake_jobs import job_args


@pytest.fixture(scope="session")
def ingested_lake(spark, tiny_raw, tmp_path_factory) -> Path:
    """``ingest`` run twice on the generator's tiny data: ``ratings`` and ``anime`` have
    versions 0 and 1 (same contents, different files). Never damaged: tests copy it."""
    lake = tmp_path_factory.mktemp("ingested") / "lake"
    ingest = load_job("ingest")
    for _ in range(2):  # the second unchanged: forced
        assert ingest.main([*job_args(lake, tiny_raw), "--force"]) == 0
    assert table_version(spark, str(lake), tables.RATINGS) == 1
    return lake
