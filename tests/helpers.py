"""What test modules of several folders share: the repository's paths, loading a job, the
``--set`` overrides of tests that run whole jobs or the pipeline, and a reader of the report
page's HTML. (Tests import helpers, never other test modules.)"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from functools import cache
from html.parser import HTMLParser
from pathlib import Path

from tools.job_loader import load_job

REPO = Path(__file__).resolve().parents[1]
CONF = str(REPO / "conf" / "local.yaml")
MODEL_NAME = "anime_encoder"  # finetune.registered_model of conf/base.yaml

__all__ = [
    "CONF",
    "MODEL_NAME",
    "REPO",
    "HtmlPage",
    "load_job",
    "mlflow_store",
    "output_settings",
    "set_args",
]


@cache
def migrated_store() -> Path:
    """An empty MLflow SQLite store with every schema migration applied, made once per
    process: a fresh store runs some forty Alembic migrations, seconds each time."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    from anime_recs.tracking import keep_logging

    folder = Path(tempfile.mkdtemp(prefix="mlflow_template_"))
    db = folder / "mlruns.db"
    with keep_logging():  # the migrations reconfigure logging as they would in a job
        SqlAlchemyStore(f"sqlite:///{db}", str(folder / "mlartifacts")).engine.dispose()
    return db


def mlflow_store(folder: Path) -> str:
    """The tracking URI of an MLflow SQLite store ``folder/mlruns.db``, created as MLflow
    creates one (a copy of :func:`migrated_store`, its ``Default`` experiment's artifacts
    under ``folder/mlartifacts``) unless it exists."""
    db = Path(folder) / "mlruns.db"
    if not db.exists():
        db.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(migrated_store(), db)
        with sqlite3.connect(db) as connection:
            connection.execute(
                "UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
                (str(Path(folder) / "mlartifacts" / "0"),),
            )
        connection.close()
    return f"sqlite:///{db}"


def output_settings(root: Path) -> dict[str, object]:
    """Every output of a run under ``root``: lake, reports, checkpoints, MLflow store."""
    return {
        "paths.lake": root / "lake",
        "paths.reports": root / "reports",
        "paths.checkpoints": root / "checkpoints",
        "mlflow.tracking_uri": mlflow_store(root),
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


class HtmlPage(HTMLParser):
    """What the tests read of a page: every table (its attributes and rows of cell texts),
    every image source, the verdict paragraph's text, every start tag and every text seen."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[dict] = []
        self.images: list[str] = []
        self.tags: list[str] = []
        self.verdict = ""
        self.text: list[str] = []
        self._cell: list[str] | None = None
        self._in_verdict = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        attributes = dict(attrs)
        if tag == "table":
            self.tables.append({"attrs": attributes, "rows": []})
        elif tag == "tr":
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(attributes["src"] or "")
        elif tag == "p" and attributes.get("id") == "verdict":
            self._in_verdict = True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1]["rows"][-1].append((tag, "".join(self._cell)))
            self._cell = None
        elif tag == "p":
            self._in_verdict = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._in_verdict:
            self.verdict += data
