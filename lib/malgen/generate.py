"""A MAL-shaped data generator: the three MAL 2020 files, from tiny to full scale.

Writes ``anime.csv``, ``anime_with_synopsis.csv`` and ``rating_complete.csv`` in exactly the
formats of the real Kaggle "Anime Recommendation Database 2020" files, deterministically from a
seed, with aggregate statistics calibrated to the real files
(:data:`malgen.calibration.CALIBRATION`) and a planted, learnable taste structure.

The generative story
--------------------
**Themes.** There are ``K`` themes (taste clusters such as space opera, school romance, sports,
idol music, dark fantasy, an adult theme; :data:`malgen.text.THEMES`). A theme fixes genre
weights, a tilt of the source mix (manga, light novel, ...), age ratings and a vocabulary (roles,
places, threats, goals, activities, adjectives, name words) used to write names and synopses.

**Franchises and titles.** Titles come in franchises (70% single titles, the rest 2..40 entries
with a heavy tail). A franchise has one theme, an invented *franchise word* (e.g. ``Kazerion``)
and a cast of invented characters; its titles' names and synopses use them ("Kazerion 2nd
Season", "... the legend of Kazerion ..."). Each title draws: a type (TV/OVA/Movie/Special/ONA/
Music, calibrated mix; the TV entries of a franchise come first), a start year (calibrated per
type; sequels follow 0-3 years apart), a studio (invented names; big studios are bigger, a
franchise mostly stays with its studio, each studio leans to a home theme), producers and
licensors (invented, counts calibrated), a source (theme-tilted), genres (count calibrated, drawn
from the theme's genres mixed with the global genre shares; adult titles always carry
``Hentai`` and are absent from ``anime_with_synopsis.csv``, like the real file), a hidden quality
``q`` (shared in part by the franchise) and a number of members (log-normal per type, correlated
with quality and the franchise).

**Users.** Each user belongs to a *fandom*. The non-adult themes are paired at random (a
perfect matching drawn from the seed) and a pair fandom loves both of its themes; there is also
one single-theme fandom per theme (``paired_fandom_share`` of users are in pair fandoms). Pairs
deliberately join themes that share no vocabulary (say sports + horror), so part of the
co-promotion structure cannot be seen in the text. A user also has: a theme taste vector
``a_u`` (fandom themes raised, the adult theme lowered unless it is the fandom's, plus noise per
theme), an era centre ``e_u`` and width ``w_u`` (a favourite period of premiere years), 0-3
*loyal studios* (drawn by studio size, ignoring theme), sometimes a favourite source, a rating
bias and a rating spread, and a number of ratings ``n_u`` (heavy tail calibrated to the real
head sample and to the full file; the totals hit the requested count exactly, see
:func:`user_rating_counts`).

**Affinity** of user ``u`` for title ``t``::

    A(u,t) = a_u[theme_t]                                  # fandom / theme taste
           - era_weight * min(((year_t - e_u) / w_u)^2, 4) / 2   # era loyalty
           + source_loyalty * [source_t == favourite source of u]
           + studio_loyalty * [studio_t in loyal studios of u]
           + z(u, franchise_t)                             # franchise taste

where ``z(u, f) ~ N(0, franchise_taste_sd^2)`` is drawn once per user and franchise of 2+ titles
(0 for single titles): a user who likes one entry of a franchise likes all of them.

**Which titles a user rates**: ``n_u`` distinct titles drawn without replacement with weight
``members_t ** pop_exponent * exp(exposure_affinity * A(u,t) + tv_exposure_bonus * [TV])``
(Gumbel top-k; a user lists them in that drawing order). **The rating**: a latent score
``r* = bias_u + spread_u * (rating_affinity * A(u,t) + rating_quality * q_t + eps)`` with
``eps ~ N(0, 1)``, cut into 1..10 by global cut points set once per dataset (from a pilot of the
first user blocks) so that the rating histogram matches the real one (30.8% promoters, 9-10).

**What is learnable and what text can see.** Promoters (9-10) of two titles overlap when the
titles share a theme (visible: genres and vocabulary), a franchise (partly visible: one invented
word and character names, which generic sentence semantics treats as noise), a studio (partly:
invented studio names) or an era (invisible: a year in the text), or when their themes are paired
in a fandom (invisible). Generic sentences shared by all themes, producers drawn at random and
the genre "Comedy" everywhere add text similarity with no taste behind it. So text similarity
correlates only partly with promoter Jaccard, and fine-tuning on promoter Jaccard has real
structure to learn.

**The anime.csv counters** (Score, Score-10..Score-1, Ranked, Popularity, Members, Favorites,
Watching, ...) come from the members and the generated ratings: a title's Score-k votes follow its
generated rating histogram (with a small prior), Score is their mean, Popularity the rank by
members, Ranked the rank by score (Unknown for adult titles, like the real file).

Determinism: everything is drawn from ``numpy.random.SeedSequence`` streams of the seed (titles,
users, one stream per block of :data:`BLOCK_USERS` users) and a seeded :class:`random.Random` for
text, so the same seed and sizes give byte-identical files; the block size is a fixed constant
of the model, so memory use does not change the output. Memory stays bounded: the ratings are
generated and written one block of users at a time (a ``BLOCK_USERS x titles`` float32 matrix).
"""

from __future__ import annotations

import csv
import logging
import math
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from malgen import text as gt
from malgen.calibration import CALIBRATION, QUANTILE_PROBS

