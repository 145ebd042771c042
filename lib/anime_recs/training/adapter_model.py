"""The registered form of a vector adapter: an MLflow ``pyfunc`` model.

The artifact is the adapter file (:func:`anime_recs.embeddings.adapted.save_adapter`); the
embed stage reads that file directly, and anyone else can load the model with
``mlflow.pyfunc.load_model("models:/anime_adapter/<n>")`` and call ``predict`` on a
``[rows, dim]`` array of the source embedder's vectors to get the adapted ones. Imports mlflow
at module level: imported only where a model is logged or loaded.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import numpy as np

from anime_recs.embeddings.adapted import adapt, load_adapter

ARTIFACT_KEY = "adapter"


class AdapterModel(mlflow.pyfunc.PythonModel):
    """``predict(vectors)`` = the adapted vectors (:func:`~anime_recs.embeddings.adapted.adapt`)."""

    def load_context(self, context: Any) -> None:
        self.adapter = load_adapter(context.artifacts[ARTIFACT_KEY])

    # no type hints on predict: MLflow would read them as an input schema; the logged model
    # carries its signature (signature())
    def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201
        rows = model_input.to_numpy() if hasattr(model_input, "to_numpy") else model_input
        vectors = np.asarray([np.asarray(r, np.float32).ravel() for r in rows], np.float32)
        return adapt(vectors, self.adapter.a, self.adapter.b)


def signature(dim: int) -> Any:
    """``[rows, dim]`` float32 in, the same shape out."""
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    spec = Schema([TensorSpec(np.dtype(np.float32), (-1, dim))])
    return ModelSignature(inputs=spec, outputs=spec)
