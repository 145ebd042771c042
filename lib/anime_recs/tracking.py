"""MLflow setup shared by the jobs that track runs (fine-tune, recommend, pipeline)."""

from __future__ import annotations

import logging

from anime_recs.config import MlflowConfig

log = logging.getLogger(__name__)


def configure_mlflow(config: MlflowConfig) -> str:
    """Point MLflow at the configured tracking/registry store; return the experiment id.

    New experiments get ``artifact_location`` (a local folder by default) so runs work with
    a SQLite tracking store; existing experiments keep theirs.
    """
    import os

    import mlflow

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(config.tracking_uri)
    if config.registry_uri:
        mlflow.set_registry_uri(config.registry_uri)
    experiment = mlflow.get_experiment_by_name(config.experiment)
    if experiment is None:
        location = None
        if config.artifact_location:
            from pathlib import Path

            location = config.artifact_location
            if "://" not in location:
                location = Path(location).absolute().as_uri()
        experiment_id = mlflow.create_experiment(config.experiment, artifact_location=location)
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id
