"""The report page: valid HTML whose tables are well formed, whose evaluation numbers are the
evaluation table's, with its charts inline and every text escaped; the verdict line on
hand-made tables."""

from __future__ import annotations

import base64
import math
import re

import numpy as np
import pandas as pd
import pytest

from anime_recs.evaluation.page import (
    Chart,
    ExampleUser,
    Finetune,
    Listed,
    charts,
    page,
    verdict,
)
from tests.helpers import HtmlPage

METRICS = [
    "nps",
    "nps_ci_low",
    "nps_ci_high",
    "precision",
    "precision_ci_low",
    "precision_ci_high",
    "net_promoter_hits",
    "promoter_share",
    "cold_share",
]
# each header of the page's evaluation tables and the (metric, N, with CI) it shows, by hand
HEADERS = {
    "P@1 [95% CI]": ("precision", 1, True),
    "P@5 [95% CI]": ("precision", 5, True),
    "P@10 [95% CI]": ("precision", 10, True),
    "NPS@1 [95% CI]": ("nps", 1, True),
    "NPS@10 [95% CI]": ("nps", 10, True),
    "net promoter hits@10": ("net_promoter_hits", 10, False),
    "promoter share@10": ("promoter_share", 10, False),
    "cold share@10": ("cold_share", 10, False),
}
NUMBER = r"(-?\d+\.\d{4}|n/a)"


def evaluation(seed: int = 3) -> pd.DataFrame:
    """An evaluation table of N = 1..10 with random values: warm and all hold every
    recommender, cold the ones that list new titles; some cold NPS values are NaN (no hit)."""
    rng = np.random.default_rng(seed)
    rows = []
    views = {
        "warm": ["ease", "emb", "hybrid", "popularity"],
        "cold": ["emb", "hybrid"],
        "all": ["ease", "emb", "hybrid", "popularity"],
    }
    for view, names in views.items():
        for name in names:
            for n in range(1, 11):
                values = dict(zip(METRICS, rng.uniform(-0.2, 0.6, len(METRICS)), strict=True))
                if view == "cold" and name == "emb" and n < 3:
                    values.update(nps=math.nan, nps_ci_low=math.nan, nps_ci_high=math.nan)
                rows.append(
                    {
                        "recommender": name,
                        "view": view,
                        "n": n,
                        **values,
                        "users_total": 40 if view == "cold" else 90,
                    }
                )
    return pd.DataFrame(rows)


def examples() -> list[ExampleUser]:
    return [
        ExampleUser(
            7,
            "hybrid",
            [(1, "<b>Bebop</b> & co"), (2, None)],
            [Listed(1, 3, "Trigun", False, 9), Listed(2, 8, "New <i>One</i>", True, 0)],
        ),
        ExampleUser(9, "hybrid", [(3, "Trigun")], [Listed(1, 1, "<b>Bebop</b> & co", False, 4)]),
    ]


FINETUNE = Finetune(
    "lora",
    "anime-encoder",
    "abc123",
    "1200",
    "300",
    {"spearman": (0.21, 0.34), "ndcg": (0.5, None)},
)


@pytest.fixture(scope="module")
def built() -> tuple[pd.DataFrame, str]:
    frame = evaluation()
    params = {"recommend.k": 3, "recommend.hybrid.content": "emb", "input_version.ratings": 4}
    return frame, page(frame, params, "emb", charts(frame), FINETUNE, examples())


def test_page_parses_with_well_formed_tables_inline_charts_and_escaped_text(built):
    frame, text = built
    parsed = HtmlPage(text)
    assert text.startswith("<!DOCTYPE html>")
    assert parsed.verdict == verdict(frame, "emb")
    assert len(parsed.tables) == 3 + 1 + 2 + 1  # views, fine-tune, examples, settings
    for table in parsed.tables:
        header, *body = table["rows"]
        assert header and all(tag == "th" for tag, _ in header)
        assert body
        for row in body:
            assert len(row) == len(header), (table["attrs"], row)
            assert all(tag == "td" for tag, _ in row)
    views = [t["attrs"].get("data-view") for t in parsed.tables if t["attrs"].get("data-view")]
    assert views == ["warm", "cold", "all"]
    # three charts, each an inline PNG
    assert len(parsed.images) == 3
    for src in parsed.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    # names are text, never markup
    assert "b" not in parsed.tags and "i" not in parsed.tags
    first, second = (t for t in parsed.tables if t["attrs"].get("class") == "example")
    assert [c for _, c in first["rows"][2]] == ["2", "New <i>One</i> (8)", "new (cold)", ""]
    assert [c for _, c in second["rows"][1]] == ["1", "<b>Bebop</b> & co (1)", "warm", "4"]
    promoted = "Promoted in train (9-10, 2): <b>Bebop</b> & co (1), title 2 (not in anime)"
    assert promoted in "".join(parsed.text)
    (finetune,) = (t for t in parsed.tables if t["attrs"].get("class") == "finetune")
    assert [[c for _, c in row] for row in finetune["rows"][1:]] == [
        ["ndcg", "0.5000", "n/a"],
        ["spearman", "0.2100", "0.3400"],
    ]
    (settings,) = (t for t in parsed.tables if t["attrs"].get("class") == "settings")
    assert [[c for _, c in row] for row in settings["rows"][1:]] == [
        ["input_version.ratings", "4"],
        ["recommend.hybrid.content", "emb"],
        ["recommend.k", "3"],
    ]


