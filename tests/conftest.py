"""Shared fixtures: one session-scoped SparkSession with Delta, seeded tiny data, temp dirs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from anime_recs.config import load_config
from anime_recs.spark import get_spark

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_MAL = REPO_ROOT.parent / "shared" / "data" / "mal2020"
NO_CODEGEN = {
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
}


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    warehouse = tmp_path_factory.mktemp("warehouse")
    extra = {
        "spark.sql.warehouse.dir": str(warehouse),
        "spark.default.parallelism": "2",
        "spark.databricks.delta.snapshotPartitions": "2",
        # the tests' tables hold tens of rows: compiling generated Java for each query costs
        # more than running it interpreted. Results do not depend on the mode (Spark's own
        # suites run both); jobs keep codegen, as do the tests that start a job in its own
        # process or on the cluster; ANIME_RECS_TEST_CODEGEN=1 runs this session with it too
        **({} if os.environ.get("ANIME_RECS_TEST_CODEGEN") else NO_CODEGEN),
    }
    sets = ["spark.master=local[2]", "spark.shuffle_partitions=2", "spark.driver_memory=2g"]
    settings = load_config(str(REPO_ROOT / "conf" / "local.yaml"), sets).spark
    session = get_spark(settings.model_copy(update={"extra": extra}), "ERROR", "tests")
    yield session
    session.stop()


@pytest.fixture()
def lake(tmp_path) -> str:
    """A fresh folder for this test's Delta tables."""
    path = tmp_path / "lake"
    path.mkdir()
    return str(path)


@pytest.fixture(scope="session")
def shared_mal() -> Path:
    """The real MAL 2020 files (read-only, never copied); skips when the folder is absent."""
    if not SHARED_MAL.is_dir() and not os.environ.get("ANIME_RECS_SHARED_MAL"):
        pytest.skip("../shared/data/mal2020 not present")
    return Path(os.environ.get("ANIME_RECS_SHARED_MAL", SHARED_MAL))


@pytest.fixture(scope="session")
def tiny_raw(tmp_path_factory) -> Path:
    """The generator's ``tiny`` scale (3 MAL files), written once per session with seed 7."""
    from malgen.generate import SCALES, generate_dataset

    out = tmp_path_factory.mktemp("raw_tiny")
    tiny = SCALES["tiny"]
    generate_dataset(out, tiny.users, tiny.titles, tiny.ratings, seed=7)
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    """A tiny random BERT sentence-transformer folder (tests/tiny_model.py), built once."""
    from tests.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_bert"))
