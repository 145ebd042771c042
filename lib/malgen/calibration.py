"""Aggregate parameters of the real MAL 2020 files that the generator is calibrated to.

:data:`CALIBRATION` holds only aggregate statistics (shares, quantiles, counts) of the real
files in ``../shared/data/mal2020`` plus the published facts of the full ``rating_complete.csv``
(57,633,278 ratings, 310,059 users); no row, title name or company name of those files is
committed. The numbers live in the package data file ``calibration.json``, written by
:func:`derive_calibration` from the real files, so they are reproducible
(``tests/data/test_generate.py`` checks the committed file against it when the shared folder
exists). To rewrite the file::

    python -m malgen.calibration ../shared/data/mal2020

Quantile lists are taken at :data:`QUANTILE_PROBS`. Genre, type, source and age-rating labels are
the site's category vocabulary (part of the file format), kept with their shares.
"""

from __future__ import annotations

import json
import re
import sys
from importlib import resources
from pathlib import Path

import numpy as np

QUANTILE_PROBS: tuple[float, ...] = (
    0.0,
    0.01,
    0.05,
    0.1,
    0.2,
    0.3,
    0.4,
    0.5,
    0.6,
    0.7,
    0.8,
    0.9,
    0.95,
    0.99,
    1.0,
)

#: Facts of the full rating_complete.csv (not in the shared folder; from the dataset's README).
FULL_USERS = 310_059
FULL_RATINGS = 57_633_278
#: The largest per-user count in the full file is about 14k (README of the shared data).
FULL_MAX_PER_USER = 14_000

TYPES = ("TV", "OVA", "Movie", "Special", "ONA", "Music")

#: The calibration's package data file (derived by :func:`derive_calibration`; not hand-edited).
CALIBRATION_FILE = "calibration.json"


def calibration_json(calibration: dict) -> str:
    """The calibration as the text of :data:`CALIBRATION_FILE`: JSON in the derivation's key
    order, two-space indent, each list of numbers on one line, a final newline."""
    number_list = re.compile(r"\[\s*([-+.\deE]+(?:,\s*[-+.\deE]+)*)\s*\]")

    def one_line(match: re.Match) -> str:
        return "[" + ", ".join(n.strip() for n in match.group(1).split(",")) + "]"

    return number_list.sub(one_line, json.dumps(calibration, indent=2)) + "\n"


def load_calibration() -> dict:
    """The committed calibration, read from the package data file :data:`CALIBRATION_FILE`."""
    return json.loads(resources.files(__package__).joinpath(CALIBRATION_FILE).read_text())


#: The committed calibration the generator draws from.
CALIBRATION: dict = load_calibration()


def _r(x: float, digits: int = 4) -> float:
    """Round to ``digits`` significant digits (stable committed numbers)."""
    x = float(x)
    if x == 0 or not np.isfinite(x):
        return x
    return float(f"{x:.{digits}g}")


def _quantiles(values, probs=QUANTILE_PROBS) -> list[float]:
    return [_r(v) for v in np.quantile(np.asarray(values, dtype=float), probs)]


def _shares(series) -> dict[str, float]:
    counts = series.value_counts()
    total = counts.sum()
    return {str(k): _r(v / total) for k, v in counts.sort_index().items()}


def _count_pmf(field_series) -> dict[str, float]:
    """Share of titles with 0 (``Unknown``), 1, 2, ... comma-separated entries."""
    n = field_series.map(lambda s: 0 if s == "Unknown" else len(s.split(", ")))
    return {str(k): v for k, v in _shares(n.astype(int)).items()}


def _duration_minutes(text: str) -> float | None:
    """Minutes per episode from MAL's duration text ('24 min. per ep.', '1 hr. 55 min.')."""
    if text == "Unknown":
        return None
    hours = re.search(r"(\d+) hr\.", text)
    mins = re.search(r"(\d+) min\.", text)
    secs = re.search(r"(\d+) sec\.", text)
    total = (
        (int(hours.group(1)) * 60 if hours else 0)
        + (int(mins.group(1)) if mins else 0)
        + (int(secs.group(1)) / 60 if secs else 0)
    )
    return total or None


