"""Progress of long work: count, rate and ETA logged at a steady cadence.

One :class:`Progress` per loop; :meth:`Progress.update` is cheap (a clock read) and logs at
most once every ``every_s`` seconds, plus a last line from :meth:`Progress.done`. It works the
same on the driver and inside Spark Python workers; :func:`worker_logging` gives a worker
process (which has no logging set up) a stderr handler, so in local mode the lines appear in
the driver's log.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

# every log line, on the driver and in Spark Python workers
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


DEFAULT_EVERY_S = 10.0


def rate_per_s(done: float, elapsed_s: float) -> float:
    """Throughput ``done / elapsed_s`` (0 before any time has passed)."""
    return done / elapsed_s if elapsed_s > 0 else 0.0


def eta_s(done: float, total: float | None, elapsed_s: float) -> float | None:
    """Seconds left at the average rate so far: ``(total - done) / (done / elapsed_s)``.

    None when the total is unknown or nothing is done yet; 0 once ``done >= total``.
    """
    if total is None or done <= 0 or elapsed_s <= 0:
        return None
    return max(0.0, (total - done) * elapsed_s / done)


def format_progress(
    label: str, done: int, total: int | None, elapsed_s: float, unit: str = "rows"
) -> str:
    """``label: 500/2,000 rows (25.0%), 50.0 rows/s, elapsed 10s, ETA 30s``."""
    rate = rate_per_s(done, elapsed_s)
    if total:
        head = f"{label}: {done:,}/{total:,} {unit} ({100.0 * done / total:.1f}%)"
    else:
        head = f"{label}: {done:,} {unit}"
    eta = eta_s(done, total, elapsed_s)
    tail = f", ETA {eta:.0f}s" if eta is not None else ""
    return f"{head}, {rate:,.1f} {unit}/s, elapsed {elapsed_s:.0f}s{tail}"


class Progress:
    """Counts work done and logs :func:`format_progress` every ``every_s`` seconds."""

    def __init__(
        self,
        label: str,
        total: int | None = None,
        unit: str = "rows",
        every_s: float = DEFAULT_EVERY_S,
        logger: logging.Logger | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label, self.total, self.unit, self.every_s = label, total, unit, every_s
        self.log = logger or logging.getLogger(__name__)
        self.clock = clock
        self.done_count = 0
        self.started = clock()
        self._last_logged = self.started
        self.lines = 0

    def update(self, n: int = 1) -> None:
        """Add ``n`` units; log when ``every_s`` seconds passed since the last line."""
        self.done_count += n
        now = self.clock()
        if now - self._last_logged >= self.every_s:
            self._emit(now)

    def done(self) -> None:
        """Log the final line (count, average rate, elapsed)."""
        self._emit(self.clock())

    def _emit(self, now: float) -> None:
        self._last_logged = now
        self.lines += 1
        self.log.info(
            "%s",
            format_progress(self.label, self.done_count, self.total, now - self.started, self.unit),
        )


def worker_logging(level: int = logging.INFO) -> None:
    """In a process without logging set up (a Spark Python worker), log to stderr at ``level``.

    A no-op when the root logger already has a handler (the driver, a test run).
    """
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