log = logging.getLogger(__name__)

ANIME_FILE = "anime.csv"
SYNOPSIS_FILE = "anime_with_synopsis.csv"
RATINGS_FILE = "rating_complete.csv"

SCORE_COLUMNS = tuple(f"Score-{k}" for k in range(10, 0, -1))
ANIME_COLUMNS: tuple[str, ...] = (
    "MAL_ID", "Name", "Score", "Genres", "English name", "Japanese name", "Type", "Episodes",
    "Aired", "Premiered", "Producers", "Licensors", "Studios", "Source", "Duration", "Rating",
    "Ranked", "Popularity", "Members", "Favorites", "Watching", "Completed", "On-Hold", "Dropped",
    "Plan to Watch", *SCORE_COLUMNS,
)  # fmt: skip
SYNOPSIS_COLUMNS: tuple[str, ...] = ("MAL_ID", "Name", "Score", "Genres", "sypnopsis")
RATINGS_COLUMNS: tuple[str, ...] = ("user_id", "anime_id", "rating")
UNKNOWN = "Unknown"

#: Users per generation block; a constant of the model (changing it changes the output).
BLOCK_USERS = 1024
#: Blocks used to set the rating cut points (the pilot).
PILOT_BLOCKS = 2
#: A user rates at most this share of all titles.
MAX_USER_SHARE = 0.85

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
SEASONS = ("Winter", "Spring", "Summer", "Fall")


@dataclass(frozen=True)
class Scale:
    """Sizes of one generated dataset."""

    users: int
    titles: int
    ratings: int


SCALES: dict[str, Scale] = {
    "tiny": Scale(users=400, titles=200, ratings=20_000),
    # make run's: every stage, a short fine-tune included, in minutes on 2 CPU cores
    "sample": Scale(users=1_000, titles=500, ratings=150_000),
    "full": Scale(
        users=CALIBRATION["ratings_full"]["n_users"],
        titles=CALIBRATION["titles"]["n_titles"],
        ratings=CALIBRATION["ratings_full"]["n_ratings"],
    ),
}


@dataclass(frozen=True)
class ModelParams:
    """Strengths of the planted structure (see the module docstring for each term)."""

    pop_exponent: float = 0.62
    tv_exposure_bonus: float = 0.5
    exposure_affinity: float = 1.0
    theme_primary: float = 2.0
    theme_secondary: float = 1.8
    theme_noise: float = 0.5
    adult_penalty: float = 2.0
    era_weight: float = 1.0
    source_loyalty: float = 0.5
    studio_loyalty: float = 2.0
    # Chosen by measurement at full scale (310k users): real co-promotion is strongest within
    # franchises, and the case-study label rule (train-split Jaccard >= 0.3, both titles >= 20
    # promoters, intersection >= 5) must find about as many pairs as on real MAL (the case
    # study trains on ~2.3k pairs at 1:1); a weaker franchise taste leaves fine-tuning almost
    # no pairs. The pair counts per value: python -m benchmarks.label_yield
    # (docs/performance.md, "Generated data").
    franchise_taste_sd: float = 2.85
    paired_fandom_share: float = 0.6
    rating_affinity: float = 0.8
    rating_quality: float = 0.5
    user_bias_sd: float = 0.9
    user_spread_sd: float = 0.3
    singleton_share: float = 0.7


@dataclass
class Titles:
    """The generated titles: latent attributes (arrays) and the text columns (lists)."""

    anime_id: np.ndarray  # int64, ascending order of the output files
    theme: np.ndarray  # int, index into malgen.text.THEMES
    franchise: np.ndarray  # int
    studio: np.ndarray  # int, first listed studio, -1 = Unknown
    year: np.ndarray  # int
    source: np.ndarray  # int, index into the source list, -1 = Unknown
    quality: np.ndarray  # float
    members: np.ndarray  # int64
    adult: np.ndarray  # bool
    is_tv: np.ndarray  # bool
    columns: dict[str, list[str]]  # anime.csv text columns (except the counters)
    synopsis: list[str | None]  # None = not in anime_with_synopsis.csv
    sources: list[str]
    n_studios: int

    def __len__(self) -> int:
        return len(self.anime_id)


@dataclass
class Users:
    """The generated users' latent attributes, one row per user."""

    user_id: np.ndarray  # int64, ascending
    n_ratings: np.ndarray  # int64
    fandom: np.ndarray  # int, index into fandom_themes
    fandom_themes: np.ndarray  # (n_fandoms, 2) primary and secondary theme
    theme_affinity: np.ndarray  # (users, K) float32
    era_centre: np.ndarray
    era_width: np.ndarray
    favourite_source: np.ndarray  # -1 = none
    loyal_studios: np.ndarray  # (users, 3), -1 padded
    bias: np.ndarray
    spread: np.ndarray

    def __len__(self) -> int:
        return len(self.user_id)


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *stream]))


def _pmf(shares: dict[str, float]) -> tuple[list[str], np.ndarray]:
    keys = list(shares)
    p = np.array([shares[k] for k in keys], dtype=float)
    return keys, p / p.sum()


def _from_quantiles(u: np.ndarray, quantiles: list[float], log_space: bool = False) -> np.ndarray:
    """Inverse CDF by linear interpolation between calibrated quantiles (at QUANTILE_PROBS)."""
    q = np.asarray(quantiles, dtype=float)
    if log_space:
        return np.exp(np.interp(u, QUANTILE_PROBS, np.log(np.maximum(q, 1e-9))))
    return np.interp(u, QUANTILE_PROBS, q)


