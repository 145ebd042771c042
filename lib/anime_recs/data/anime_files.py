"""The two small anime files parsed on the driver with Python's :mod:`csv` module (quoting,
embedded newlines, CRLF): ``anime.csv`` and ``anime_with_synopsis.csv`` validated record by
record (the row rules of :mod:`anime_recs.data.rules`), and the rows of the ``anime`` table.

The ``anime`` table: one row per accepted ``anime.csv`` title, typed per ``ANIME_SCHEMA``
(``Unknown`` or empty -> NULL in typed columns, the ``Rating`` column -> ``age_rating``), the
synopsis (see :func:`anime_records`) and the case-study ``description``
(:mod:`anime_recs.data.description`).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from anime_recs.data.description import (
    FROM_METADATA,
    FROM_SYNOPSIS,
    describe,
    describe_metadata,
    usable_synopsis,
)
from anime_recs.data.files import parse_header
from anime_recs.data.rules import (
    ANIME_DOUBLE_COLUMNS,
    ANIME_ID_COLUMN,
    ANIME_INT_COLUMNS,
    ANIME_NAME_COLUMN,
    ANIME_STRING_COLUMNS,
    DUPLICATE_ID,
    EMPTY_LINE,
    ID_OUT_OF_RANGE,
    INVALID_VALUE,
    MAX_INT,
    MISSING_ID,
    MISSING_NAME,
    NEGATIVE_ID,
    NON_NUMERIC_ID,
    SYNOPSIS_COLUMN,
    UNKNOWN,
    UNKNOWN_ANIME_ID,
    UNPARSEABLE,
    WRONG_FIELD_COUNT,
    FileCounts,
)
from anime_recs.tables import ANIME_FILE, ANIME_SCHEMA, SYNOPSIS_FILE

_DIGITS = re.compile(r"[0-9]+")
_NEGATIVE = re.compile(r"-[0-9]+")
_INTEGRAL = re.compile(r"[+-]?[0-9]+(?:\.0*)?")


@dataclass
class CsvRecord:
    """One data record of a driver-side CSV: raw text, fields (None when unparseable), reason."""

    text: str
    fields: list[str] | None
    reason: str | None = None


def read_csv_records(name: str, text: str) -> tuple[list[str], Iterator[CsvRecord]]:
    """Header columns and an iterator over the data records of a small CSV text, in file order.

    Each record keeps its raw text (all physical lines it spans, last terminator removed).
    Blank records get ``empty_line``, CSV errors (bad quoting) ``unparseable`` and records with
    another number of fields than the header ``wrong_field_count``.
    """
    header = parse_header(name, text, ())

    def records() -> Iterator[CsvRecord]:
        buffer: list[str] = []

        def lines() -> Iterator[str]:
            for line in io.StringIO(text, newline=""):
                buffer.append(line)
                yield line

        reader = csv.reader(lines(), strict=True)
        next(reader)  # header
        buffer.clear()
        while True:
            try:
                fields = next(reader)
                reason = None
            except StopIteration:
                break
            except csv.Error:
                fields, reason = None, UNPARSEABLE
            record = "".join(buffer)
            buffer.clear()
            record = record[:-2] if record.endswith("\r\n") else record.rstrip("\r\n")
            if reason is None and not record.strip():
                reason = EMPTY_LINE
            elif reason is None and len(fields) != len(header):
                reason = WRONG_FIELD_COUNT
            yield CsvRecord(record, fields, reason)

    return header, records()


def id_reason(text: str) -> str | None:
    """Why an id field is invalid (``missing_id``, ``negative_id``, ``non_numeric_id``,
    ``id_out_of_range``), or None when it is a valid non-negative INT (blanks trimmed)."""
    t = text.strip()
    if not t:
        return MISSING_ID
    if _NEGATIVE.fullmatch(t):
        return NEGATIVE_ID
    if not _DIGITS.fullmatch(t):
        return NON_NUMERIC_ID
    if int(t) > MAX_INT:
        return ID_OUT_OF_RANGE
    return None


def parse_int(text: str) -> int | None:
    """A typed INT cell: ``Unknown``/empty -> None; ``12``, ``28.0`` -> int; else ValueError."""
    t = text.strip()
    if t in ("", UNKNOWN):
        return None
    if not _INTEGRAL.fullmatch(t):
        raise ValueError(f"not an integer: {text!r}")
    value = int(t.split(".")[0])
    if abs(value) > MAX_INT:
        raise ValueError(f"integer out of range: {text!r}")
    return value


def parse_double(text: str) -> float | None:
    """A typed DOUBLE cell: ``Unknown``/empty -> None; a finite number -> float; else ValueError."""
    t = text.strip()
    if t in ("", UNKNOWN):
        return None
    value = float(t)
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {text!r}")
    return value


def parse_string(text: str) -> str | None:
    """A typed STRING cell: ``Unknown`` or empty -> None, anything else unchanged."""
    return None if text.strip() in ("", UNKNOWN) else text


@dataclass
class ParsedFile:
    """Accepted records by id (file order), rejected (source, record, reason), counts."""

    accepted: dict[int, dict[str, str]]
    rejected: list[tuple[str, str, str]]
    counts: FileCounts


def parse_rows(
    name: str, text: str, row_reason: Callable[[dict[str, str]], str | None]
) -> ParsedFile:
    """Validate CSV ``text`` of file ``name``: each well-formed record as a row (column name ->
    text), rejected with ``row_reason(row)`` when it gives one or as a duplicate id; accepted
    rows keyed by MAL_ID."""
    header, records = read_csv_records(name, text)
    index = {c: i for i, c in enumerate(header)}
    accepted: dict[int, dict[str, str]] = {}
    rejected: list[tuple[str, str, str]] = []
    counts = FileCounts()
    for rec in records:
        counts.total += 1
        reason = rec.reason
        row: dict[str, str] = {}
        if reason is None:
            row = {c: rec.fields[i] for c, i in index.items()}
            reason = row_reason(row)
        if reason is None and int(row[ANIME_ID_COLUMN].strip()) in accepted:
            reason = DUPLICATE_ID
        if reason is None:
            accepted[int(row[ANIME_ID_COLUMN].strip())] = row
        else:
            rejected.append((name, rec.text, reason))
    _finish_counts(counts, len(accepted), rejected)
    return ParsedFile(accepted, rejected, counts)


def parse_anime_csv(text: str, name: str = ANIME_FILE) -> ParsedFile:
    """Validate ``anime.csv`` text: accepted raw rows (column name -> text) keyed by MAL_ID."""
    return parse_rows(name, text, _anime_row_reason)


def _anime_row_reason(row: dict[str, str]) -> str | None:
    reason = id_reason(row[ANIME_ID_COLUMN])
    if reason is not None:
        return reason
    if not row[ANIME_NAME_COLUMN].strip():
        return MISSING_NAME
    try:
        for column in ANIME_INT_COLUMNS.values():
            parse_int(row[column])
        for column in ANIME_DOUBLE_COLUMNS.values():
            parse_double(row[column])
    except ValueError:
        return INVALID_VALUE
    return None


def parse_synopsis_csv(
    text: str, known_ids: set[int] | dict[int, object], name: str = SYNOPSIS_FILE
) -> ParsedFile:
    """Validate ``anime_with_synopsis.csv`` text against the accepted ``anime.csv`` ids."""

    def row_reason(row: dict[str, str]) -> str | None:
        reason = id_reason(row[ANIME_ID_COLUMN])
        if reason is None and int(row[ANIME_ID_COLUMN].strip()) not in known_ids:
            return UNKNOWN_ANIME_ID
        return reason

    return parse_rows(name, text, row_reason)


def _finish_counts(counts: FileCounts, accepted: int, rejected: list[tuple[str, str, str]]) -> None:
    counts.accepted = accepted
    counts.rejected = dict(Counter(reason for _, _, reason in rejected))


def anime_records(
    anime: dict[int, dict[str, str]], synopses: dict[int, dict[str, str]]
) -> list[tuple]:
    """Rows of the ``anime`` table (``ANIME_SCHEMA`` order), one per accepted title.

    * typed columns: ``Unknown``/empty -> NULL; ``Rating`` -> ``age_rating``;
    * ``synopsis``: the raw ``sypnopsis`` text when usable
      (:func:`~anime_recs.data.description.usable_synopsis`), NULL when the title is absent from
      the synopsis file or its synopsis is empty, non-ASCII-only or a "No synopsis" placeholder;
    * ``description``: for every title present in the synopsis file, the cleaned case-study
      template over the raw fields and the raw synopsis (placeholders included);
      for a title absent from it, the metadata-only text of
      :func:`~anime_recs.data.description.describe_metadata`;
    * ``has_description``: ``description IS NOT NULL`` (every accepted title has one);
    * ``description_source``: ``synopsis`` or ``metadata``.
    """
    rows = []
    for anime_id, row in anime.items():
        syn_row = synopses.get(anime_id)
        raw_synopsis = syn_row[SYNOPSIS_COLUMN] if syn_row is not None else None
        if syn_row is None:
            description = describe_metadata(
                row[ANIME_NAME_COLUMN],
                row["Type"],
                row["Producers"],
                row["Studios"],
                row["Source"],
                row["Premiered"],
                row["Genres"],
            )
        else:
            description = describe(
                row[ANIME_NAME_COLUMN],
                row["Type"],
                raw_synopsis,
                row["Producers"],
                row["Studios"],
                row["Source"],
                row["Premiered"],
                row["Genres"],
            )
        values = {
            "anime_id": anime_id,
            "name": row[ANIME_NAME_COLUMN],
            **{k: parse_string(row[c]) for k, c in ANIME_STRING_COLUMNS.items()},
            **{k: parse_int(row[c]) for k, c in ANIME_INT_COLUMNS.items()},
            **{k: parse_double(row[c]) for k, c in ANIME_DOUBLE_COLUMNS.items()},
            "synopsis": usable_synopsis(raw_synopsis),
            "description": description,
            "has_description": description is not None,
            "description_source": FROM_METADATA if syn_row is None else FROM_SYNOPSIS,
        }
        rows.append(tuple(values[f.name] for f in ANIME_SCHEMA.fields))
    return rows
