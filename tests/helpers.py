"""What test modules of several folders share: the repository's paths, loading a job, and the
``--set`` overrides of tests that run whole jobs or the pipeline. (Tests import helpers, never
other test modules.)"""

from __future__ import annotations

from pathlib import Path

from tools.job_loader import load_job

REPO = Path(__file__).resolve().parents[1]
CONF = str(REPO / "conf" / "local.yaml")
MODEL_NAME = "anime_encoder"  # finetune.registered_model of conf/base.yaml

__all__ = ["CONF", "MODEL_NAME", "REPO", "load_job", "output_settings", "set_args"]


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


def pipeline_settings(root: Path, model_dir: str, openai_url: str) -> list[str]:
    """``--set`` overrides of a whole pipeline run: every output under ``root``, tiny and
    fast, models offline (the tiny random encoder), OpenAI at ``openai_url``."""
    sets = {
        **output_settings(root),
        # the test session's settings (getOrCreate applies SQL confs to the shared session)
        "spark.shuffle_partitions": 2,
        "embed.partitions": 1,
        "embed.embedders.base_minilm_128.model": model_dir,
        "embed.embedders.base_minilm_128.max_seq_length": 64,
        "embed.embedders.finetuned_minilm.max_seq_length": 64,  # tiny model: 128 positions
        "embed.embedders.openai_small.base_url": openai_url,
        "embed.embedders.openai_small.max_retries": 1,
        "finetune.base_model": model_dir,
        "finetune.max_seq_length": 64,
        "finetune.epochs": 1,
        "finetune.max_train_pairs": 32,
        "finetune.checkpoint_steps": 0,
        "jaccard.title_blocks": 2,
        "recommend.bootstrap_samples": 20,
    }
    return set_args(sets)
