"""MLflow side of the fine-tune: run lookup by fingerprint, model logging/registration, download.

The model is logged with the ``mlflow.sentence_transformers`` flavour (it works with
mlflow 3.5.1 and sentence-transformers 5.1.2: the artifact holds the saved SentenceTransformer
folder under ``model.sentence_transformer/``) with explicit pip requirements, so logging never
asks a package index to infer them. Registered versions carry the training fingerprint as a
tag; a rerun finds the finished run with the same fingerprint and its registered version and
does not train or register again.

:func:`download_encoder` turns ``models:/NAME/latest``, ``models:/NAME/<version>``,
``models:/NAME@alias`` or ``runs:/<run id>/<path>`` into a local folder that
``SentenceTransformer(folder)`` loads. Registered versions are immutable, so downloads are
cached per (model, version) or (run, path).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FINGERPRINT_TAG = "anime_recs.fingerprint"
STAGE_TAG = "anime_recs.stage"
VERSION_TAG = "anime_recs.registered_version"
MODEL_ARTIFACT = "model"
ST_DATA_PATH = "model.sentence_transformer"  # mlflow.sentence_transformers' folder name
REQUIREMENTS = ("sentence-transformers", "transformers", "torch", "numpy")
CACHE_ENV = "ANIME_RECS_MODEL_CACHE"


@dataclass(frozen=True)
class RegisteredEncoder:
    run_id: str
    name: str
    version: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def pip_requirements() -> list[str]:
    """Pinned requirements of the logged model, from the installed versions (no index query)."""
    out = []
    for name in REQUIREMENTS:
        try:
            out.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover - always installed
            out.append(name)
    return out


FINGERPRINT_EXCLUDED = ("force", "logging_steps", "checkpoint_steps")


def training_fingerprint(finetune: dict[str, Any], input_versions: dict[str, Any]) -> str:
    """Identity of a training: hash of the fine-tune settings and the inputs' identities (the
    job passes content digests, ``lakehouse.table_digest``, so rewritten-but-equal inputs keep it).

    ``runlog.fingerprint("finetune", settings, inputs)`` (sha256 of canonical JSON, 16 hex
    chars) over the settings without those that do not change the model
    (:data:`FINGERPRINT_EXCLUDED`).
    """
    from anime_recs.runlog import fingerprint

    settings = {k: v for k, v in finetune.items() if k not in FINGERPRINT_EXCLUDED}
    return fingerprint("finetune", settings, input_versions)


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

    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("log_and_register needs an active MLflow run")
    info = mlflow.sentence_transformers.log_model(
        model,
        name=MODEL_ARTIFACT,
        pip_requirements=pip_requirements(),
        registered_model_name=registered_model,
    )
    version = str(info.registered_model_version)
    client.set_model_version_tag(registered_model, version, FINGERPRINT_TAG, fingerprint)
    mlflow.set_tag(VERSION_TAG, version)
    log.info("registered %s version %s (run %s)", registered_model, version, run.info.run_id)
    return RegisteredEncoder(run.info.run_id, registered_model, version)


# --------------------------------------------------------------------------------------------
# Download
# --------------------------------------------------------------------------------------------

_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>[^/]+)|@(?P<alias>[^/]+))/?$")
_RUNS_URI = re.compile(r"^runs:/(?P<run>[^/]+)(?:/(?P<path>.*))?$")


def resolve_model_version(client: Any, uri: str) -> tuple[str, str]:
    """``(name, version)`` for ``models:/NAME/<n>``, ``models:/NAME/latest``, ``models:/NAME@a``.

    ``latest`` is the highest version number (stages are not used).
    """
    m = _MODELS_URI.match(uri)
    if not m:
        raise ValueError(f"not a models:/ URI: {uri!r}")
    name, version, alias = m.group("name"), m.group("version"), m.group("alias")
    if alias:
        return name, str(client.get_model_version_by_alias(name, alias).version)
    if version and version.isdigit():
        return name, version
    if version and version.lower() == "latest":
        versions = client.search_model_versions(f"name = '{name}'")
        if not versions:
            raise LookupError(f"registered model {name!r} has no versions")
        return name, str(max(int(v.version) for v in versions))
    raise ValueError(f"unsupported model version {version!r} in {uri!r} (stages are not used)")


def _cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path(tempfile.gettempdir()) / "anime_recs_models")


def _sentence_transformer_folder(root: Path) -> Path:
    """The saved SentenceTransformer inside a downloaded artifact (MLflow model or plain)."""
    if (root / ST_DATA_PATH / "modules.json").is_file():
        return root / ST_DATA_PATH
    if (root / "modules.json").is_file():
        return root
    found = sorted(p.parent for p in root.rglob("modules.json"))
    if not found:
        raise FileNotFoundError(f"no saved SentenceTransformer (modules.json) under {root}")
    return found[0]


def download_encoder(uri: str, dst: str | None = None) -> str:
    """Download an MLflow model URI and return the local SentenceTransformer folder.

    Accepts ``models:/NAME/<version>``, ``models:/NAME/latest``, ``models:/NAME@alias`` and
    ``runs:/<run id>/<artifact path>``. The tracking/registry URIs are MLflow's current ones
    (``configure_mlflow`` or the ``MLFLOW_TRACKING_URI`` environment). Without ``dst`` the
    files are cached under ``$ANIME_RECS_MODEL_CACHE`` (default: a folder in the temp dir),
    keyed by the registry's URI and the resolved version or run, so repeated loads do not
    download again.
    """
    import mlflow

    client = mlflow.MlflowClient()
    if uri.startswith("models:/"):
        name, version = resolve_model_version(client, uri)
        source = f"models:/{name}/{version}"
        run_id = client.get_model_version(name, version).run_id or "norun"
        key = f"{name}-v{version}-{run_id[:12]}"
    elif _RUNS_URI.match(uri):
        m = _RUNS_URI.match(uri)
        source = uri
        key = f"run-{m.group('run')}-{(m.group('path') or '').strip('/').replace('/', '_')}"
    else:
        raise ValueError(f"not an MLflow model URI: {uri!r}")
    if dst:
        local = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=dst)
        return str(_sentence_transformer_folder(Path(local)))
    store = hashlib.sha256(_absolute_uri(mlflow.get_registry_uri()).encode()).hexdigest()[:8]
    target = _cache_root() / store / key
    if not (target / ".complete").is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=target.parent))
        try:
            mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(tmp))
            (tmp / ".complete").write_text(source)
            if target.exists() and not (target / ".complete").is_file():
                shutil.rmtree(target, ignore_errors=True)  # an earlier, broken download
            try:
                tmp.rename(target)
            except OSError:  # another process finished the same download first
                if not (target / ".complete").is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log.info("downloaded %s (%s) to %s", uri, source, target)
    return str(_sentence_transformer_folder(target))


def _absolute_uri(uri: str) -> str:
    """``sqlite:///relative.db`` made absolute, so cache keys differ between working dirs."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + str(Path(uri[len("sqlite:///") :]).absolute())
    if "://" not in uri:
        return str(Path(uri).absolute())
    return uri
