"""Bad inputs never crash the ingest and never lose a good row (issue 9, table-driven).

Three tables of cases, each a small set of inline files written to ``tmp_path``:

* ratings cases run the ingest's parsing rules in Spark (all cases in one job, each case its own
  files) and assert the exact accepted ratings and the exact ``rejected_rows`` (source, record,
  reason);
* anime-file cases run the driver-side parsers and assert the exact accepted titles and rejects;
* fail-fast cases assert the one-line :class:`JobError` of the input checks, and two of them go
  through ``jobs/ingest.py`` (in-process ``run_main`` and a real subprocess) for exit status 2.
"""

from __future__ import annotations

import codecs
import functools
import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from anime_recs import tables
from anime_recs.cli import JobError, run_main
from anime_recs.data.anime_files import anime_records, parse_anime_csv, parse_synopsis_csv
from anime_recs.data.files import check_inputs, read_text
from anime_recs.data.rating_lines import parse_ratings
from anime_recs.tables import ANIME_FILE, RATINGS_FILE, SYNOPSIS_FILE
from tests.helpers import load_job

REPO_ROOT = Path(__file__).resolve().parents[2]

ANIME_HEADER = (
    "MAL_ID,Name,Score,Genres,English name,Japanese name,Type,Episodes,Aired,Premiered,"
    "Producers,Licensors,Studios,Source,Duration,Rating,Ranked,Popularity,Members,Favorites,"
    "Watching,Completed,On-Hold,Dropped,Plan to Watch,Score-10,Score-9,Score-8,Score-7,Score-6,"
    "Score-5,Score-4,Score-3,Score-2,Score-1"
)
# 34 more fields after MAL_ID,Name: Score .. Score-1
ANIME_TAIL = (
    '7.5,"Action, Comedy",Unknown,Unknown,TV,12,"Apr 1, 2000",Spring 2000,Prod A,Unknown,'
    "Studio X,Manga,24 min.,PG-13,100.0,200,3000,40,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15"
)
SYNOPSIS_HEADER = "MAL_ID,Name,Score,Genres,sypnopsis"
RATINGS_HEADER = "user_id,anime_id,rating"


def anime_line(mal_id: str, name: str, tail: str = ANIME_TAIL) -> str:
    return f"{mal_id},{name},{tail}"


def anime_csv(*lines: str, header: str = ANIME_HEADER) -> str:
    return "\n".join([header, *lines]) + "\n"


def synopsis_csv(*lines: str, header: str = SYNOPSIS_HEADER) -> str:
    return "\n".join([header, *lines]) + "\n"


def ratings_csv(*lines: str, header: str = RATINGS_HEADER) -> str:
    return "\n".join([header, *lines]) + "\n"


BASE = {
    ANIME_FILE: anime_csv(
        anime_line("1", "Alpha"), anime_line("2", "Beta"), anime_line("3", "Gamma")
    ),
    SYNOPSIS_FILE: synopsis_csv("1,Alpha,7.5,g,Alpha story.", "2,Beta,7.5,g,Beta story."),
    RATINGS_FILE: ratings_csv("10,1,9"),
}


