"""The ingested lake that the storage-fault tests damage copies of, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.reliability.test_pipeline_guarantees import load_job
from tests.reliability.test_storage_faults import job_args

from anime_recs import tables
from anime_recs.lakehouse import table_version


@pytest.fixture(scope="session")
def ingested_lake(spark, tiny_raw, tmp_path_factory) -> Path:
    """``ingest`` run twice on the generator's tiny data: ``ratings`` and ``anime`` have
    versions 0 and 1 (same contents, different files). Never damaged: tests copy it."""
    lake = tmp_path_factory.mktemp("ingested") / "lake"
    ingest = load_job("ingest")
    for _ in range(2):
        assert ingest.main(job_args(lake, tiny_raw)) == 0
    assert table_version(spark, str(lake), tables.RATINGS) == 1
    return lake
