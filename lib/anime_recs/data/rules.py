"""What the ingest requires of the three MAL 2020 files and the codes of what it rejects: the
columns it reads (:data:`REQUIRED_COLUMNS`), the stable rejection reasons and the per-file
counts (:class:`FileCounts`). Shared by the file checks (:mod:`anime_recs.data.files`), the
driver-side anime parsers (:mod:`anime_recs.data.anime_files`), the Spark rating-line parser
(:mod:`anime_recs.data.rating_lines`) and ``animelist.csv`` (:mod:`anime_recs.data.watch_status`).

Row rules (a rejected row goes to ``rejected_rows`` with ``source`` = file name, ``record`` = the
raw record text without its line terminator, ``reason`` = the first failing check below)
    all files: ``empty_line`` (blank record), ``unparseable`` (bad CSV quoting),
    ``wrong_field_count`` (not as many fields as the header: truncated line, wrong delimiter),
    ids (``MAL_ID``, ``user_id``, ``anime_id``; surrounding blanks are trimmed):
    ``missing_id`` (empty), ``negative_id`` (``-5``), ``non_numeric_id`` (anything but digits,
    ``1.0`` included), ``id_out_of_range`` (> 2147483647).
    ``anime.csv``: ``missing_name`` (empty Name); ``invalid_value`` (a typed column - Score,
    Episodes, Ranked, Popularity, Members, Favorites - that is neither ``Unknown``/empty nor a
    number; integral floats such as ``28.0`` are accepted as integers); ``duplicate_id``
    (the first valid row of a MAL_ID is kept, later ones rejected).
    ``anime_with_synopsis.csv``: ``unknown_anime_id`` (MAL_ID not among the accepted
    ``anime.csv`` titles); ``duplicate_id`` (first kept).
    ``rating_complete.csv``: ``missing_rating``; ``non_numeric_rating`` (``abc``, ``1e1``);
    ``non_integer_rating`` (``7.5``; ``7.0`` and ``+7`` are the integer 7); ``rating_out_of_range``
    (outside 1..10: ``0``, ``11``, ``-3``); ``unknown_anime_id`` (anime_id not among the accepted
    ``anime.csv`` titles); ``duplicate_key`` (a later row for a (user_id, anime_id) that already
    has a valid row: the FIRST valid row in file order is kept). Fields may be wrapped in double
    quotes (``"1","2","3"``); any other use of ``"`` is ``unparseable``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from anime_recs.tables import ANIME_FILE, RATINGS_FILE, SYNOPSIS_FILE

# anime table column -> anime.csv column
ANIME_ID_COLUMN = "MAL_ID"
ANIME_NAME_COLUMN = "Name"
ANIME_STRING_COLUMNS = {
    "english_name": "English name",
    "japanese_name": "Japanese name",
    "type": "Type",
    "aired": "Aired",
    "premiered": "Premiered",
    "producers": "Producers",
    "licensors": "Licensors",
    "studios": "Studios",
    "source": "Source",
    "duration": "Duration",
    "age_rating": "Rating",
    "genres": "Genres",
}
ANIME_INT_COLUMNS = {
    "episodes": "Episodes",
    "ranked": "Ranked",
    "popularity": "Popularity",
    "members": "Members",
    "favorites": "Favorites",
}
ANIME_DOUBLE_COLUMNS = {"score": "Score"}
SYNOPSIS_COLUMN = "sypnopsis"  # sic, as in the Kaggle file

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    ANIME_FILE: (
        ANIME_ID_COLUMN,
        ANIME_NAME_COLUMN,
        *ANIME_STRING_COLUMNS.values(),
        *ANIME_INT_COLUMNS.values(),
        *ANIME_DOUBLE_COLUMNS.values(),
    ),
    SYNOPSIS_FILE: (ANIME_ID_COLUMN, SYNOPSIS_COLUMN),
    RATINGS_FILE: ("user_id", "anime_id", "rating"),
}

UNKNOWN = "Unknown"
MAX_INT = 2**31 - 1

# rejection reasons (stable codes)
EMPTY_LINE = "empty_line"
UNPARSEABLE = "unparseable"
WRONG_FIELD_COUNT = "wrong_field_count"
MISSING_ID = "missing_id"
NON_NUMERIC_ID = "non_numeric_id"
NEGATIVE_ID = "negative_id"
ID_OUT_OF_RANGE = "id_out_of_range"
MISSING_NAME = "missing_name"
INVALID_VALUE = "invalid_value"
DUPLICATE_ID = "duplicate_id"
UNKNOWN_ANIME_ID = "unknown_anime_id"
MISSING_RATING = "missing_rating"
NON_NUMERIC_RATING = "non_numeric_rating"
NON_INTEGER_RATING = "non_integer_rating"
RATING_OUT_OF_RANGE = "rating_out_of_range"
DUPLICATE_KEY = "duplicate_key"


@dataclass
class FileCounts:
    """Data records of one file (header excluded), accepted and rejected per reason."""

    total: int = 0
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())