def write_files(folder: Path, overrides: dict[str, str | bytes | None]) -> Path:
    """BASE files with ``overrides`` (str as UTF-8, bytes as is, None = no such file)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in {**BASE, **overrides}.items():
        if content is None:
            continue
        (folder / name).write_bytes(content.encode() if isinstance(content, str) else content)
    return folder


# --------------------------------------------------------------------------------------------
# Ratings cases: full ingest (Spark)
# --------------------------------------------------------------------------------------------

R = RATINGS_FILE
RATINGS_CASES = [
    pytest.param(
        {R: ratings_csv("10,1,9", "10,2", "11", "11,2,", "12,3,7")},
        [(10, 1, 9), (12, 3, 7)],
        [
            (R, "10,2", "wrong_field_count"),
            (R, "11", "wrong_field_count"),
            (R, "11,2,", "missing_rating"),
        ],
        id="truncated_lines",
    ),
    pytest.param(
        {R: ratings_csv("10;1;9", "10\t2\t7", "10,3,8", "11,1;2")},
        [(10, 3, 8)],
        [
            (R, "10;1;9", "wrong_field_count"),
            (R, "10\t2\t7", "wrong_field_count"),
            (R, "11,1;2", "wrong_field_count"),
        ],
        id="wrong_delimiters",
    ),
    pytest.param(
        {R: ratings_csv('"10","1","9"', '"10,2,7', '10,"3,8', '11,"1"x,5', '11,2,"7"')},
        [(10, 1, 9), (11, 2, 7)],
        [
            (R, '"10,2,7', "unparseable"),
            (R, '10,"3,8', "unparseable"),
            (R, '11,"1"x,5', "unparseable"),
        ],
        id="wrong_quoting",
    ),
    pytest.param(
        {
            R: ratings_csv(
                "abc,1,9",
                "10,x,9",
                "1.0,1,9",
                "10,1e2,9",
                ",1,5",
                "10,,5",
                "3000000000,1,5",
                "10,1,9",
            )
        },
        [(10, 1, 9)],
        [
            (R, "abc,1,9", "non_numeric_id"),
            (R, "10,x,9", "non_numeric_id"),
            (R, "1.0,1,9", "non_numeric_id"),
            (R, "10,1e2,9", "non_numeric_id"),
            (R, ",1,5", "missing_id"),
            (R, "10,,5", "missing_id"),
            (R, "3000000000,1,5", "id_out_of_range"),
        ],
        id="non_numeric_ids",
    ),
    pytest.param(
        {R: ratings_csv("-10,1,9", "10,-1,9", "10,1,9")},
        [(10, 1, 9)],
        [(R, "-10,1,9", "negative_id"), (R, "10,-1,9", "negative_id")],
        id="negative_ids",
    ),
    pytest.param(
        {
            R: ratings_csv(
                "10,1,0",
                "10,2,11",
                "10,3,7.5",
                "11,1,",
                "11,2,abc",
                "11,3,7.0",
                "12,1,-3",
                "12,2,1",
                "12,3,10",
                "13,1, 8 ",
            )
        },
        [(11, 3, 7), (12, 2, 1), (12, 3, 10), (13, 1, 8)],
        [
            (R, "10,1,0", "rating_out_of_range"),
            (R, "10,2,11", "rating_out_of_range"),
            (R, "10,3,7.5", "non_integer_rating"),
            (R, "11,1,", "missing_rating"),
            (R, "11,2,abc", "non_numeric_rating"),
            (R, "12,1,-3", "rating_out_of_range"),
        ],
        id="ratings_0_11_7.5_empty",
    ),
    pytest.param(
        {R: ratings_csv("10,1,9", "10,2,7", "10,1,3", "11,1,11", "11,1,4", "11,1,6", "10,1,9")},
        [(10, 1, 9), (10, 2, 7), (11, 1, 4)],
        [
            (R, "10,1,3", "duplicate_key"),
            (R, "11,1,11", "rating_out_of_range"),  # an invalid first row does not count
            (R, "11,1,6", "duplicate_key"),
            (R, "10,1,9", "duplicate_key"),
        ],
        id="duplicate_user_title_first_kept",
    ),
    pytest.param(
        {R: ratings_csv("10,1,9", "10,99,7", "11,4,8")},
        [(10, 1, 9)],
        [(R, "10,99,7", "unknown_anime_id"), (R, "11,4,8", "unknown_anime_id")],
        id="titles_missing_from_anime_file",
    ),
    pytest.param(
        {
            ANIME_FILE: anime_csv(
                anime_line("1", "Alpha"),
                anime_line("3", "Gamma", ANIME_TAIL.replace("7.5", "abc", 1)),
            ),
            R: ratings_csv("10,1,9", "10,3,9"),
        },
        [(10, 1, 9)],
        [
            (
                ANIME_FILE,
                anime_line("3", "Gamma", ANIME_TAIL.replace("7.5", "abc", 1)),
                "invalid_value",
            ),
            (SYNOPSIS_FILE, "2,Beta,7.5,g,Beta story.", "unknown_anime_id"),
            (R, "10,3,9", "unknown_anime_id"),
        ],
        id="rejected_title_cascades",
    ),
    pytest.param(
        {R: ratings_csv("10,1,9", "", "   ", "11,1,8")},
        [(10, 1, 9), (11, 1, 8)],
        [(R, "", "empty_line"), (R, "   ", "empty_line")],
        id="blank_lines",
    ),
    pytest.param(
        {R: codecs.BOM_UTF8 + b"user_id,anime_id,rating\r\n10,1,9\r\n11,2,10\r\n12,3,x\r\n"},
        [(10, 1, 9), (11, 2, 10)],
        [(R, "12,3,x", "non_numeric_rating")],
        id="bom_crlf",
    ),
    pytest.param(
        {R: ratings_csv("1,10,123,9", "2,11,124,8", "3,12,7", header="anime_id,user_id,ts,rating")},
        [(10, 1, 9), (11, 2, 8)],
        [(R, "3,12,7", "wrong_field_count")],
        id="extra_and_reordered_columns",
    ),
]


def judged_case(spark, raw: Path, case: str):
    """The rating lines of one case's files judged by the ingest's rules (lazy, tagged with
    ``case``), and the anime-file rows rejected on the driver."""
    headers = check_inputs(raw, spark)
    anime = parse_anime_csv(read_text(str(raw / A), spark))
    synopses = parse_synopsis_csv(read_text(str(raw / S), spark), anime.accepted)
    ids = spark.createDataFrame([(i,) for i in anime.accepted], "anime_id INT")
    judged = parse_ratings(spark, raw, headers[R], ids).select(F.lit(case).alias("case"), "*")
    return judged, anime.rejected + synopses.rejected


@pytest.mark.e2e  # a whole job
def test_ratings_cases(spark, tmp_path):
    """Every case's files are judged in one Spark job (the cases are independent: each its own
    files and anime ids), then each case is checked on its own rows."""
    frames, driver_rejects = [], {}
    for case in RATINGS_CASES:
        (files, _, _), name = case.values, case.id
        frame, driver_rejects[name] = judged_case(spark, write_files(tmp_path / name, files), name)
        frames.append(frame)
    rows = functools.reduce(DataFrame.unionByName, frames).collect()
    for case in RATINGS_CASES:
        (_, accepted, rejected), name = case.values, case.id
        mine = [r for r in rows if r.case == name]
        ok = [(r.user_id, r.anime_id, r.rating) for r in mine if r.reason is None]
        assert sorted(ok) == sorted(accepted), name
        got_rejected = [(R, r.record, r.reason) for r in mine if r.reason is not None]
        assert sorted(got_rejected + driver_rejects[name]) == sorted(rejected), name
        assert len(mine) == len(accepted) + sum(1 for r in rejected if r[0] == R), name


# --------------------------------------------------------------------------------------------
# Anime-file cases: driver-side parsers (no Spark)
# --------------------------------------------------------------------------------------------


def _title(row: tuple) -> tuple:
    """(anime_id, name, score, episodes, ranked, synopsis, description) of an anime row."""
    v = dict(zip(tables.ANIME_SCHEMA.fieldNames(), row, strict=True))
    assert v["has_description"] is (v["description"] is not None)
    return (
        v["anime_id"],
        v["name"],
        v["score"],
        v["episodes"],
        v["ranked"],
        v["synopsis"],
        v["description"],
    )


def _desc(name: str, synopsis: str) -> str:
    """The cleaned template for ANIME_TAIL's fields (written out by hand)."""
    return (
        f"{name} is a TV Show.\nSynopsis: {synopsis}\n"
        "It was produced by Prod A and it is from Studio X Studio.\nIts source is Manga.\n"
        "It premiered in Spring 2000.\nIts genres are Action, Comedy"
    ).replace("Synopsis: \n", "Synopsis: ")