def user_rating_counts(
    n_users: int, total: int, cap: int, rng: np.random.Generator, tail_index: float = 3.0
) -> np.ndarray:
    """Ratings per user: the real head sample's shape, a Pareto tail, summing to ``total``.

    Raw counts follow the head sample's quantiles (log-interpolated) up to its 99th percentile
    and a Pareto tail with index ``tail_index`` above it (the full file's max is ~14k). They are
    scaled by the factor ``f`` with ``sum(clip(f * raw, 1, cap)) == total`` (bisection), floored,
    and the remainder goes one each to the users with the largest fractional parts.
    """
    if not n_users <= total <= n_users * cap:
        raise ValueError(
            f"ratings={total} must be between users={n_users} and users*cap={n_users * cap}"
        )
    q = CALIBRATION["ratings_head"]["per_user_quantiles"]
    u = rng.random(n_users)
    raw = _from_quantiles(np.minimum(u, 0.99), q, log_space=True)
    tail = u > 0.99
    q99 = _from_quantiles(np.array([0.99]), q, log_space=True)[0]
    raw[tail] = q99 * (0.01 / np.maximum(1.0 - u[tail], 1e-12)) ** (1.0 / tail_index)
    lo, hi = 0.0, total / raw.sum() * 4 + cap
    for _ in range(200):
        mid = (lo + hi) / 2
        if np.clip(raw * mid, 1, cap).sum() < total:
            lo = mid
        else:
            hi = mid
    x = np.clip(raw * hi, 1, cap)
    counts = np.floor(x).astype(np.int64)
    remainder = int(total - counts.sum())
    if remainder < 0:  # floating error at the bounds: take from the largest
        order = np.argsort(-counts, kind="stable")
        counts[order[:-remainder]] -= 1
    elif remainder > 0:
        frac = np.where(counts < cap, x - counts, -1.0)
        order = np.argsort(-frac, kind="stable")
        counts[order[:remainder]] += 1
    assert counts.sum() == total and counts.min() >= 1 and counts.max() <= cap
    return counts


def _weighted_sample(rng: np.random.Generator, weights: np.ndarray, k: int) -> np.ndarray:
    """``k`` distinct indices drawn without replacement proportionally to ``weights``."""
    keys = np.log(np.maximum(weights, 1e-300)) + rng.gumbel(size=len(weights))
    return np.argsort(-keys, kind="stable")[:k]


def _format_minutes(minutes: float, per_episode: bool) -> str:
    if minutes < 1:
        text = f"{max(1, round(minutes * 60))} sec."
    elif minutes >= 60:
        hours, mins = divmod(round(minutes), 60)
        text = f"{hours} hr. {mins} min." if mins else f"{hours} hr."
    else:
        text = f"{round(minutes)} min."
    return f"{text} per ep." if per_episode else text


def _aired(rnd: random.Random, year: int, episodes: int | None, title_type: str) -> str:
    month = rnd.randrange(12)
    day = rnd.randint(1, 28)
    start = f"{MONTHS[month]} {day}, {year}"
    if rnd.random() < 0.075:
        return str(year)
    if episodes is None:
        return f"{start} to ?"
    if episodes <= 1:
        return start
    weeks = episodes if title_type == "TV" else max(1, episodes * rnd.randint(1, 8))
    end_days = month * 30 + day + weeks * 7
    end_year = year + end_days // 360
    end_month = (end_days % 360) // 30
    return f"{start} to {MONTHS[end_month]} {rnd.randint(1, 28)}, {end_year}"


