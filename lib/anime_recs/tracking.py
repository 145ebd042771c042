"""MLflow setup shared by the jobs that track runs or load registered models."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from anime_recs.config import MlflowConfig
from anime_recs.paths import is_uri

log = logging.getLogger(__name__)


@contextmanager
def keep_logging() -> Iterator[None]:
    """Keep the job's logging as it is across MLflow calls.

    A fresh SQLite tracking store runs alembic migrations, whose ``logging.config.fileConfig``
    replaces the root handlers and level, disables every existing logger and prints each
    migration at INFO (some 40 lines of start-up chatter); the job would go silent afterwards.
    Below DEBUG the block's INFO records are dropped; the root handlers and level are restored
    and the loggers re-enabled afterwards.
    """
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    disabled = logging.root.manager.disable
    if not root.isEnabledFor(logging.DEBUG):
        logging.disable(logging.INFO)
    try:
        yield
    finally:
        logging.disable(disabled)
        root.handlers[:] = handlers
        root.setLevel(level)
        for logger in logging.Logger.manager.loggerDict.values():
            if isinstance(logger, logging.Logger):
                logger.disabled = False


def set_mlflow_uris(config: MlflowConfig) -> None:
    """Point MLflow at the configured tracking and registry stores."""
    import mlflow

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(config.tracking_uri)
    if config.registry_uri:
        mlflow.set_registry_uri(config.registry_uri)


def configure_mlflow(config: MlflowConfig) -> str:
    """Point MLflow at the configured stores and experiment; return the experiment id.

    New experiments get ``artifact_location`` (a local folder by default) so runs work with
    a SQLite tracking store; existing experiments keep theirs.
    """
    import mlflow

    with keep_logging():
        set_mlflow_uris(config)
        experiment = mlflow.get_experiment_by_name(config.experiment)
        if experiment is None:
            location = config.artifact_location
            if location and not is_uri(location):
                location = Path(location).absolute().as_uri()
            experiment_id = mlflow.create_experiment(config.experiment, artifact_location=location)
        else:
            experiment_id = experiment.experiment_id
        mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def dotted_params(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` as MLflow params: nested sections flattened to ``prefix.section.key``."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(dotted_params(f"{prefix}.{key}", value))
        else:
            out[f"{prefix}.{key}"] = value
    return out
