"""Adapted embedders: the map on hand-computed examples, the stored file, the Spark rows."""

from __future__ import annotations

import numpy as np
import pytest

from anime_recs import tables
from anime_recs.embeddings.adapted import (
    VectorAdapter,
    adapt,
    adapted_rows,
    load_adapter,
    save_adapter,
)


def test_adapt_by_hand():
    # v = (1, 0); A = [[1, 0]] (rank 1), B = [[0], [1]]: B A v = (0, 1), f(v) = (1, 1) / sqrt 2
    got = adapt(
        np.array([[1.0, 0.0], [0.0, 2.0]]), np.array([[1.0, 0.0]]), np.array([[0.0], [1.0]])
    )
    np.testing.assert_allclose(got, [[2**-0.5, 2**-0.5], [0.0, 1.0]], atol=1e-7)


def test_untrained_adapter_is_the_identity_on_unit_vectors():
    v = np.array([[0.6, 0.8], [1.0, 0.0]])
    np.testing.assert_allclose(adapt(v, np.ones((3, 2)), np.zeros((2, 3))), v, atol=1e-7)


def some_adapter(seed: int = 0) -> VectorAdapter:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(2, 4)), rng.normal(size=(4, 2))
    return VectorAdapter(a.astype(np.float32), b.astype(np.float32), {"source": "src"})


def test_the_stored_adapter_round_trips_and_its_identity_is_its_matrices(tmp_path):
    adapter = some_adapter()
    save_adapter(adapter, tmp_path / "model" / "artifacts")
    loaded = load_adapter(tmp_path / "model")  # found below the folder, as in an MLflow model
    np.testing.assert_array_equal(loaded.a, adapter.a)
    np.testing.assert_array_equal(loaded.b, adapter.b)
    assert loaded.meta == {"source": "src"} and loaded.dim == 4
    assert loaded.identity == adapter.identity
    assert some_adapter(1).identity != adapter.identity
    with pytest.raises(FileNotFoundError, match="no adapter.npz under"):
        load_adapter(tmp_path / "model" / "nothing")


def test_adapted_rows_map_each_source_row_and_join_the_versions(spark):
    adapter = some_adapter()
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(5, 4))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    source = spark.createDataFrame(
        [
            ("src", i, [float(x) for x in v], 4, "m", None if i == 4 else "v1", f"h{i}")
            for i, v in enumerate(vectors)
        ],
        tables.ANIME_EMBEDDINGS_SCHEMA,
    ).repartition(2)
    rows = sorted(adapted_rows(source, adapter).collect(), key=lambda r: r.anime_id)
    assert [r.text_hash for r in rows] == [f"h{i}" for i in range(5)]
    np.testing.assert_allclose(
        np.array([r.embedding for r in rows]), adapt(vectors, adapter.a, adapter.b), atol=1e-6
    )
    # <adapter identity>+<source version>; a source row without a version keeps the prefix
    assert [r.model_version for r in rows] == [f"{adapter.identity}+v1"] * 4 + [
        f"{adapter.identity}+"
    ]
