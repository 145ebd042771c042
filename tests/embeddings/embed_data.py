"""What the embedding tests share: titled anime rows, and ``jobs/embed.py`` with a tiny
sentence-transformers embedder or a fake OpenAI one."""

from __future__ import annotations

import re

from anime_recs.lakehouse import write_table
from anime_recs.tables import ANIME, ANIME_SCHEMA
from tests.helpers import CONF, load_job
from tests.tiny_model import TINY_MAX_SEQ

__all__ = ["DESCRIPTIONS", "TINY_MAX_SEQ", "anime_row", "anime_rows", "run_job", "tiny"]

DESCRIPTIONS = {
    1: "A boy and his robot travel the galaxy looking for a lost planet.",
    2: "High school students form a volleyball team\nand aim for the national finals.",
    3: "  A detective   with a notebook that kills.  ",
    4: "Cooking battles decide the fate of a famous culinary academy.",
    5: "A quiet slice-of-life story about a girl who moves to the countryside "
    "and learns to grow vegetables with her grandmother, season after season.",
    6: "Mecha pilots defend the last city of humanity against giant invaders.",
}


def anime_row(anime_id: int, description: str | None, has_description: bool) -> dict:
    row = {f.name: None for f in ANIME_SCHEMA.fields}
    row.update(
        anime_id=anime_id,
        name=f"Title {anime_id}",
        description=description,
        has_description=has_description,
        description_source="synopsis",
    )
    return row


def anime_rows() -> list[dict]:
    """Six titled anime, one without a description, one with only whitespace."""
    rows = [anime_row(i, d, True) for i, d in DESCRIPTIONS.items()]
    return [*rows, anime_row(7, None, False), anime_row(8, "   ", True)]


def write_anime(spark, lake, descriptions: dict[int, str]) -> None:
    rows = [
        {**anime_row(i, d, True), "description_source": "synopsis"}  # not nullable
        for i, d in descriptions.items()
    ]
    write_table(spark.createDataFrame(rows, ANIME_SCHEMA), lake, ANIME, ANIME_SCHEMA)


def counts_logged(caplog) -> tuple[int, int]:
    """(reused, computed) of the last 'step embed tiny' line; computed = texts the encoder
    was handed in the Spark workers (an accumulator)."""
    lines = [r.getMessage() for r in caplog.records if "step embed tiny: done" in r.getMessage()]
    match = re.search(r"reused=(\d+) computed=(\d+)", lines[-1])
    return int(match[1]), int(match[2])


def run_job(
    lake: str,
    run: list[str],
    embedders: dict[str, list[str]],
    *extra: str,
    options: tuple[str, ...] = (),
) -> int:
    """``jobs/embed.py`` computing ``run`` with ``embedders`` (``{name: [key=value]}``)."""
    sets = [
        f"paths.lake={lake}",
        "spark.shuffle_partitions=2",
        "embed.partitions=2",
        f"embed.run=[{','.join(run)}]",
        *extra,
    ]
    for name, settings in embedders.items():
        sets += [f"embed.embedders.{name}.{s}" for s in settings]
    argv = ["--conf", CONF, *[x for s in sets for x in ("--set", s)]]
    return load_job("embed").main([*argv, *options])


def tiny(model_dir: str, max_seq: int = TINY_MAX_SEQ) -> list[str]:
    """A sentence-transformers embedder of the tiny random model."""
    return [
        "kind=sentence-transformers",
        f"model={model_dir}",
        f"max_seq_length={max_seq}",
        "batch_size=4",
    ]
