"""Exports of ``user_recommendations`` for downstream systems, published atomically.

An export folder ``PATH`` holds

- ``parquet/``: the table's rows as Parquet, partitioned by ``recommender``
  (``parquet/recommender=<name>/part-*.parquet``);
- ``jsonl/``: JSON Lines, one object per user in ``user_id`` order,
  ``{"user_id": ..., "items": [{"anime_id", "name", "score", "because"}, ...]}`` with the
  items in rank order.

Both are written into a temporary sibling folder ``.<name>.tmp-<id>`` that is renamed to
``PATH`` once complete; a previous export is first moved aside to ``.<name>.old-<id>`` and
removed after the swap. A process killed while writing leaves ``PATH`` as it was (only the
temporary folder, removed by the next export, is left behind); one killed between the two
renames leaves the previous export under ``.old-``, which the next export puts back before
anything else. Local folders only (a rename on an object store is a copy).
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from anime_recs.errors import JobError

log = logging.getLogger(__name__)

PARQUET_DIR = "parquet"
JSONL_DIR = "jsonl"
ITEM_FIELDS = ("anime_id", "name", "score", "because")


def json_lines_frame(recommendations: DataFrame) -> DataFrame:
    """One row per user: ``user_id`` and ``items`` (array of structs :data:`ITEM_FIELDS`, by
    rank), ordered by ``user_id``."""
    item = F.struct("rank", *ITEM_FIELDS)
    return (
        recommendations.groupBy("user_id")
        .agg(F.array_sort(F.collect_list(item)).alias("_items"))
        .select(
            "user_id",
            F.transform("_items", lambda x: F.struct(*[x[f].alias(f) for f in ITEM_FIELDS])).alias(
                "items"
            ),
        )
        .orderBy("user_id")
    )


def _siblings(target: Path, kind: str) -> list[Path]:
    return sorted(target.parent.glob(f".{target.name}.{kind}-*"))


def recover(target: Path) -> None:
    """Undo what a killed export left: put a moved-aside export back when ``target`` is
    missing, remove temporary and moved-aside folders."""
    old = _siblings(target, "old")
    if not target.exists() and old:
        os.rename(old[-1], target)
        log.warning("export %s: restored the previous export left aside by a killed run", target)
        old = old[:-1]
    for leftover in [*_siblings(target, "tmp"), *old]:
        shutil.rmtree(leftover, ignore_errors=True)


def publish(tmp: Path, target: Path) -> None:
    """Rename the complete ``tmp`` folder to ``target``, replacing a previous export."""
    aside = None
    if target.exists():
        aside = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:12]}"
        os.rename(target, aside)
    os.rename(tmp, target)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def export_recommendations(recommendations: DataFrame, path: str | Path) -> Path:
    """Write ``recommendations`` to ``path`` as Parquet and JSON Lines, atomically."""
    if "://" in str(path):
        raise JobError(f"serve export {path}: only local folders can be published atomically")
    target = Path(path).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    recover(target)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:12]}"
    try:
        recommendations.write.partitionBy("recommender").parquet(str(tmp / PARQUET_DIR))
        json_lines_frame(recommendations).write.json(str(tmp / JSONL_DIR))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    publish(tmp, target)
    log.info("export %s: published %s/ and %s/", target, PARQUET_DIR, JSONL_DIR)
    return target
