"""Charts and the markdown report are written from an evaluation table."""

from __future__ import annotations

import pandas as pd

from anime_recs.evaluation.report import markdown_report, write_report


def table() -> pd.DataFrame:
    rows = []
    for view in ("all", "warm", "cold"):
        for name, base in (("a", 0.1), ("b", 0.3)):
            for n in (1, 2):
                rows.append(
                    {
                        "recommender": name,
                        "view": view,
                        "n": n,
                        "nps": base + n / 100,
                        "nps_ci_low": base,
                        "nps_ci_high": base + 0.1,
                        "hits": 3,
                        "users_scored": 2,
                        "users_total": 4,
                        "nps_user_mean": base,
                        "precision": base / 2,
                        "precision_ci_low": base / 4,
                        "precision_ci_high": base,
                        "recall": 0.2,
                        "ndcg": 0.3,
                        "net_promoter_hits": 0.4,
                        "promoter_share": 0.5,
                        "cold_share": 0.0 if view == "warm" else 0.25,
                        "unique_anime": 5 * n,
                    }
                )
    return pd.DataFrame(rows)


def test_write_report_files(tmp_path):
    files = write_report(table(), tmp_path / "reports", {"k": 3})
    names = sorted(p.name for p in files)
    assert names == [
        "evaluation.csv",
        "evaluation.md",
        "nps_by_n.png",
        "precision_cold.png",
        "precision_warm.png",
        "unique_anime.png",
    ]
    for path in files:
        assert path.stat().st_size > 0
    assert (tmp_path / "reports" / "nps_by_n.png").read_bytes()[:4] == b"\x89PNG"


def test_markdown_report_has_a_table_per_view():
    text = markdown_report(table(), {"k": 3}, ["nps_by_n.png"])
    assert text.index("## Warm titles") < text.index("## Cold titles") < text.index("## Lists as")
    # recommender, n, precision [CI], nps [CI], ...
    assert "| b | 2 | 0.1500 | 0.0750 | 0.3000 | 0.3200 | 0.3000 | 0.4000 |" in text
    assert "- k: 3" in text