def build_titles(n_titles: int, seed: int, params: ModelParams | None = None) -> Titles:
    """Generate ``n_titles`` titles: franchises, latent attributes and all text columns."""
    params = params or ModelParams()
    if n_titles < 10:
        raise ValueError(f"titles={n_titles} must be at least 10")
    cal = CALIBRATION["titles"]
    rng = _rng(seed, 1)
    rnd = random.Random(int(np.random.SeedSequence([seed, 2]).generate_state(1)[0]))
    themes = gt.THEMES
    n_themes = len(themes)
    adult_theme = next(i for i, t in enumerate(themes) if t.key == gt.ADULT_THEME)

    # Franchises: sizes with a heavy tail, one theme each; the TV entries come first.
    sizes = np.where(
        rng.random(n_titles) < params.singleton_share,
        1,
        np.minimum(2 + np.floor(rng.pareto(1.5, n_titles) * 1.5), 40),
    ).astype(np.int64)
    ends = np.cumsum(sizes)
    n_fr = int(np.searchsorted(ends, n_titles) + 1)
    sizes = sizes[:n_fr]
    sizes[-1] -= ends[n_fr - 1] - n_titles
    franchise = np.repeat(np.arange(n_fr), sizes)
    index_in_fr = np.arange(n_titles) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    theme_w = np.array([t.weight for t in themes])
    fr_theme = rng.choice(n_themes, size=n_fr, p=theme_w / theme_w.sum())
    theme = fr_theme[franchise]
    adult = theme == adult_theme

    type_keys, type_p = _pmf(cal["type_share"])
    types = np.array(type_keys)[rng.choice(len(type_keys), size=n_titles, p=type_p)]
    order = ["TV", "Movie", "OVA", "Special", "ONA", "Music", UNKNOWN]
    rank = np.array([order.index(t) for t in types])
    perm = np.lexsort((rank, franchise))  # within a franchise: TV first
    types = types[perm]

    # Years: the first entry from the type's calibrated quantiles, sequels 0-3 years later.
    by_type = cal["by_type"]
    first_year = np.array(
        [_from_quantiles(rng.random(1), by_type.get(t, by_type["ONA"])["year_quantiles"])[0]
         for t in types[np.cumsum(sizes) - sizes]]
    )  # fmt: skip
    gaps = rng.choice([0, 0, 1, 1, 1, 2, 3], size=n_titles)
    gaps[index_in_fr == 0] = 0
    year_offset = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[np.cumsum(sizes) - sizes], sizes)
    year = np.minimum(np.round(first_year[franchise] + year_offset), 2021).astype(np.int64)

    # Quality and members (log-normal per type; correlated with quality and the franchise).
    fr_quality, fr_pop = rng.normal(size=n_fr), rng.normal(size=n_fr)
    quality = 0.7 * fr_quality[franchise] + 0.714 * rng.normal(size=n_titles)
    mu = np.array([by_type.get(t, by_type["ONA"])["log10_members"][0] for t in types])
    sd = np.array([by_type.get(t, by_type["ONA"])["log10_members"][1] for t in types])
    z = 0.5 * quality + 0.6 * fr_pop[franchise] + 0.62 * rng.normal(size=n_titles)
    members = np.maximum(1, np.round(10 ** (mu + sd * z))).astype(np.int64)

    # Studios: invented, Zipf sizes, a home theme; franchises mostly keep their studio.
    n_studios = max(4, round(n_titles * cal["n_distinct_studios"] / cal["n_titles"]))
    studio_names = gt.company_names(rnd, "studio", n_studios)
    studio_w = 1.0 / np.arange(1, n_studios + 1) ** 0.9
    studio_home = rng.integers(0, n_themes, size=n_studios)
    fr_studio = np.array(
        [_weighted_sample(rng, studio_w * np.where(studio_home == k, 6.0, 1.0), 1)[0]
         for k in fr_theme]
    )  # fmt: skip
    studio_counts, studio_count_p = _pmf(cal["studios_count_pmf"])
    n_st = np.array(studio_counts, dtype=int)[
        rng.choice(len(studio_counts), size=n_titles, p=studio_count_p)
    ]
    n_producers_pool = max(5, round(n_titles * cal["n_distinct_producers"] / cal["n_titles"]))
    producer_names = gt.company_names(rnd, "producer", n_producers_pool)
    producer_w = 1.0 / np.arange(1, n_producers_pool + 1) ** 0.8
    n_lic_pool = max(4, round(cal["n_distinct_licensors"] * min(1.0, n_titles / 17562) ** 0.5))
    licensor_names = gt.company_names(rnd, "licensor", n_lic_pool)
    licensor_w = 1.0 / np.arange(1, n_lic_pool + 1) ** 1.1
    prod_counts, prod_p = _pmf(cal["producers_count_pmf"])
    lic_counts, lic_p = _pmf(cal["licensors_count_pmf"])
    n_prod = np.array(prod_counts, dtype=int)[rng.choice(len(prod_counts), n_titles, p=prod_p)]
    n_lic = np.array(lic_counts, dtype=int)[rng.choice(len(lic_counts), n_titles, p=lic_p)]

    # Sources: the calibrated mix tilted to the theme's sources (Unknown share kept).
    src_share = dict(cal["source_share"])
    p_unknown_src = src_share.pop(UNKNOWN)
    sources = sorted(src_share)
    base_src = np.array([src_share[s] for s in sources])
    base_src /= base_src.sum()

    genre_share = {g: s for g, s in cal["genre_share"].items()}
    genre_names = sorted(genre_share)
    global_gw = np.array([genre_share[g] for g in genre_names])
    genre_counts, genre_count_p = _pmf(cal["genre_count_pmf"])
    n_genres = np.array(genre_counts, dtype=int)[
        rng.choice(len(genre_counts), n_titles, p=genre_count_p)
    ]
    age_keys, age_p = _pmf(cal["age_rating_share"])
    p_unknown_age = age_p[age_keys.index(UNKNOWN)]

    studio = np.full(n_titles, -1, dtype=np.int64)
    source = np.full(n_titles, -1, dtype=np.int64)
    cols: dict[str, list[str]] = {c: [] for c in ANIME_COLUMNS[:16]}
    synopsis: list[str | None] = []
    syn_cal = CALIBRATION["synopsis"]
    placeholders = list(syn_cal["placeholders"].items())
    log_members = np.log10(members)
    obscurity = 1.0 - (np.argsort(np.argsort(log_members)) + 0.5) / n_titles  # 1 = least known
    fr_text: dict[int, gt.FranchiseText] = {}
    counters: dict[int, dict] = {}
    names_seen: set[str] = set()
    for t in range(n_titles):
        f, th = int(franchise[t]), themes[int(theme[t])]
        if f not in fr_text:
            fr_text[f] = gt.franchise_text(rnd, th)
            counters[f] = {}
        ft, ttype, idx = fr_text[f], str(types[t]), int(index_in_fr[t])
        name, english, japanese = gt.entry_names(rnd, ft, th, ttype, idx, counters[f])
        while name in names_seen:
            name, english = f"{name} ({year[t]})", f"{english} ({year[t]})"
        names_seen.add(name)
        tcal = by_type.get(ttype, by_type["ONA"])

        # Episodes, duration, aired, premiered.
        ep_keys, ep_p = _pmf(tcal["episodes_top"])
        ep = ep_keys[int(rng.choice(len(ep_keys), p=ep_p))] if ttype != UNKNOWN else UNKNOWN
        episodes = None if ep == UNKNOWN else int(ep)
        minutes = _from_quantiles(rng.random(1), tcal["minutes_quantiles"])[0]
        duration = (
            UNKNOWN
            if rng.random() < 0.03
            else _format_minutes(minutes, per_episode=episodes is None or episodes > 1)
        )
        if rnd.random() < tcal["aired_unknown_share"] or ttype == UNKNOWN:
            aired, premiered = UNKNOWN, UNKNOWN
        else:
            aired = _aired(rnd, int(year[t]), episodes, ttype)
            premiered = UNKNOWN
            if ttype == "TV" and rnd.random() < tcal["premiered_known_share"]:
                month = MONTHS.index(aired[:3]) if aired[:3] in MONTHS else rnd.randrange(12)
                premiered = f"{SEASONS[month // 3]} {year[t]}"

        # Companies.
        names_studios: list[str] = []
        if n_st[t] > 0:
            first = (
                int(fr_studio[f])
                if rng.random() < 0.85
                else int(_weighted_sample(rng, studio_w, 1)[0])
            )
            studio[t] = first
            extra = _weighted_sample(rng, studio_w, int(n_st[t]) + 1)
            names_studios = [studio_names[first]] + [studio_names[s] for s in extra if s != first][
                : int(n_st[t]) - 1
            ]
        producers = [producer_names[i] for i in _weighted_sample(rng, producer_w, int(n_prod[t]))]
        licensors = [licensor_names[i] for i in _weighted_sample(rng, licensor_w, int(n_lic[t]))]

        # Source, genres, age rating.
        if rng.random() >= p_unknown_src:
            tilt = np.array([th.sources.get(s, 0.0) for s in sources])
            p = 0.5 * base_src + 0.5 * tilt / tilt.sum()
            source[t] = int(rng.choice(len(sources), p=p / p.sum()))
        gw = np.array([th.genres.get(g, 0.0) for g in genre_names])
        gw = 8 * gw / gw.sum() + global_gw / global_gw.sum()
        if not adult[t]:
            gw[genre_names.index(gt.ADULT_GENRE)] = 0.0
        first_genre = next(iter(th.genres))
        k = max(int(n_genres[t]), 1 if adult[t] or ttype == "Music" else 0)
        genres = [first_genre] if k else []
        if ttype == "Music" and "Music" not in genres:
            genres.append("Music")
        gw[[genre_names.index(g) for g in genres]] = 0.0
        genres += [genre_names[i] for i in _weighted_sample(rng, gw, max(0, k - len(genres)))]
        if adult[t]:
            age = gt.RX
        elif rng.random() < p_unknown_age:
            age = UNKNOWN
        else:
            age_keys_t, age_p_t = _pmf(th.ages)
            age = age_keys_t[int(rng.choice(len(age_keys_t), p=age_p_t))]

        cols["MAL_ID"].append("")  # filled once ids are assigned
        cols["Name"].append(name)
        cols["Score"].append("")
        cols["Genres"].append(", ".join(sorted(genres)) if genres else UNKNOWN)
        english_known = rng.random() < min(0.98, 0.8 * (1.0 - obscurity[t]) ** 1.3 + 0.03)
        cols["English name"].append(english if english_known else UNKNOWN)
        cols["Japanese name"].append(japanese)
        cols["Type"].append(ttype)
        cols["Episodes"].append(ep)
        cols["Aired"].append(aired)
        cols["Premiered"].append(premiered)
        cols["Producers"].append(", ".join(producers) if producers else UNKNOWN)
        cols["Licensors"].append(", ".join(licensors) if licensors else UNKNOWN)
        cols["Studios"].append(", ".join(names_studios) if names_studios else UNKNOWN)
        cols["Source"].append(sources[source[t]] if source[t] >= 0 else UNKNOWN)
        cols["Duration"].append(duration)
        cols["Rating"].append(age)

        # Synopsis (adult titles are absent from anime_with_synopsis.csv, like the real file).
        if adult[t]:
            synopsis.append(None)
            continue
        u = rnd.random()
        weight = 2.0 * obscurity[t]  # placeholders go to obscure titles
        acc = 0.0
        text = None
        for placeholder, share in placeholders:
            acc += share * weight
            if u < acc:
                text = placeholder
                break
        if text is None and rnd.random() < syn_cal["null_share"]:
            text = ""
        if text is None:
            words = syn_cal["words_quantiles_by_type"].get(
                ttype, syn_cal["words_quantiles_by_type"]["TV"]
            )
            target = int(round(_from_quantiles(np.array([rnd.random()]), words)[0]))
            text = gt.synopsis_text(
                rnd, th, ft, name, ttype, idx, target, syn_cal["non_ascii_share"]
            )
        synopsis.append(text)

    # MAL ids: ascending with gaps, older titles tend to get lower ids.
    max_id = cal["max_mal_id"] * n_titles / cal["n_titles"]
    id_gaps = rng.geometric(min(1.0, n_titles / max_id), size=n_titles)
    ids = np.cumsum(id_gaps)
    id_order = np.argsort(year + rng.normal(0, 8, size=n_titles), kind="stable")
    anime_id = np.empty(n_titles, dtype=np.int64)
    anime_id[id_order] = ids
    out = np.argsort(anime_id, kind="stable")  # reorder everything by id

    def take(values):
        return [values[i] for i in out]

    cols = {c: take(v) for c, v in cols.items()}
    cols["MAL_ID"] = [str(i) for i in anime_id[out]]
    return Titles(
        anime_id=anime_id[out],
        theme=theme[out],
        franchise=franchise[out],
        studio=studio[out],
        year=year[out],
        source=source[out],
        quality=quality[out],
        members=members[out],
        adult=adult[out],
        is_tv=types[out] == "TV",
        columns=cols,
        synopsis=take(synopsis),
        sources=sources,
        n_studios=n_studios,
    )