def derive_calibration(mal_dir: str | Path) -> dict:
    """Recompute :data:`CALIBRATION` from the real files in ``mal_dir`` (aggregates only)."""
    import pandas as pd

    mal = Path(mal_dir)
    anime = pd.read_csv(mal / "anime.csv", dtype=str, keep_default_na=False)
    syn = pd.read_csv(mal / "anime_with_synopsis.csv", dtype=str, keep_default_na=False)
    ratings = pd.read_csv(mal / "rating_complete_head_fullusers.csv")
    anime["MAL_ID"] = anime["MAL_ID"].astype(int)
    syn["MAL_ID"] = syn["MAL_ID"].astype(int)
    members = anime["Members"].astype(float)
    typed = anime[anime["Type"].isin(TYPES)]

    titles: dict = {
        "n_titles": len(anime),
        "max_mal_id": int(anime["MAL_ID"].max()),
        "type_share": _shares(anime["Type"]),
        "source_share": _shares(anime["Source"]),
        "age_rating_share": _shares(anime["Rating"]),
        "english_name_unknown_share": _r((anime["English name"] == "Unknown").mean()),
        "score_unknown_share": _r((anime["Score"] == "Unknown").mean()),
        "ranked_unknown_share": _r((anime["Ranked"] == "Unknown").mean()),
        "genre_count_pmf": _count_pmf(anime["Genres"]),
        "producers_count_pmf": _count_pmf(anime["Producers"]),
        "licensors_count_pmf": _count_pmf(anime["Licensors"]),
        "studios_count_pmf": _count_pmf(anime["Studios"]),
        "n_distinct_producers": int(
            anime["Producers"].str.split(", ").explode().loc[lambda s: s != "Unknown"].nunique()
        ),
        "n_distinct_studios": int(
            anime["Studios"].str.split(", ").explode().loc[lambda s: s != "Unknown"].nunique()
        ),
        "n_distinct_licensors": int(
            anime["Licensors"].str.split(", ").explode().loc[lambda s: s != "Unknown"].nunique()
        ),
    }
    genres = anime["Genres"].str.split(", ").explode()
    titles["genre_share"] = {
        str(g): _r(c / len(anime))
        for g, c in genres[genres != "Unknown"].value_counts().sort_index().items()
    }
    by_type: dict = {}
    years = anime["Aired"].str.extract(r"(\d{4})")[0].astype(float)
    minutes = anime["Duration"].map(_duration_minutes)
    for t in TYPES:
        sel = anime["Type"] == t
        eps = anime.loc[sel, "Episodes"]
        top = eps.value_counts().head(12)
        by_type[t] = {
            "log10_members": [
                _r(np.log10(members[sel]).mean()),
                _r(np.log10(members[sel]).std()),
            ],
            "episodes_top": {str(k): _r(v / top.sum()) for k, v in top.sort_index().items()},
            "year_quantiles": _quantiles(years[sel].dropna()),
            "minutes_quantiles": _quantiles(minutes[sel].dropna()),
            "premiered_known_share": _r((anime.loc[sel, "Premiered"] != "Unknown").mean()),
            "aired_unknown_share": _r((anime.loc[sel, "Aired"] == "Unknown").mean()),
        }
    titles["by_type"] = by_type
    del typed

    in_syn = anime["MAL_ID"].isin(syn["MAL_ID"])
    text = syn["sypnopsis"]
    placeholder = text.str.startswith("No synopsis")
    real_text = syn.loc[~placeholder & (text != "")].merge(anime[["MAL_ID", "Type"]], on="MAL_ID")
    words = real_text["sypnopsis"].str.split().str.len()
    synopsis = {
        "n_titles": len(syn),
        "coverage": _r(in_syn.mean()),
        "absent_titles_with_hentai_genre_share": _r(
            anime.loc[~in_syn, "Genres"].str.contains("Hentai").mean()
        ),
        "null_share": _r((text == "").mean()),
        "placeholders": {
            str(k): _r(v / len(syn)) for k, v in text[placeholder].value_counts().items()
        },
        "non_ascii_share": _r(text.str.contains(r"[^\x00-\x7f]").mean()),
        "words_quantiles_by_type": {t: _quantiles(words[real_text["Type"] == t]) for t in TYPES},
        "chars_quantiles": _quantiles(real_text["sypnopsis"].str.len()),
    }

    per_user = ratings.groupby("user_id").size()
    per_title = ratings.groupby("anime_id").size()
    by_user = ratings.assign(p=ratings["rating"] >= 9).groupby("user_id")
    hist = ratings["rating"].value_counts().sort_index()
    rated = ratings.merge(
        anime[["MAL_ID", "Type", "Members"]], left_on="anime_id", right_on="MAL_ID"
    )
    logn = np.log(per_title.to_numpy(dtype=float))
    logm = np.log(anime.set_index("MAL_ID").loc[per_title.index, "Members"].to_numpy(dtype=float))
    slope = np.polyfit(logm, logn, 1)[0]
    head = {
        "n_rows": len(ratings),
        "n_users": int(per_user.size),
        "user_id_span": int(per_user.index.max() - per_user.index.min() + 1),
        "hist_share": {str(k): _r(v / hist.sum()) for k, v in hist.items()},
        "mean": _r(ratings["rating"].mean()),
        "promoter_share": _r((ratings["rating"] >= 9).mean()),
        "per_user_quantiles": _quantiles(per_user),
        "per_user_mean": _r(per_user.mean()),
        "per_title_quantiles": _quantiles(per_title),
        "user_mean_quantiles": _quantiles(by_user["rating"].mean()),
        "user_std_quantiles": _quantiles(by_user["rating"].std().dropna()),
        "user_promoter_share_quantiles": _quantiles(by_user["p"].mean()),
        "rated_type_share": _shares(rated["Type"]),
        "log_count_vs_log_members_slope": _r(slope),
    }
    full = {
        "n_users": FULL_USERS,
        "n_ratings": FULL_RATINGS,
        "max_per_user": FULL_MAX_PER_USER,
        "mean_per_user": _r(FULL_RATINGS / FULL_USERS),
    }
    return {"titles": titles, "synopsis": synopsis, "ratings_head": head, "ratings_full": full}


def main(argv: list[str] | None = None) -> int:
    """Rewrite the package's :data:`CALIBRATION_FILE` from the real files in ``argv[0]``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m malgen.calibration MAL_DIR\n")
        return 2
    path = Path(__file__).with_name(CALIBRATION_FILE)
    path.write_text(calibration_json(derive_calibration(args[0])))
    sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
