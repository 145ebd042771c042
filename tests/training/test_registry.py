"""MLflow: logging + registering the encoder, finding it by fingerprint, loading it back."""

from __future__ import annotations

import mlflow  # noqa: E402 - after the SQLAlchemy shim
import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from anime_recs.config import MlflowConfig
from anime_recs.models import download_encoder, load_sentence_transformer, resolve_model_version
from anime_recs.tracking import configure_mlflow
from anime_recs.training.registry import (
    FINGERPRINT_TAG,
    find_registered,
    log_and_register,
    run_is_resumable,
)
from tests.helpers import mlflow_store


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """One SQLite tracking store for this module (creating one costs seconds)."""
    return str(tmp_path_factory.mktemp("mlflow"))


@pytest.fixture()
def tracking(store, request, monkeypatch):
    """This test's experiment in the module's store; downloads cached under the store."""
    monkeypatch.setenv("ANIME_RECS_MODEL_CACHE", f"{store}/cache/{request.node.name}")
    experiment_id = configure_mlflow(
        MlflowConfig(
            tracking_uri=mlflow_store(store),
            artifact_location=f"{store}/artifacts",
            registry_uri=None,
            experiment=request.node.name,
        )
    )
    yield experiment_id, mlflow.MlflowClient()
    if mlflow.active_run():
        mlflow.end_run()


def test_model_round_trips_through_the_registry(trained, tracking, val_pairs, tmp_path):
    experiment_id, client = tracking
    model, _ = trained
    with mlflow.start_run(tags={FINGERPRINT_TAG: "fp1"}) as run:
        first = log_and_register(model, "enc_rt", "fp1", client)
    with mlflow.start_run(tags={FINGERPRINT_TAG: "fp2"}):
        second = log_and_register(model, "enc_rt", "fp2", client)
    assert (first.version, second.version) == ("1", "2")
    assert client.get_model_version("enc_rt", "1").tags[FINGERPRINT_TAG] == "fp1"
    assert client.get_run(run.info.run_id).data.tags["anime_recs.registered_version"] == "1"

    texts = val_pairs.texts_a[:8] + val_pairs.texts_b[:8]
    expected = model.encode(texts)
    for uri in ("models:/enc_rt/latest", "models:/enc_rt/1", f"runs:/{run.info.run_id}/model"):
        folder = download_encoder(uri)
        loaded = SentenceTransformer(folder, device="cpu")
        np.testing.assert_allclose(loaded.encode(texts), expected, atol=1e-6, err_msg=uri)
        assert loaded.max_seq_length == model.max_seq_length
    assert download_encoder("models:/enc_rt/1") == download_encoder("models:/enc_rt/1")  # cached
    assert "enc_rt-v2-" in download_encoder("models:/enc_rt/latest")

    # the embed job's entry point: models.load_sentence_transformer with an MLflow URI
    via_models = load_sentence_transformer("models:/enc_rt/2", device="cpu")
    np.testing.assert_allclose(via_models.encode(texts), expected, atol=1e-6)
    explicit = download_encoder("models:/enc_rt/1", dst=str(tmp_path / "explicit"))
    assert explicit.startswith(str(tmp_path / "explicit"))


def test_resolve_model_version_latest_alias_and_errors(trained, tracking):
    _, client = tracking
    model, _ = trained
    for fp in ("a", "b", "c"):
        with mlflow.start_run():
            log_and_register(model, "enc_res", fp, client)
    client.set_registered_model_alias("enc_res", "champion", "2")
    assert resolve_model_version(client, "models:/enc_res/latest") == ("enc_res", "3")
    assert resolve_model_version(client, "models:/enc_res/1") == ("enc_res", "1")
    assert resolve_model_version(client, "models:/enc_res@champion") == ("enc_res", "2")
    with pytest.raises(ValueError, match="stages are not used"):
        resolve_model_version(client, "models:/enc_res/Production")
    with pytest.raises(ValueError, match="not a models:/ URI"):
        resolve_model_version(client, "runs:/abc/model")
    with pytest.raises(ValueError, match="not an MLflow model URI"):
        download_encoder("/some/folder")


def test_find_registered_needs_a_finished_run_with_a_version(trained, tracking):
    experiment_id, client = tracking
    model, _ = trained
    assert find_registered(client, experiment_id, "enc_find", "fp") is None
    with mlflow.start_run(tags={FINGERPRINT_TAG: "fp"}) as unregistered:
        pass  # finished, but nothing registered
    assert find_registered(client, experiment_id, "enc_find", "fp") is None
    with mlflow.start_run(tags={FINGERPRINT_TAG: "fp"}) as run:
        log_and_register(model, "enc_find", "fp", client)
    found = find_registered(client, experiment_id, "enc_find", "fp")
    assert (found.run_id, found.version, found.uri) == (run.info.run_id, "1", "models:/enc_find/1")
    assert find_registered(client, experiment_id, "enc_find", "other") is None
    assert find_registered(client, experiment_id, "other_model", "fp") is None

    crashed = mlflow.start_run(tags={FINGERPRINT_TAG: "fp2"})
    mlflow.end_run(status="FAILED")
    assert run_is_resumable(client, crashed.info.run_id, experiment_id)
    assert not run_is_resumable(client, unregistered.info.run_id, experiment_id)
    assert not run_is_resumable(client, None, experiment_id)
    assert not run_is_resumable(client, "0" * 32, experiment_id)