def test_every_number_of_the_evaluation_tables_is_the_frames(built):
    frame, text = built
    tables = [t for t in HtmlPage(text).tables if t["attrs"].get("data-view")]
    checked = 0
    for table in tables:
        view = table["attrs"]["data-view"]
        header, *body = ([c for _, c in row] for row in table["rows"])
        assert header[0] == "recommender" and set(header[1:]) == set(HEADERS)
        mine = frame[frame["view"] == view]
        assert sorted(row[0] for row in body) == sorted(set(mine["recommender"]))
        for row in body:
            rows = mine[mine["recommender"] == row[0]].set_index("n")
            for head, shown in zip(header[1:], row[1:], strict=True):
                metric, n, ci = HEADERS[head]
                pattern = rf"{NUMBER} \[{NUMBER}, {NUMBER}\]" if ci else NUMBER
                match = re.fullmatch(pattern, shown)
                assert match, (view, row[0], head, shown)
                names = [metric, f"{metric}_ci_low", f"{metric}_ci_high"] if ci else [metric]
                for name, value in zip(names, match.groups(), strict=True):
                    want = rows.at[n, name]
                    if math.isnan(want):
                        assert value == "n/a", (view, row[0], name, n)
                    else:
                        assert float(value) == pytest.approx(want, abs=5e-5), (view, name, n)
                    checked += 1
        # best precision@10 first
        precisions = [float(row[header.index("P@10 [95% CI]")].split(" ")[0]) for row in body]
        assert precisions == sorted(precisions, reverse=True)
    assert checked == (4 + 2 + 4) * (5 * 3 + 3)
    assert any("n/a" in c for t in tables for row in t["rows"] for _, c in row)


def at10(rows: list[tuple[str, str, float, float]]) -> pd.DataFrame:
    """An evaluation table at N = 10 from ``(recommender, view, precision, cold_share)``."""
    return pd.DataFrame(
        [
            {"recommender": r, "view": v, "n": 10, "precision": p, "cold_share": c}
            for r, v, p, c in rows
        ]
    )


def test_verdict_on_a_hand_made_table():
    table = at10(
        [
            ("hybrid", "warm", 0.12, 0.0),
            ("ease", "warm", 0.125, 0.0),
            ("jaccard_cf", "warm", 0.1, 0.0),
            ("hybrid", "cold", 0.099, 1.0),
            ("base", "cold", 0.0804, 1.0),
            ("other", "cold", 0.2, 1.0),
            ("hybrid", "all", 0.11, 0.098),
            ("ease", "all", 0.13, 0.0),
        ]
    )
    assert verdict(table, "base") == (
        "hybrid: warm P@10 0.120 (best other: ease 0.125); cold P@10 0.099 (base 0.080); "
        "9.8% of its top-10 slots hold new titles"
    )
    assert verdict(table, "gone") == (
        "hybrid: warm P@10 0.120 (best other: ease 0.125); cold P@10 0.099 (gone not "
        "evaluated); 9.8% of its top-10 slots hold new titles"
    )
    # ties go to the first name; without the hybrid, the best of each view
    tied = table.assign(precision=table["precision"].where(table["recommender"] != "ease", 0.1))
    assert verdict(tied, "base").startswith("hybrid: warm P@10 0.120 (best other: ease 0.100)")
    without = table[table["recommender"] != "hybrid"]
    assert verdict(without, "base") == (
        "no hybrid in this run; best warm P@10: ease 0.125; best cold P@10: other 0.200"
    )
    # no cold titles, no other recommender
    alone = table[(table["recommender"] == "hybrid") & (table["view"] != "cold")]
    assert verdict(alone, "base") == (
        "hybrid: warm P@10 0.120 (no other recommender); no cold titles evaluated; "
        "9.8% of its top-10 slots hold new titles"
    )


def test_verdict_reads_the_largest_n_below_ten_and_nan():
    table = at10([("hybrid", "warm", math.nan, 0.0), ("ease", "warm", 0.2, 0.0)])
    table["n"] = 5
    assert verdict(table, "base") == (
        "hybrid: warm P@5 n/a (best other: ease 0.200); no cold titles evaluated"
    )


def test_page_without_fine_tune_examples_or_cold_view():
    frame = evaluation()
    frame = frame[frame["view"] != "cold"]
    text = page(frame, {}, "emb", [Chart("c", b"\x89PNG")], None, [])
    parsed = HtmlPage(text)
    assert "No finished fine-tune run" in text
    assert "No test user with promoted titles" in text
    assert "No rows in the cold view" in text
    assert [t["attrs"].get("data-view") for t in parsed.tables if "data-view" in t["attrs"]] == [
        "warm",
        "all",
    ]
