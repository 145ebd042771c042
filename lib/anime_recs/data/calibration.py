"""Aggregate parameters of the real MAL 2020 files that the generator is calibrated to.

:data:`CALIBRATION` holds only aggregate statistics (shares, quantiles, counts) of the real
files in ``../shared/data/mal2020`` plus the published facts of the full ``rating_complete.csv``
(57,633,278 ratings, 310,059 users); no row, title name or company name of those files is
committed. :func:`derive_calibration` recomputes every value from the real files, so the numbers
are reproducible (``tests/data/test_generate.py`` checks the committed dict against it when the
shared folder exists)::

    from anime_recs.data.calibration import derive_calibration
    derive_calibration("../shared/data/mal2020")

Quantile lists are taken at :data:`QUANTILE_PROBS`. Genre, type, source and age-rating labels are
the site's category vocabulary (part of the file format), kept with their shares.
"""

from __future__ import annotations

import re
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

# Derived with derive_calibration("../shared/data/mal2020"); do not edit by hand.
# fmt: off
CALIBRATION: dict = {'titles': {'n_titles': 17562,
            'max_mal_id': 48492,
            'type_share': {'Movie': 0.1732,
                           'Music': 0.08365,
                           'ONA': 0.1086,
                           'OVA': 0.2217,
                           'Special': 0.1263,
                           'TV': 0.2845,
                           'Unknown': 0.002107},
            'source_share': {'4-koma manga': 0.0164,
                             'Book': 0.006377,
                             'Card game': 0.003644,
                             'Digital manga': 0.0008541,
                             'Game': 0.05011,
                             'Light novel': 0.04373,
                             'Manga': 0.2178,
                             'Music': 0.01805,
                             'Novel': 0.02904,
                             'Original': 0.2969,
                             'Other': 0.03399,
                             'Picture book': 0.00837,
                             'Radio': 0.0006833,
                             'Unknown': 0.2031,
                             'Visual novel': 0.05654,
                             'Web manga': 0.01435},
            'age_rating_share': {'G - All Ages': 0.3292,
                                 'PG - Children': 0.08319,
                                 'PG-13 - Teens 13 or older': 0.3492,
                                 'R - 17+ (violence & profanity)': 0.06588,
                                 'R+ - Mild Nudity': 0.05677,
                                 'Rx - Hentai': 0.07659,
                                 'Unknown': 0.03918},
            'english_name_unknown_share': 0.6016,
            'score_unknown_share': 0.2927,
            'ranked_unknown_share': 0.1003,
            'genre_count_pmf': {'0': 0.003587,
                                '1': 0.2408,
                                '2': 0.2415,
                                '3': 0.199,
                                '4': 0.1466,
                                '5': 0.09805,
                                '6': 0.04544,
                                '7': 0.01685,
                                '8': 0.00484,
                                '9': 0.002107,
                                '10': 0.0007972,
                                '11': 0.0003416,
                                '13': 5.694e-05},
            'producers_count_pmf': {'0': 0.4438,
                                    '1': 0.3263,
                                    '2': 0.1067,
                                    '3': 0.04242,
                                    '4': 0.02488,
                                    '5': 0.01913,
                                    '6': 0.01441,
                                    '7': 0.008826,
                                    '8': 0.004669,
                                    '9': 0.004555,
                                    '10': 0.001822,
                                    '11': 0.001139,
                                    '12': 0.0006833,
                                    '13': 0.0002278,
                                    '14': 5.694e-05,
                                    '15': 5.694e-05,
                                    '17': 0.0001139,
                                    '19': 0.0001139,
                                    '20': 5.694e-05},
            'licensors_count_pmf': {'0': 0.7753,
                                    '1': 0.1816,
                                    '2': 0.04014,
                                    '3': 0.002619,
                                    '4': 0.0002847},
            'studios_count_pmf': {'0': 0.4031,
                                  '1': 0.5537,
                                  '2': 0.0406,
                                  '3': 0.002392,
                                  '4': 0.0001708,
                                  '7': 5.694e-05},
            'n_distinct_producers': 1306,
            'n_distinct_studios': 722,
            'n_distinct_licensors': 78,
            'genre_share': {'Action': 0.2214,
                            'Adventure': 0.1684,
                            'Cars': 0.007573,
                            'Comedy': 0.3433,
                            'Dementia': 0.02915,
                            'Demons': 0.02853,
                            'Drama': 0.1491,
                            'Ecchi': 0.04367,
                            'Fantasy': 0.1871,
                            'Game': 0.02198,
                            'Harem': 0.02272,
                            'Hentai': 0.07676,
                            'Historical': 0.06514,
                            'Horror': 0.02631,
                            'Josei': 0.005523,
                            'Kids': 0.1517,
                            'Magic': 0.06155,
                            'Martial Arts': 0.0242,
                            'Mecha': 0.06269,
                            'Military': 0.0328,
                            'Music': 0.1278,
                            'Mystery': 0.0414,
                            'Parody': 0.03758,
                            'Police': 0.01406,
                            'Psychological': 0.01964,
                            'Romance': 0.1081,
                            'Samurai': 0.0115,
                            'School': 0.0935,
                            'Sci-Fi': 0.1471,
                            'Seinen': 0.04726,
                            'Shoujo': 0.03918,
                            'Shoujo Ai': 0.004498,
                            'Shounen': 0.1141,
                            'Shounen Ai': 0.005694,
                            'Slice of Life': 0.109,
                            'Space': 0.02819,
                            'Sports': 0.0406,
                            'Super Power': 0.03599,
                            'Supernatural': 0.08422,
                            'Thriller': 0.007459,
                            'Vampire': 0.007744,
                            'Yaoi': 0.002392,
                            'Yuri': 0.001822},
            'by_type': {'TV': {'log10_members': [3.963, 1.122],
                               'episodes_top': {'10': 0.02269,
                                                '11': 0.02399,
                                                '12': 0.3179,
                                                '13': 0.17,
                                                '24': 0.05841,
                                                '25': 0.04928,
                                                '26': 0.1497,
                                                '39': 0.02269,
                                                '50': 0.02738,
                                                '51': 0.03025,
                                                '52': 0.05945,
                                                'Unknown': 0.06832},
                               'year_quantiles': [1961.0, 1968.0, 1978.0, 1986.0, 1998.0, 2004.0,
                                                  2007.0, 2010.0, 2013.0, 2015.0, 2017.0, 2019.0,
                                                  2020.0, 2021.0, 2022.0],
                               'minutes_quantiles': [0.1667, 1.0, 3.0, 4.0, 11.0, 23.0, 23.0, 24.0,
                                                     24.0, 24.0, 24.0, 25.0, 25.0, 28.0, 54.0],
                               'premiered_known_share': 0.9498,
                               'aired_unknown_share': 0.01521},
                        'OVA': {'log10_members': [3.367, 0.8041],
                                'episodes_top': {'1': 0.5003,
                                                 '10': 0.007273,
                                                 '12': 0.006234,
                                                 '13': 0.005455,
                                                 '2': 0.247,
                                                 '3': 0.09766,
                                                 '4': 0.06234,
                                                 '5': 0.0161,
                                                 '6': 0.03558,
                                                 '7': 0.005974,
                                                 '8': 0.004935,
                                                 'Unknown': 0.01117},
                                'year_quantiles': [1964.0, 1984.0, 1987.0, 1990.0, 1993.0, 1997.0,
                                                   2001.0, 2003.0, 2007.0, 2010.0, 2013.0, 2016.0,
                                                   2018.0, 2020.0, 2022.0],
                                'minutes_quantiles': [0.4333, 4.0, 10.0, 14.0, 18.0, 23.0, 25.0,
                                                      28.0, 30.0, 30.0, 32.0, 45.0, 53.0, 82.0,
                                                      126.0],
                                'premiered_known_share': 0.0,
                                'aired_unknown_share': 0.02696},
                        'Movie': {'log10_members': [3.243, 0.9529],
                                  'episodes_top': {'1': 0.9753,
                                                   '10': 0.0009872,
                                                   '100': 0.0003291,
                                                   '12': 0.001316,
                                                   '14': 0.0003291,
                                                   '2': 0.005594,
                                                   '3': 0.007568,
                                                   '4': 0.00362,
                                                   '5': 0.001316,
                                                   '6': 0.001316,
                                                   '7': 0.001316,
                                                   'Unknown': 0.0009872},
                                  'year_quantiles': [1917.0, 1925.0, 1936.0, 1965.0, 1981.0,
                                                     1989.0, 1997.0, 2004.0, 2009.0, 2012.0,
                                                     2015.0, 2018.0, 2019.0, 2021.0, 2022.0],
                                  'minutes_quantiles': [0.05, 1.0, 3.0, 4.0, 9.0, 18.0, 30.0, 53.0,
                                                        71.0, 85.0, 93.0, 104.0, 114.0, 135.0,
                                                        167.0],
                                  'premiered_known_share': 0.0,
                                  'aired_unknown_share': 0.0148},
                        'Special': {'log10_members': [3.429, 0.8239],
                                    'episodes_top': {'1': 0.645,
                                                     '12': 0.00876,
                                                     '13': 0.005994,
                                                     '2': 0.1245,
                                                     '3': 0.05901,
                                                     '4': 0.04057,
                                                     '5': 0.01568,
                                                     '6': 0.04979,
                                                     '7': 0.01844,
                                                     '8': 0.006916,
                                                     '9': 0.01245,
                                                     'Unknown': 0.01291},
                                    'year_quantiles': [1958.0, 1978.0, 1985.0, 1995.0, 2003.0,
                                                       2006.0, 2009.0, 2011.0, 2012.0, 2014.0,
                                                       2016.0, 2017.0, 2019.0, 2020.0, 2021.0],
                                    'minutes_quantiles': [0.1667, 0.25, 0.5, 1.0, 2.0, 4.0, 5.0,
                                                          10.0, 20.0, 23.0, 25.0, 47.0, 73.0,
                                                          101.0, 161.0],
                                    'premiered_known_share': 0.0,
                                    'aired_unknown_share': 0.008115},
                        'ONA': {'log10_members': [2.979, 0.7688],
                                'episodes_top': {'1': 0.4232,
                                                 '10': 0.04931,
                                                 '12': 0.1111,
                                                 '13': 0.05181,
                                                 '2': 0.06804,
                                                 '20': 0.02185,
                                                 '26': 0.02372,
                                                 '3': 0.05431,
                                                 '4': 0.04557,
                                                 '5': 0.02684,
                                                 '6': 0.03558,
                                                 'Unknown': 0.08864},
                                'year_quantiles': [1998.0, 2002.0, 2007.0, 2010.0, 2012.0, 2014.0,
                                                   2015.0, 2017.0, 2017.0, 2018.0, 2019.0, 2020.0,
                                                   2020.0, 2021.0, 2022.0],
                                'minutes_quantiles': [0.1, 0.25, 0.5333, 0.9167, 1.0, 2.0, 3.0,
                                                      4.0, 6.0, 9.0, 14.8, 21.0, 24.0, 41.98,
                                                      122.0],
                                'premiered_known_share': 0.0,
                                'aired_unknown_share': 0.01626},
                        'Music': {'log10_members': [2.456, 0.5636],
                                  'episodes_top': {'1': 0.9638,
                                                   '14': 0.001364,
                                                   '2': 0.0116,
                                                   '3': 0.002046,
                                                   '30': 0.0006821,
                                                   '4': 0.005457,
                                                   '5': 0.005457,
                                                   '6': 0.002729,
                                                   '7': 0.002046,
                                                   '8': 0.001364,
                                                   '9': 0.001364,
                                                   'Unknown': 0.002046},
                                  'year_quantiles': [1961.0, 1966.0, 1977.0, 1986.0, 1999.0,
                                                     2006.0, 2010.0, 2012.0, 2014.0, 2016.0,
                                                     2017.0, 2018.0, 2019.0, 2020.0, 2021.0],
                                  'minutes_quantiles': [0.25, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 3.0,
                                                        3.0, 4.0, 4.0, 5.0, 6.0, 11.0, 67.0],
                                  'premiered_known_share': 0.0,
                                  'aired_unknown_share': 0.002042}}},
 'synopsis': {'n_titles': 16214,
              'coverage': 0.9232,
              'absent_titles_with_hentai_genre_share': 1.0,
              'null_share': 0.0004934,
              'placeholders': {'No synopsis information has been added to this title. Help improve our database by adding a synopsis here .': 0.04373,  # noqa: E501
                               'No synopsis has been added for this series yet. Click here to update this information.': 0.002159,  # noqa: E501
                               'No synopsis has been added for this series yet.': 6.168e-05},
              'non_ascii_share': 0.1404,
              'words_quantiles_by_type': {'TV': [2.0, 5.0, 8.0, 15.0, 37.0, 56.5, 76.0, 95.0,
                                                 116.0, 138.0, 157.0, 179.0, 197.0, 238.3, 487.0],
                                          'OVA': [2.0, 5.0, 8.0, 10.0, 16.0, 24.0, 35.0, 48.0,
                                                  61.0, 76.0, 96.0, 127.0, 151.0, 208.3, 336.0],
                                          'Movie': [2.0, 4.0, 5.0, 7.0, 13.0, 23.0, 37.0, 54.0,
                                                    70.0, 92.0, 118.0, 155.0, 177.0, 237.2,
                                                    466.0],
                                          'Special': [2.0, 2.35, 6.0, 7.0, 10.0, 12.0, 16.0, 21.0,
                                                      28.0, 40.0, 60.0, 87.0, 121.0, 183.3,
                                                      418.0],
                                          'ONA': [3.0, 4.0, 6.0, 8.0, 11.0, 16.0, 24.0, 34.0, 46.0,
                                                  59.0, 78.2, 113.0, 146.3, 201.3, 273.0],
                                          'Music': [3.0, 5.0, 7.0, 9.0, 11.0, 15.0, 17.0, 21.0,
                                                    26.0, 29.0, 38.0, 56.0, 72.0, 123.5, 329.0]},
              'chars_quantiles': [10.0, 25.0, 38.0, 53.0, 84.0, 129.0, 195.0, 288.0, 387.0, 513.0,
                                  690.0, 918.0, 1047.0, 1318.0, 3047.0]},
 'ratings_head': {'n_rows': 99584,
                  'n_users': 574,
                  'user_id_span': 664,
                  'hist_share': {'1': 0.005694,
                                 '2': 0.00724,
                                 '3': 0.01145,
                                 '4': 0.02373,
                                 '5': 0.05675,
                                 '6': 0.1105,
                                 '7': 0.2185,
                                 '8': 0.2578,
                                 '9': 0.1778,
                                 '10': 0.1306},
                  'mean': 7.594,
                  'promoter_share': 0.3084,
                  'per_user_quantiles': [1.0, 1.0, 4.0, 14.3, 36.6, 57.0, 79.0, 108.0, 149.8,
                                         195.4, 285.8, 424.4, 557.6, 866.4, 1404.0],
                  'per_user_mean': 173.5,
                  'per_title_quantiles': [1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 3.0, 4.0, 6.0, 10.0, 18.0,
                                          37.0, 62.0, 139.7, 375.0],
                  'user_mean_quantiles': [3.897, 5.289, 6.412, 6.907, 7.357, 7.562, 7.785, 7.981,
                                          8.167, 8.37, 8.677, 9.099, 9.503, 10.0, 10.0],
                  'user_std_quantiles': [0.0, 0.5098, 0.7303, 0.895, 1.018, 1.113, 1.202, 1.297,
                                         1.394, 1.482, 1.616, 1.819, 1.953, 2.298, 2.578],
                  'user_promoter_share_quantiles': [0.0, 0.01976, 0.07113, 0.1205, 0.1727, 0.2373,
                                                    0.2975, 0.3647, 0.4286, 0.5, 0.6178, 0.7708,
                                                    0.8928, 1.0, 1.0],
                  'rated_type_share': {'Movie': 0.1282,
                                       'Music': 0.005643,
                                       'ONA': 0.021,
                                       'OVA': 0.09188,
                                       'Special': 0.06258,
                                       'TV': 0.6907},
                  'log_count_vs_log_members_slope': 0.7356},
 'ratings_full': {'n_users': 310059,
                  'n_ratings': 57633278,
                  'max_per_user': 14000,
                  'mean_per_user': 185.9}}
# fmt: on


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
