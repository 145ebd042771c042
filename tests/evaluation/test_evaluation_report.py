"""Charts and the markdown report are written from an evaluation table."""

from __future__ import annotations

import pandas as pd

from anime_recs.evaluation.report import markdown_report, write_report


def table() -> pd.DataFrame:
    rows = []
    for name, base in (("a", 0.1), ("b", 0.3)):
        for n in (1, 2):
            rows.append(
                {
                    "recommender": name,
                    "n": n,
                    "nps": base + n / 100,
                    "nps_ci_low": base,
                    "nps_ci_high": base + 0.1,
                    "hits": 3,
                    "users_scored": 2,
                    "users_total": 4,
                    "nps_user_mean": base,
                    "precision": 0.1,
                    "recall": 0.2,
                    "ndcg": 0.3,
                    "unique_anime": 5 * n,
                }
            )
    return pd.DataFrame(rows)


def test_write_report_files(tmp_path):
    files = write_report(table(), tmp_path / "reports", {"k": 3})
    names = sorted(p.name for p in files)
    assert names == ["evaluation.csv", "evaluation.md", "nps_by_n.png", "unique_anime.png"]
    for path in files:
        assert path.stat().st_size > 0
    assert (tmp_path / "reports" / "nps_by_n.png").read_bytes()[:4] == b"\x89PNG"


def test_markdown_report_names_the_best_recommender():
    text = markdown_report(table(), {"k": 3}, ["nps_by_n.png"])
    assert "highest pooled NPS is b (0.3200" in text
    assert "| b | 2 | 0.3200 |" in text
    assert "- k: 3" in text
