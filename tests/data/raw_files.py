"""Small MAL-format raw files written by tests: the canonical small dataset (3 titles, 6
rating lines, 2 of them bad), CSV writers and the ingest job's arguments."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from anime_recs.tables import ANIME_FILE, RATINGS_FILE, SYNOPSIS_FILE
from tests.helpers import CONF

ANIME_HEADER = (
    "MAL_ID,Name,Score,Genres,English name,Japanese name,Type,Episodes,Aired,Premiered,"
    "Producers,Licensors,Studios,Source,Duration,Rating,Ranked,Popularity,Members,Favorites,"
    "Watching,Completed,On-Hold,Dropped,Plan to Watch,Score-10,Score-9,Score-8,Score-7,Score-6,"
    "Score-5,Score-4,Score-3,Score-2,Score-1"
).split(",")

ANIME_DEFAULTS = {
    "Score": "7.5",
    "Genres": "Action, Comedy",
    "English name": "Unknown",
    "Japanese name": "Unknown",
    "Type": "TV",
    "Episodes": "12",
    "Aired": "Apr 1, 2000 to Jun 30, 2000",
    "Premiered": "Spring 2000",
    "Producers": "Prod A",
    "Licensors": "Unknown",
    "Studios": "Studio X",
    "Source": "Manga",
    "Duration": "24 min. per ep.",
    "Rating": "PG-13 - Teens 13 or older",
    "Ranked": "100.0",
    "Popularity": "200",
    "Members": "3000",
    "Favorites": "40",
}


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def anime_row(mal_id: object, name: str, **values: str) -> list[str]:
    """One anime.csv row: defaults overridden by ``values`` (keys with '_' for ' ')."""
    row = {"MAL_ID": str(mal_id), "Name": name, **ANIME_DEFAULTS}
    row.update({k.replace("_", " "): v for k, v in values.items()})
    return [row.get(c, "0") for c in ANIME_HEADER]


def anime_text(rows: list[list[str]]) -> str:
    return csv_text(ANIME_HEADER, rows)


def synopsis_text(rows: list[tuple[object, str]], names: dict | None = None) -> str:
    names = names or {}
    header = ["MAL_ID", "Name", "Score", "Genres", "sypnopsis"]
    return csv_text(header, [[str(i), names.get(i, "n"), "7.5", "g", s] for i, s in rows])


def write_raw(folder: Path, files: dict[str, str | bytes | None]) -> Path:
    """Write the raw files (str as UTF-8, bytes as is; None = leave the file out)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        if content is None:
            continue
        data = content.encode("utf-8") if isinstance(content, str) else content
        (folder / name).write_bytes(data)
    return folder


# The small canonical dataset: 3 titles (one without synopsis), 6 rating lines, 2 bad.
SMALL_ANIME = anime_text(
    [
        anime_row(1, "Alpha", Genres="Action, Sci-Fi", Producers="Bandai", Studios="Sunrise"),
        anime_row(
            2,
            "Beta",
            Type="Movie",
            Score="Unknown",
            Episodes="1",
            Premiered="Unknown",
            Ranked="Unknown",
            English_name="Beta The Movie",
        ),
        anime_row(3, "Gamma", Type="OVA", Genres="Drama"),
    ]
)
SMALL_SYNOPSES = synopsis_text(
    [(1, "A crew hunts bounties\u2014in space."), (2, "No synopsis has been added yet.")]
)
SMALL_RATINGS = "user_id,anime_id,rating\n10,1,9\n10,2,7\n11,1,3\n11,3,10\n11,1,5\n12,9,8\n"


def small_files() -> dict[str, str]:
    return {ANIME_FILE: SMALL_ANIME, SYNOPSIS_FILE: SMALL_SYNOPSES, RATINGS_FILE: SMALL_RATINGS}


def job_argv(raw: Path, lake: str, *extra: str) -> list[str]:
    return [
        "--conf",
        CONF,
        "--set",
        f"paths.raw={raw}",
        "--set",
        f"paths.lake={lake}",
        # keep the shared test session as it is (the job reuses it in-process)
        "--set",
        "spark.shuffle_partitions=2",
        *extra,
    ]