def _grouped(keys: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR of ``keys`` (-1 skipped): (ptr, members) with group g's items at ptr[g]:ptr[g+1]."""
    valid = np.flatnonzero(keys >= 0)
    order = valid[np.argsort(keys[valid], kind="stable")]
    ptr = np.zeros(n_groups + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys[valid], minlength=n_groups), out=ptr[1:])
    return ptr, order


def build_users(
    n_users: int, n_ratings: int, titles: Titles, seed: int, params: ModelParams | None = None
) -> Users:
    """Generate the users' latent attributes (all of them; a few floats per user)."""
    params = params or ModelParams()
    rng = _rng(seed, 3)
    n_titles = len(titles)
    n_themes = len(gt.THEMES)
    adult_theme = next(i for i, t in enumerate(gt.THEMES) if t.key == gt.ADULT_THEME)
    user_id = np.cumsum(1 + rng.poisson(0.157, size=n_users)) - 1
    cap = max(1, int(MAX_USER_SHARE * n_titles))
    counts = user_rating_counts(n_users, n_ratings, cap, rng)

    # Fandoms: themes paired at random (a pair shares its fans) plus one single-theme fandom
    # per theme; the adult theme is never paired.
    theme_w = np.array([t.weight for t in gt.THEMES])
    others = rng.permutation([k for k in range(n_themes) if k != adult_theme])
    n_pairs = len(others) // 2
    primary = np.concatenate([others[: 2 * n_pairs : 2], np.arange(n_themes)])
    secondary = np.concatenate([others[1 : 2 * n_pairs : 2], np.arange(n_themes)])
    fandom_w = (theme_w[primary] + theme_w[secondary]) / 2 * rng.gamma(4.0, size=len(primary))
    fandom_w[:n_pairs] *= params.paired_fandom_share / fandom_w[:n_pairs].sum()
    fandom_w[n_pairs:] *= (1 - params.paired_fandom_share) / fandom_w[n_pairs:].sum()
    fandom_w[primary == adult_theme] *= 0.3
    fandom = rng.choice(len(primary), size=n_users, p=fandom_w / fandom_w.sum())
    aff = params.theme_noise * rng.normal(size=(n_users, n_themes))
    rows = np.arange(n_users)
    aff[rows, primary[fandom]] += params.theme_primary
    paired = primary[fandom] != secondary[fandom]
    aff[rows[paired], secondary[fandom][paired]] += params.theme_secondary
    not_adult_fan = (primary[fandom] != adult_theme) & (secondary[fandom] != adult_theme)
    aff[not_adult_fan, adult_theme] -= params.adult_penalty

    era_centre = np.clip(rng.normal(2010, 6, size=n_users), 1975, 2021)
    era_width = rng.uniform(4, 12, size=n_users)
    favourite_source = np.where(
        rng.random(n_users) < 0.4, rng.integers(0, len(titles.sources), size=n_users), -1
    )

    # Studio loyalties: by studio size (sqrt of members), ignoring theme.
    studio_pop = np.bincount(
        titles.studio[titles.studio >= 0],
        weights=titles.members[titles.studio >= 0],
        minlength=titles.n_studios,
    )
    k_st = rng.choice(4, size=n_users, p=[0.3, 0.35, 0.25, 0.1])
    loyal_studios = np.full((n_users, 3), -1, dtype=np.int64)
    if studio_pop.sum() > 0:
        p = np.sqrt(studio_pop) / np.sqrt(studio_pop).sum()
        draw = rng.choice(titles.n_studios, size=(n_users, 3), p=p)
        loyal_studios = np.where(np.arange(3)[None, :] < k_st[:, None], draw, -1)

    return Users(
        user_id=user_id,
        n_ratings=counts,
        fandom=fandom,
        fandom_themes=np.stack([primary, secondary], axis=1),
        theme_affinity=aff.astype(np.float32),
        era_centre=era_centre,
        era_width=era_width,
        favourite_source=favourite_source,
        loyal_studios=loyal_studios,
        bias=rng.normal(0, params.user_bias_sd, size=n_users),
        spread=np.exp(rng.normal(0, params.user_spread_sd, size=n_users)),
    )


