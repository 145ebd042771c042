"""``--set`` overrides shared by the tests that run whole jobs or the pipeline."""

from __future__ import annotations

from pathlib import Path


def output_settings(root: Path) -> dict[str, object]:
    """Every output of a run under ``root``: lake, reports, checkpoints, MLflow store."""
    return {
        "paths.lake": root / "lake",
        "paths.reports": root / "reports",
        "paths.checkpoints": root / "checkpoints",
        "mlflow.tracking_uri": f"sqlite:///{root / 'mlruns.db'}",
        "mlflow.artifact_location": root / "mlartifacts",
    }


def set_args(sets: dict[str, object]) -> list[str]:
    """``{"a.b": 1}`` -> ``["--set", "a.b=1"]``."""
    return [x for k, v in sets.items() for x in ("--set", f"{k}={v}")]