def _meta(name: str) -> str:
    """The metadata-only description of a title absent from the synopsis file (by hand)."""
    return (
        f"{name} is a TV Show.\n"
        "It was produced by Prod A and it is from Studio X Studio.\nIts source is Manga.\n"
        "It premiered in Spring 2000.\nIts genres are Action, Comedy"
    )


A, S = ANIME_FILE, SYNOPSIS_FILE
ALPHA = (1, "Alpha", 7.5, 12, 100, "Alpha story.", _desc("Alpha", "Alpha story."))
BETA = (2, "Beta", 7.5, 12, 100, "Beta story.", _desc("Beta", "Beta story."))
GAMMA = (3, "Gamma", 7.5, 12, 100, None, _meta("Gamma"))
TRUNCATED = anime_line("4", "Delta", "7.5,Action,Unknown")
SEMICOLONS = "4;Delta;" + ANIME_TAIL.replace(",", ";")
BAD_QUOTES = anime_line("4", '"Delta"x')
MULTILINE = anime_line("4", '"Delta, the ""Movie""\nPart 2"')
EXTRA_HEADER = ANIME_HEADER + ",Notes"

ANIME_CASES = [
    pytest.param(
        {
            A: anime_csv(
                anime_line("1", "Alpha"),
                TRUNCATED,
                anime_line("2", "Beta"),
                anime_line("3", "Gamma"),
            )
        },
        [ALPHA, BETA, GAMMA],
        [(A, TRUNCATED, "wrong_field_count")],
        id="truncated_line",
    ),
    pytest.param(
        {
            A: anime_csv(
                anime_line("1", "Alpha"),
                anime_line("2", "Beta"),
                anime_line("3", "Gamma"),
                SEMICOLONS,
            )
        },
        [ALPHA, BETA, GAMMA],
        [(A, SEMICOLONS, "wrong_field_count")],
        id="wrong_delimiter",
    ),
    pytest.param(
        {
            A: anime_csv(
                anime_line("1", "Alpha"),
                BAD_QUOTES,
                anime_line("2", "Beta"),
                anime_line("3", "Gamma"),
            )
        },
        [ALPHA, BETA, GAMMA],
        [(A, BAD_QUOTES, "unparseable")],
        id="wrong_quoting",
    ),
    pytest.param(
        {
            A: anime_csv(
                anime_line("1", "Alpha"),
                MULTILINE,
                anime_line("2", "Beta"),
                anime_line("3", "Gamma"),
            )
        },
        [
            ALPHA,
            (
                4,
                'Delta, the "Movie"\nPart 2',
                7.5,
                12,
                100,
                None,
                _meta('Delta, the "Movie"\nPart 2'),
            ),
            BETA,
            GAMMA,
        ],
        [],
        id="quoted_commas_quotes_and_newline_accepted",
    ),
    pytest.param(
        {
            A: anime_csv(
                anime_line("1", "Alpha"),
                anime_line("abc", "X"),
                anime_line("-4", "X"),
                anime_line("", "X"),
                anime_line("4.0", "X"),
                anime_line("99999999999", "X"),
                anime_line("2", "Beta"),
                anime_line("3", "Gamma"),
            )
        },
        [ALPHA, BETA, GAMMA],
        [
            (A, anime_line("abc", "X"), "non_numeric_id"),
            (A, anime_line("-4", "X"), "negative_id"),
            (A, anime_line("", "X"), "missing_id"),
            (A, anime_line("4.0", "X"), "non_numeric_id"),
            (A, anime_line("99999999999", "X"), "id_out_of_range"),
        ],
        id="bad_ids",
    ),
    pytest.param(
        {
            A: anime_csv(
                anime_line("1", "Alpha"),
                anime_line("2", "Beta"),
                anime_line("1", "Alpha 2"),
                anime_line("3", "Gamma"),
            )
        },
        [ALPHA, BETA, GAMMA],
        [(A, anime_line("1", "Alpha 2"), "duplicate_id")],
        id="duplicate_mal_id_first_kept",
    ),
    pytest.param(
        {
            A: anime_csv(
                anime_line("1", "Alpha"),
                anime_line("2", "Beta"),
                anime_line(
                    "3",
                    "Gamma",
                    ANIME_TAIL.replace("100.0", "28.0").replace(",12,", ",Unknown,", 1),
                ),
                anime_line("4", ""),
                anime_line("5", "E", ANIME_TAIL.replace(",12,", ",12.5,", 1)),
                anime_line("6", "F", ANIME_TAIL.replace("7.5", "nan", 1)),
            )
        },
        [ALPHA, BETA, (3, "Gamma", 7.5, None, 28, None, _meta("Gamma"))],
        [
            (A, anime_line("4", ""), "missing_name"),
            (A, anime_line("5", "E", ANIME_TAIL.replace(",12,", ",12.5,", 1)), "invalid_value"),
            (A, anime_line("6", "F", ANIME_TAIL.replace("7.5", "nan", 1)), "invalid_value"),
        ],
        id="names_and_typed_values",
    ),
    pytest.param(
        {
            S: synopsis_csv(
                "1,Alpha,7.5,g,Alpha story.",
                "99,Z,7.5,g,Lost.",
                "2,Beta,7.5,g,Beta story.",
                "1,Alpha,7.5,g,Again.",
            )
        },
        [ALPHA, BETA, GAMMA],
        [(S, "99,Z,7.5,g,Lost.", "unknown_anime_id"), (S, "1,Alpha,7.5,g,Again.", "duplicate_id")],
        id="synopsis_unknown_and_duplicate_ids",
    ),
    pytest.param(
        {
            S: synopsis_csv(
                "1,Alpha,7.5,g,",
                '2,Beta,7.5,g,"\u30a2\u30cb\u30e1 \u2014 "',
                "3,Gamma,7.5,g,No synopsis yet.",
            )
        },
        [
            (1, "Alpha", 7.5, 12, 100, None, _desc("Alpha", "")),
            (2, "Beta", 7.5, 12, 100, None, _desc("Beta", "")),
            (3, "Gamma", 7.5, 12, 100, None, _desc("Gamma", "No synopsis yet.")),
        ],
        [],
        id="empty_non_ascii_and_placeholder_synopses",
    ),
    pytest.param(
        {
            A: codecs.BOM_UTF8
            + anime_csv(anime_line("1", "Alpha"), anime_line("2", "Beta"), anime_line("3", "Gamma"))
            .replace("\n", "\r\n")
            .encode(),
            S: codecs.BOM_UTF8
            + synopsis_csv("1,Alpha,7.5,g,Alpha story.", "2,Beta,7.5,g,Beta story.")
            .replace("\n", "\r\n")
            .encode(),
        },
        [ALPHA, BETA, GAMMA],
        [],
        id="bom_crlf",
    ),
    pytest.param(
        {
            A: anime_csv(
                anime_line("1", "Alpha"), "", anime_line("2", "Beta"), anime_line("3", "Gamma")
            )
        },
        [ALPHA, BETA, GAMMA],
        [(A, "", "empty_line")],
        id="blank_line",
    ),
    pytest.param(
        {
            A: anime_csv(
                *[
                    anime_line(i, n, ANIME_TAIL + ",note")
                    for i, n in (("1", "Alpha"), ("2", "Beta"), ("3", "Gamma"))
                ],
                anime_line("4", "Delta"),
                header=EXTRA_HEADER,
            )
        },
        [ALPHA, BETA, GAMMA],
        [(A, anime_line("4", "Delta"), "wrong_field_count")],
        id="extra_column",
    ),
]


