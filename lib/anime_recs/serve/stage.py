"""The serve stage: ``user_recommendations`` for every user with a rating, and the exports.

Reads ``ratings`` (all splits; the peers and the hybrid are fitted on its train split as the
recommend stage fits them), ``anime`` (names), ``anime_neighbors`` (the top-k neighbours of
``serve.recommender``) and, when present, ``watch_status`` and ``anime_embeddings`` (the model
and version an embedding recommender's rows name; the hybrid's content vectors), each at the
version the runner pinned;
overwrites ``user_recommendations`` (:mod:`anime_recs.serve.run`, rules in
:mod:`anime_recs.serve.lists`). With ``serve.export``
set, the written version is also exported as Parquet + JSON Lines, published atomically
(:mod:`anime_recs.serve.export`).
"""

from __future__ import annotations

import logging

from pyspark.sql import SparkSession

from anime_recs import tables
from anime_recs.config import AppConfig
from anime_recs.lakehouse import read_table
from anime_recs.runlog import StageRun
from anime_recs.serve.export import export_recommendations
from anime_recs.serve.run import ServeSettings, run_serve
from anime_recs.steps import step

log = logging.getLogger(__name__)


def run(spark: SparkSession, config: AppConfig, run: StageRun) -> None:
    """Serve every user with ``serve.recommender``; export when ``serve.export`` is set. The
    rows' ``run_id`` is the stage's fingerprint (of the settings and the inputs' contents)."""
    sc, rc, lake = config.serve, config.recommend, config.paths.lake
    with step("serve") as facts:
        result = run_serve(
            spark,
            lake,
            ServeSettings(sc.recommender, sc.n, rc.k, rc.frequency_bonus),
            run,
            rc,
        )
        facts.update(version=result.version, rows=result.rows, users=result.users)
    if sc.export:
        with step("export") as facts:
            written = read_table(spark, lake, tables.USER_RECOMMENDATIONS, result.version)
            facts["path"] = export_recommendations(written, sc.export)
