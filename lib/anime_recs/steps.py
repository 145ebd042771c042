"""Timed, logged steps of a stage: ``with step("write anime") as facts: ...``."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("anime_recs")


@contextmanager
def step(name: str) -> Iterator[dict]:
    """Log the wall time of a step; the yielded dict collects facts logged at the end."""
    facts: dict = {}
    start = time.perf_counter()
    log.info("step %s: start", name)
    try:
        yield facts
    finally:
        elapsed = time.perf_counter() - start
        facts["wall_s"] = round(elapsed, 3)
        log.info(
            "step %s: done in %.1fs %s",
            name,
            elapsed,
            " ".join(f"{k}={v}" for k, v in facts.items() if k != "wall_s"),
        )