@pytest.mark.parametrize(("files", "titles", "rejected"), ANIME_CASES)
def test_anime_file_cases(tmp_path, files, titles, rejected):
    raw = write_files(tmp_path / "raw", files)
    check_inputs(raw)  # none of these is a fail-fast case
    anime = parse_anime_csv(read_text(str(raw / A)))
    synopses = parse_synopsis_csv(read_text(str(raw / S)), anime.accepted)
    got = [_title(row) for row in anime_records(anime.accepted, synopses.accepted)]
    assert got == titles
    assert anime.rejected + synopses.rejected == rejected
    assert anime.counts.total + synopses.counts.total == (
        len(titles) + len(rejected) + len(synopses.accepted)
    )


# --------------------------------------------------------------------------------------------
# Fail-fast cases: one-line JobError naming the file/column
# --------------------------------------------------------------------------------------------

FAIL_FAST_CASES = [
    pytest.param(
        {R: None},
        r"^rating_complete\.csv: input file not found at .*rating_complete\.csv$",
        id="missing_file",
    ),
    pytest.param({A: ""}, r"^anime\.csv: empty file \(no header line\)$", id="empty_anime_file"),
    pytest.param(
        {R: b""}, r"^rating_complete\.csv: empty file \(no header line\)$", id="empty_ratings_file"
    ),
    pytest.param(
        {A: anime_csv()}, r"^anime\.csv: header only, no data rows$", id="header_only_anime"
    ),
    pytest.param(
        {S: synopsis_csv()},
        r"^anime_with_synopsis\.csv: header only, no data rows$",
        id="header_only_synopsis",
    ),
    pytest.param(
        {R: ratings_csv("", " ")},
        r"^rating_complete\.csv: header only, no data rows$",
        id="header_only_ratings",
    ),
    pytest.param(
        {A: anime_csv(anime_line("1", "A"), header=ANIME_HEADER.replace(",Studios", ""))},
        r"^anime\.csv: missing required column 'Studios'; header: MAL_ID,Name,.*\.\.\.$",
        id="missing_column",
    ),
    pytest.param(
        {S: synopsis_csv("1,A,7.5,g,s", header=SYNOPSIS_HEADER.replace("sypnopsis", "synopsis"))},
        r"^anime_with_synopsis\.csv: missing required column 'sypnopsis'; "
        r"header: MAL_ID,Name,Score,Genres,synopsis$",
        id="renamed_column",
    ),
    pytest.param(
        {R: ratings_csv("10,1,9", header="user,anime_id,rating")},
        r"^rating_complete\.csv: missing required column 'user_id'; header: user,anime_id,rating$",
        id="renamed_ratings_column",
    ),
    pytest.param(
        {R: ratings_csv("10;1;9", header="user_id;anime_id;rating")},
        r"^rating_complete\.csv: missing required column 'user_id' \(and 2 more\); "
        r"header: user_id;anime_id;rating$",
        id="wrong_delimiter_header",
    ),
    pytest.param(
        {R: ratings_csv("10,1,9,9", header="user_id,anime_id,rating,rating")},
        r"^rating_complete\.csv: column 'rating' appears more than once in the header$",
        id="repeated_column",
    ),
    pytest.param(
        {A: anime_csv(anime_line("1", "Caf\u00e9")).encode("latin-1")},
        r"^anime\.csv: not valid UTF-8 \(invalid continuation byte at byte \d+\)$",
        id="not_utf8",
    ),
]


