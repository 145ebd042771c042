"""Timed, logged steps of a stage: ``with step("write anime") as facts: ...``."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from anime_recs import faults

log = logging.getLogger("anime_recs")


@contextmanager
def step(name: str) -> Iterator[dict]:
    """Log the wall time of a step; the yielded dict collects facts logged at the end.

    A step whose body raises is logged as ``failed`` with its duration and the one-line
    reason (``faults.one_line``), and the error remembers the step (``faults.failed_step``).
    """
    facts: dict = {}
    start = time.perf_counter()
    log.info("step %s: start", name)
    try:
        yield facts
    except BaseException as exc:
        elapsed = time.perf_counter() - start
        facts["wall_s"] = round(elapsed, 3)
        faults.mark_step(exc, name)
        log.error("step %s: failed after %.1fs: %s", name, elapsed, faults.one_line(exc))
        raise
    else:
        elapsed = time.perf_counter() - start
        facts["wall_s"] = round(elapsed, 3)
        log.info(
            "step %s: done in %.1fs %s",
            name,
            elapsed,
            " ".join(f"{k}={v}" for k, v in facts.items() if k != "wall_s"),
        )
