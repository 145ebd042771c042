"""MLflow side of the fine-tune: run lookup by fingerprint, model logging and registration.

The model is logged with the ``mlflow.sentence_transformers`` flavour (it works with
mlflow 3.5.1 and sentence-transformers 5.1.2: the artifact holds the saved SentenceTransformer
folder under ``models.ST_DATA_PATH``) with explicit pip requirements, so logging never
asks a package index to infer them. Registered versions carry the stage's fingerprint
(``runlog.fingerprint`` of the fine-tune settings and its inputs' contents) as a tag; a rerun
finds the finished run with the same fingerprint and its registered version and does not train
or register again.

Resolving and downloading a registered model (``models:/NAME@alias`` and the like) is
``anime_recs.models``: the embed stage and the pipeline's fingerprints use it too.
"""

from __future__ import annotations

import importlib.metadata
import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

FINGERPRINT_TAG = "anime_recs.fingerprint"
STAGE_TAG = "anime_recs.stage"
VERSION_TAG = "anime_recs.registered_version"
MODEL_ARTIFACT = "model"
REQUIREMENTS = ("sentence-transformers", "transformers", "torch", "numpy")


@dataclass(frozen=True)
class RegisteredEncoder:
    run_id: str
    name: str
    version: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def pip_requirements(names: tuple[str, ...] = REQUIREMENTS) -> list[str]:
    """Pinned requirements of a logged model, from the installed versions (no index query)."""
    out = []
    for name in names:
        try:
            out.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover - always installed
            out.append(name)
    return out


# --------------------------------------------------------------------------------------------
# Lookups
# --------------------------------------------------------------------------------------------


def find_registered(
    client: Any, experiment_id: str, registered_model: str, fingerprint: str
) -> RegisteredEncoder | None:
    """The newest finished run tagged with ``fingerprint`` that has a registered version."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{FINGERPRINT_TAG}` = '{fingerprint}' and attributes.status = "
        "'FINISHED'",
        order_by=["attributes.start_time DESC"],
    )
    for run in runs:
        versions = client.search_model_versions(
            f"name = '{registered_model}' and run_id = '{run.info.run_id}'"
        )
        if versions:
            newest = max(versions, key=lambda v: int(v.version))
            return RegisteredEncoder(run.info.run_id, registered_model, str(newest.version))
    return None


def registered_already(
    client: Any, experiment_id: str, registered_model: str, fingerprint: str, force: bool
) -> bool:
    """True (and says so) when ``fingerprint`` was trained and registered already and the
    run is not forced (``force``: ``StageRun.forced``): the finetune stage then has nothing
    to do."""
    if force:
        return False
    done = find_registered(client, experiment_id, registered_model, fingerprint)
    if done is None:
        return False
    log.info(
        "fingerprint %s already trained in run %s and registered as %s: skipped "
        "(--force or --set finetune.force=true trains again)",
        fingerprint,
        done.run_id,
        done.uri,
    )
    return True


def run_is_resumable(client: Any, run_id: str | None, experiment_id: str) -> bool:
    """True when ``run_id`` exists in ``experiment_id`` and did not finish (crashed/killed)."""
    if not run_id:
        return False
    try:
        run = client.get_run(run_id)
    except Exception:  # noqa: BLE001 - deleted or unknown run: start a new one
        return False
    return run.info.experiment_id == experiment_id and run.info.status != "FINISHED"


# --------------------------------------------------------------------------------------------
# Logging and registration
# --------------------------------------------------------------------------------------------


def log_and_register(
    model: Any, registered_model: str, fingerprint: str, client: Any
) -> RegisteredEncoder:
    """Log ``model`` to the active run (sentence-transformers flavour) and register a version."""
    import mlflow

    if mlflow.active_run() is None:
        raise RuntimeError("log_and_register needs an active MLflow run")
    info = mlflow.sentence_transformers.log_model(
        model,
        name=MODEL_ARTIFACT,
        pip_requirements=pip_requirements(),
        registered_model_name=registered_model,
    )
    return _tag_version(client, registered_model, str(info.registered_model_version), fingerprint)


def _tag_version(
    client: Any, registered_model: str, version: str, fingerprint: str
) -> RegisteredEncoder:
    import mlflow

    run = mlflow.active_run()
    client.set_model_version_tag(registered_model, version, FINGERPRINT_TAG, fingerprint)
    mlflow.set_tag(VERSION_TAG, version)
    log.info("registered %s version %s (run %s)", registered_model, version, run.info.run_id)
    return RegisteredEncoder(run.info.run_id, registered_model, version)