class RatingSampler:
    """Draws one block of users' (title, latent score) pairs; see the module docstring."""

    def __init__(self, titles: Titles, users: Users, seed: int, params: ModelParams):
        self.titles, self.users, self.seed, self.params = titles, users, seed, params
        combo = np.stack([titles.theme, titles.year, titles.source], axis=1)
        self.combos, self.combo_of_title = np.unique(combo, axis=0, return_inverse=True)
        self.combo_of_title = self.combo_of_title.ravel()
        self.log_weight = (
            params.pop_exponent * np.log(titles.members) + params.tv_exposure_bonus * titles.is_tv
        ).astype(np.float32)
        self.studio_ptr, self.studio_titles = _grouped(titles.studio, titles.n_studios)
        # Franchise taste only matters for franchises of 2+ titles (for a single title it would
        # be one more independent noise term); singles point at a zero column.
        sizes = np.bincount(titles.franchise)
        multi = np.flatnonzero(sizes > 1)
        self.n_multi = len(multi)
        slot = np.full(len(sizes), self.n_multi, dtype=np.int64)
        slot[multi] = np.arange(self.n_multi)
        self.taste_slot = slot[titles.franchise]
        self.combo_theme = self.combos[:, 0]
        self.combo_year = self.combos[:, 1].astype(np.float32)
        self.combo_source = self.combos[:, 2]

    def _boost(self, affinity, loyal, ptr, members, strength) -> None:
        rows, slots = np.nonzero(loyal >= 0)
        groups = loyal[rows, slots]
        lengths = ptr[groups + 1] - ptr[groups]
        if lengths.sum() == 0:
            return
        starts = np.repeat(ptr[groups] - np.cumsum(lengths) + lengths, lengths)
        items = members[starts + np.arange(lengths.sum())]
        r = np.repeat(rows, lengths)
        # Duplicate loyalties (same studio drawn twice) count once.
        key = np.unique(r.astype(np.int64) * len(self.titles) + items)
        affinity[key // len(self.titles), key % len(self.titles)] += strength

    def affinity(self, lo: int, hi: int, rng: np.random.Generator) -> np.ndarray:
        """``A(u, t)`` for users ``lo:hi`` and all titles (float32, block x titles)."""
        u, p = self.users, self.params
        table = u.theme_affinity[lo:hi][:, self.combo_theme]  # (block, combos) float32
        dist = (self.combo_year[None, :] - u.era_centre[lo:hi, None].astype(np.float32)) / (
            u.era_width[lo:hi, None].astype(np.float32)
        )
        np.square(dist, out=dist)
        np.minimum(dist, np.float32(4.0), out=dist)
        table -= np.float32(0.5 * p.era_weight) * dist
        fav = u.favourite_source[lo:hi, None]
        table += np.float32(p.source_loyalty) * ((fav == self.combo_source[None, :]) & (fav >= 0))
        affinity = np.take(table, self.combo_of_title, axis=1)
        self._boost(
            affinity, u.loyal_studios[lo:hi], self.studio_ptr, self.studio_titles,
            p.studio_loyalty,
        )  # fmt: skip
        taste = np.zeros((hi - lo, self.n_multi + 1), dtype=np.float32)
        taste[:, :-1] = rng.standard_normal(size=(hi - lo, self.n_multi), dtype=np.float32)
        taste *= np.float32(p.franchise_taste_sd)
        affinity += np.take(taste, self.taste_slot, axis=1)
        return affinity

    def block(self, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(user row, title index, latent score) of block ``b``, users in order."""
        lo, hi = b * BLOCK_USERS, min((b + 1) * BLOCK_USERS, len(self.users))
        rng = _rng(self.seed, 4, b)
        p, n_titles = self.params, len(self.titles)
        affinity = self.affinity(lo, hi, rng)
        keys = affinity * np.float32(p.exposure_affinity)
        keys += self.log_weight
        noise = rng.standard_exponential(size=keys.shape, dtype=np.float32)
        np.maximum(noise, np.float32(1e-30), out=noise)
        np.log(noise, out=noise)
        keys -= noise  # + Gumbel(0, 1)
        del noise
        counts = self.users.n_ratings[lo:hi]
        picked = []
        for i, n in enumerate(counts):
            row = keys[i]
            top = np.argpartition(row, n_titles - n)[n_titles - n :]
            picked.append(top[np.argsort(-row[top], kind="stable")])
        titles = np.concatenate(picked)
        rows = np.repeat(np.arange(lo, hi), counts)
        aff = affinity[rows - lo, titles]
        eps = rng.normal(size=len(titles))
        u = self.users
        latent = u.bias[rows] + u.spread[rows] * (
            p.rating_affinity * aff + p.rating_quality * self.titles.quality[titles] + eps
        )
        return rows, titles, latent


def ratings_of(latent: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """The 1-10 ratings of latent scores: ``1 + searchsorted(cuts, latent)``."""
    return (1 + np.searchsorted(cuts, latent)).astype(np.int32)


def rating_cut_points(latent: np.ndarray) -> np.ndarray:
    """Nine cut points so that ``1 + searchsorted(cuts, latent)`` has the real histogram.

    Cut point k (k = 1..9) is the quantile of ``latent`` at the real share of ratings <= k.
    """
    hist = CALIBRATION["ratings_head"]["hist_share"]
    shares = np.array([hist[str(k)] for k in range(1, 11)])
    cum = np.cumsum(shares / shares.sum())[:-1]
    return np.quantile(latent, cum)


def _fmt_float(x: float) -> str:
    return str(float(x))


def _title_counters(
    titles: Titles, hist: np.ndarray, rng: np.random.Generator
) -> dict[str, list[str]]:
    """anime.csv counters (Score, Score-k, Ranked, Popularity, Members, ...) per title."""
    n = len(titles)
    cal = CALIBRATION["titles"]
    prior = np.array([CALIBRATION["ratings_head"]["hist_share"][str(k)] for k in range(1, 11)])
    dist = (hist + 2.0 * prior) / (hist.sum(axis=1, keepdims=True) + 2.0)
    members = titles.members
    scored = np.round(members * rng.uniform(0.3, 0.6, size=n))
    votes = np.round(scored[:, None] * dist)  # (n, 10), rating 1..10
    total = votes.sum(axis=1)
    mean = (votes * np.arange(1, 11)).sum(axis=1) / np.maximum(total, 1)
    fallback = (dist * np.arange(1, 11)).sum(axis=1)
    mean = np.where(total > 0, mean, fallback)
    # Scores are Unknown for the least-known titles (calibrated share).
    known_rank = np.argsort(np.argsort(-members, kind="stable"), kind="stable")
    score_known = known_rank < round(n * (1.0 - cal["score_unknown_share"]))
    ranked_known = ~titles.adult
    rank_order = np.lexsort((-members, -mean))
    ranked = np.zeros(n, dtype=np.int64)
    ranked_list = rank_order[ranked_known[rank_order]]
    ranked[ranked_list] = np.arange(1, len(ranked_list) + 1)
    popularity = known_rank + 1
    fav = np.round(members * np.minimum(0.1, 0.004 * np.exp(1.2 * titles.quality)))
    shares = rng.dirichlet([8, 55, 5, 4, 25], size=n)  # watching, completed, on-hold, ...
    status = np.floor(shares * members[:, None]).astype(np.int64)
    status[:, 1] += members - status.sum(axis=1)
    out = {
        "Score": [
            f"{round(m, 2)}" if k else UNKNOWN for m, k in zip(mean, score_known, strict=True)
        ],
        "Ranked": [_fmt_float(r) if r > 0 else UNKNOWN for r in ranked],
        "Popularity": [str(p) for p in popularity],
        "Members": [str(m) for m in members],
        "Favorites": [str(int(f)) for f in fav],
    }
    for j, col in enumerate(("Watching", "Completed", "On-Hold", "Dropped", "Plan to Watch")):
        out[col] = [str(v) for v in status[:, j]]
    for k in range(10, 0, -1):
        out[f"Score-{k}"] = [_fmt_float(v) if v > 0 else UNKNOWN for v in votes[:, k - 1]]
    return out


def write_anime_files(out_dir: Path, titles: Titles, hist: np.ndarray, seed: int) -> int:
    """Write anime.csv and anime_with_synopsis.csv; returns the synopsis file's row count."""
    counters = _title_counters(titles, hist, _rng(seed, 5))
    cols = {**titles.columns, **counters}
    with open(out_dir / ANIME_FILE, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(ANIME_COLUMNS)
        writer.writerows(zip(*(cols[c] for c in ANIME_COLUMNS), strict=True))
    n_syn = 0
    with open(out_dir / SYNOPSIS_FILE, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(SYNOPSIS_COLUMNS)
        for i, text in enumerate(titles.synopsis):
            if text is None:
                continue
            writer.writerow(
                (cols["MAL_ID"][i], cols["Name"][i], cols["Score"][i], cols["Genres"][i], text)
            )
            n_syn += 1
    return n_syn


def generate_dataset(
    out_dir: str | Path,
    users: int,
    titles: int,
    ratings: int,
    seed: int,
    params: ModelParams | None = None,
) -> dict[str, int]:
    """Write the three MAL files into ``out_dir``; returns row counts and facts.

    The ratings are generated and appended one block of :data:`BLOCK_USERS` users at a time;
    ``anime.csv`` is written last because its score columns summarise the ratings.
    """
    params = params or ModelParams()
    import pyarrow as pa
    import pyarrow.csv as pacsv

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    world = build_titles(titles, seed, params)
    people = build_users(users, ratings, world, seed, params)
    log.info(
        "generator: %d titles (%d franchises), %d users, %d ratings",
        len(world), int(world.franchise.max()) + 1, len(people), ratings,
    )  # fmt: skip
    sampler = RatingSampler(world, people, seed, params)
    n_blocks = math.ceil(len(people) / BLOCK_USERS)
    pilot = np.concatenate([sampler.block(b)[2] for b in range(min(PILOT_BLOCKS, n_blocks))])
    cuts = rating_cut_points(pilot)
    hist = np.zeros((len(world), 10), dtype=np.int64)
    schema = pa.schema([(c, pa.int32()) for c in RATINGS_COLUMNS])
    options = pacsv.WriteOptions(include_header=False)
    path = out / RATINGS_FILE
    path.write_text(",".join(RATINGS_COLUMNS) + "\n")
    written = 0
    with (
        pa.OSFile(str(path), "ab") as sink,
        pacsv.CSVWriter(sink, schema, write_options=options) as writer,
    ):
        for b in range(n_blocks):
            rows, tix, latent = sampler.block(b)
            rating = ratings_of(latent, cuts)
            hist += np.bincount(tix * 10 + rating - 1, minlength=len(world) * 10).reshape(-1, 10)
            table = pa.table(
                [
                    pa.array(people.user_id[rows].astype(np.int32)),
                    pa.array(world.anime_id[tix].astype(np.int32)),
                    pa.array(rating),
                ],
                schema=schema,
            )
            writer.write_table(table)
            written += len(rows)
            if b % 20 == 0 or b == n_blocks - 1:
                log.info("generator: block %d/%d, %d ratings written", b + 1, n_blocks, written)
    n_syn = write_anime_files(out, world, hist, seed)
    return {
        "titles": len(world),
        "synopsis_titles": n_syn,
        "users": len(people),
        "ratings": written,
        "promoters": int(hist[:, 8:].sum()),
    }
