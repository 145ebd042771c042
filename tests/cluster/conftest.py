"""Fixtures for the cluster tests: a standalone cluster (1 master, 2 workers on 127.0.0.1) that is
stopped at the end whatever happens, the project package to ship, and a spark-submit runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from tools.standalone_cluster import REPO_ROOT, SPARK_HOME, StandaloneCluster, Submit, make_submit

from anime_recs.submit import build_wheel, py_files_zip


@pytest.fixture(scope="session")
def standalone_cluster(tmp_path_factory):
    """One master and two 1-core workers on 127.0.0.1, stopped at the end whatever happens."""
    if not (SPARK_HOME / "bin" / "spark-class").is_file():
        pytest.skip("pyspark distribution without bin/spark-class")
    cluster = StandaloneCluster(tmp_path_factory.mktemp("standalone"))
    try:
        cluster.start(n_workers=2)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def py_files(tmp_path_factory) -> Path:
    """The project wheel built fresh from the working tree, as the .zip that --py-files ships."""
    return py_files_zip(build_wheel(REPO_ROOT, tmp_path_factory.mktemp("dist")))


@pytest.fixture()
def submit(standalone_cluster, py_files, tmp_path) -> Submit:
    """spark-submit helper bound to the cluster, the project zip and a fresh non-repo cwd."""
    return make_submit(standalone_cluster, py_files, tmp_path)