@pytest.mark.parametrize(("files", "message"), FAIL_FAST_CASES)
def test_fail_fast_cases(tmp_path, files, message):
    raw = write_files(tmp_path / "raw", files)
    with pytest.raises(JobError, match=message) as exc:
        check_inputs(raw)
    assert "\n" not in str(exc.value)


def test_job_exits_2_with_one_line_for_a_missing_file(tmp_path, capsys):
    raw = write_files(tmp_path / "raw", {A: None})
    argv = ["--conf", str(REPO_ROOT / "conf" / "local.yaml"), "--set", f"paths.raw={raw}"]
    with pytest.raises(SystemExit) as exc:
        run_main(load_job("ingest").main, argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.endswith(f"error: anime.csv: input file not found at {raw / A}\n")
    assert "Traceback" not in err


@pytest.mark.e2e
def test_job_subprocess_exits_2_for_a_renamed_column(tmp_path):
    raw = write_files(
        tmp_path / "raw",
        {S: synopsis_csv("1,A,7.5,g,s", header=SYNOPSIS_HEADER.replace("sypnopsis", "Synopsis"))},
    )
    proc = subprocess.run(
        [
            sys.executable,
            "jobs/ingest.py",
            "--set",
            f"paths.raw={raw}",
            "--set",
            f"paths.lake={tmp_path / 'lake'}",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1] == (
        "error: anime_with_synopsis.csv: missing required column 'sypnopsis'; "
        "header: MAL_ID,Name,Score,Genres,Synopsis"
    )
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "lake").exists()
