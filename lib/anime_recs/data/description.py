"""The case study's text for a title: the description template, its cleaning, synopsis usability.

The description is built from the *raw* values of ``anime.csv`` and the raw synopsis of
``anime_with_synopsis.csv``, exactly as the case study did:

* a field whose value is the string ``Unknown`` stays ``Unknown`` in the text (e.g. "It premiered
  in Unknown."); only the typed columns of the ``anime`` table turn ``Unknown`` into NULL;
* the synopsis is used as it is, "No synopsis ..." placeholders included; a NULL synopsis
  becomes the empty string (cleaning then collapses the gap: "Synopsis: It was produced ...");
* titles that are absent from ``anime_with_synopsis.csv`` (the adult titles of the 2020 data, or
  a title released after the synopsis file was scraped) get a description built from the
  ``anime.csv`` metadata alone (:func:`describe_metadata`): the same template without the
  synopsis line, so every title can be embedded and recommended. ``description_source`` in the
  ``anime`` table says which text a title got.

:func:`usable_synopsis` says separately whether a synopsis carries real text, so the ``anime``
table's ``synopsis`` column is NULL for empty, non-ASCII-only and placeholder synopses.
"""

from __future__ import annotations

import re
import string

DESCRIPTION_TEMPLATE = (
    "{name} is a {type_text}.\n"
    "Synopsis: {synopsis}\n"
    "It was produced by {producers} and it is from {studios} Studio.\n"
    "Its source is {source}.\n"
    "It premiered in {premiered}.\n"
    "Its genres are {genres}\n"
)

METADATA_TEMPLATE = (
    "{name} is a {type_text}.\n"
    "It was produced by {producers} and it is from {studios} Studio.\n"
    "Its source is {source}.\n"
    "It premiered in {premiered}.\n"
    "Its genres are {genres}\n"
)

#: ``anime.description_source``: the case-study template with a synopsis, or metadata only
FROM_SYNOPSIS = "synopsis"
FROM_METADATA = "metadata"

_PRINTABLE = frozenset(string.printable)  # ASCII letters, digits, punctuation and whitespace
_WHITESPACE_RUN = re.compile(r"\s{2,}")
_PLACEHOLDER = re.compile(r"^\s*no synopsis\b", re.IGNORECASE)


def build_description(
    name: str,
    type_: str | None,
    synopsis: str | None,
    producers: str | None,
    studios: str | None,
    source: str | None,
    premiered: str | None,
    genres: str | None,
) -> str:
    """Fill the case-study template (before cleaning)::

        "{Name} is a {TV Show if Type == 'TV' else Type}.\\nSynopsis: {synopsis}\\n"
        "It was produced by {Producers} and it is from {Studios} Studio.\\n"
        "Its source is {Source}.\\nIt premiered in {Premiered}.\\nIts genres are {Genres}\\n"

    Values are the raw CSV strings (``Unknown`` stays ``Unknown``); ``None`` becomes ``""``.
    """
    return DESCRIPTION_TEMPLATE.format(
        synopsis=synopsis or "",
        **_metadata_values(name, type_, producers, studios, source, premiered, genres),
    )


def _metadata_values(
    name: str,
    type_: str | None,
    producers: str | None,
    studios: str | None,
    source: str | None,
    premiered: str | None,
    genres: str | None,
) -> dict[str, str]:
    """The template fields from ``anime.csv`` (``None`` -> ``""``, TV -> "TV Show")."""
    return {
        "name": name or "",
        "type_text": "TV Show" if type_ == "TV" else (type_ or ""),
        "producers": producers or "",
        "studios": studios or "",
        "source": source or "",
        "premiered": premiered or "",
        "genres": genres or "",
    }


def clean_text(text: str) -> str:
    """Case-study cleaning: keep only printable ASCII, collapse whitespace runs, strip.

    1. drop every character not in Python's ``string.printable`` (ASCII letters, digits,
       punctuation and the whitespace characters space, \\t, \\n, \\r, \\x0b, \\x0c), so accents,
       em dashes and CJK characters disappear without leaving a space ("travels\u2014Ein" ->
       "travelsEin") while the template's single newlines survive;
    2. replace every run of 2 or more whitespace characters by one space;
    3. strip leading and trailing whitespace (the template's final newline goes).
    """
    kept = "".join(ch for ch in text if ch in _PRINTABLE)
    return _WHITESPACE_RUN.sub(" ", kept).strip()


def describe(
    name: str,
    type_: str | None,
    synopsis: str | None,
    producers: str | None,
    studios: str | None,
    source: str | None,
    premiered: str | None,
    genres: str | None,
) -> str:
    """The stored ``description``: ``clean_text(build_description(...))``."""
    return clean_text(
        build_description(name, type_, synopsis, producers, studios, source, premiered, genres)
    )


def describe_metadata(
    name: str,
    type_: str | None,
    producers: str | None,
    studios: str | None,
    source: str | None,
    premiered: str | None,
    genres: str | None,
) -> str:
    """The description of a title without a synopsis: ``clean_text`` of::

        "{Name} is a {TV Show if Type == 'TV' else Type}.\n"
        "It was produced by {Producers} and it is from {Studios} Studio.\n"
        "Its source is {Source}.\nIt premiered in {Premiered}.\nIts genres are {Genres}\n"

    (the case-study template without its synopsis line; raw values, ``None`` becomes ``""``).
    """
    return clean_text(
        METADATA_TEMPLATE.format(
            **_metadata_values(name, type_, producers, studios, source, premiered, genres)
        )
    )


def usable_synopsis(synopsis: str | None) -> str | None:
    """The raw synopsis when it carries text, else ``None``.

    Not usable: ``None``; empty after :func:`clean_text` (blank or non-ASCII-only text);
    a MyAnimeList placeholder starting with "No synopsis" (e.g. "No synopsis information has
    been added to this title. ..."), case-insensitive.
    """
    if synopsis is None or not clean_text(synopsis) or _PLACEHOLDER.match(synopsis):
        return None
    return synopsis
