"""Progress lines: rate and ETA formulas, steady cadence."""

import logging

import pytest

from anime_recs.progress import Progress, eta_s, format_progress, rate_per_s


def test_rate_and_eta_hand_computed():
    assert rate_per_s(500, 10.0) == 50.0
    assert rate_per_s(5, 0.0) == 0.0
    # 1,500 left at 500 per 10 s -> 30 s
    assert eta_s(500, 2000, 10.0) == pytest.approx(30.0)
    assert eta_s(2000, 2000, 10.0) == 0.0
    assert eta_s(0, 2000, 10.0) is None
    assert eta_s(500, None, 10.0) is None
    assert format_progress("embed", 500, 2000, 10.0, "texts") == (
        "embed: 500/2,000 texts (25.0%), 50.0 texts/s, elapsed 10s, ETA 30s"
    )
    assert format_progress("serve", 7, None, 2.0) == "serve: 7 rows, 3.5 rows/s, elapsed 2s"


def test_logs_at_a_steady_cadence(caplog):
    now = [0.0]
    progress = Progress("work", 100, every_s=10.0, clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="anime_recs.progress")
    for _ in range(30):  # one unit per second for 30 s: lines at 10, 20, 30 s
        now[0] += 1.0
        progress.update(1)
    progress.done()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "work: 10/100 rows (10.0%), 1.0 rows/s, elapsed 10s, ETA 90s",
        "work: 20/100 rows (20.0%), 1.0 rows/s, elapsed 20s, ETA 80s",
        "work: 30/100 rows (30.0%), 1.0 rows/s, elapsed 30s, ETA 70s",
        "work: 30/100 rows (30.0%), 1.0 rows/s, elapsed 30s, ETA 70s",
    ]
