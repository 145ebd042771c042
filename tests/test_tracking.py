import logging

from anime_recs.config import MlflowConfig
from anime_recs.tracking import configure_mlflow


def test_fresh_sqlite_store_keeps_the_job_logging_and_prints_no_migration(tmp_path, capfd):
    root = logging.getLogger()
    handler = logging.NullHandler()
    root.addHandler(handler)
    job_logger = logging.getLogger("anime_recs.jobs.example")
    before_level = root.level
    root.setLevel(logging.INFO)  # a job's default level
    try:
        config = MlflowConfig(
            tracking_uri=f"sqlite:///{tmp_path}/mlruns.db",
            artifact_location=str(tmp_path / "artifacts"),
            registry_uri=None,
            experiment="logging-check",
        )
        experiment_id = configure_mlflow(config)  # runs the alembic migrations
        assert experiment_id
        assert handler in root.handlers
        assert root.level == logging.INFO
        assert not job_logger.disabled
        assert "alembic" not in capfd.readouterr().err  # the migrations: start-up chatter
        assert logging.root.manager.disable == logging.NOTSET  # INFO records flow again
    finally:
        root.setLevel(before_level)
        root.removeHandler(handler)
