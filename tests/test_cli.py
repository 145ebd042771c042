"""Job wiring: logging setup."""

from __future__ import annotations

import io
import logging

from anime_recs.cli import setup_logging


def test_setup_logging_drops_handlers_writing_to_a_closed_stream():
    root = logging.getLogger()
    closed_stream, open_stream = io.StringIO(), io.StringIO()
    stale = logging.StreamHandler(closed_stream)  # e.g. installed while stderr was redirected
    alive = logging.StreamHandler(open_stream)
    root.addHandler(stale)
    root.addHandler(alive)
    closed_stream.close()
    try:
        setup_logging()
        assert stale not in root.handlers
        assert alive in root.handlers
        assert sum(getattr(h, "_anime_recs", False) for h in root.handlers) == 1
        logging.getLogger("anime_recs.test").info("still logged")
        assert "still logged" in open_stream.getvalue()
    finally:
        root.removeHandler(alive)
        root.removeHandler(stale)
