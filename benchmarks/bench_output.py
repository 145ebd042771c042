"""Where the benchmark scripts put their results: ``<out>/<prefix>-<time>.json``."""

from __future__ import annotations

import json
import time
from pathlib import Path


def write_results(out: str | Path, prefix: str, results: dict) -> Path:
    """Write ``results`` as JSON to ``<out>/<prefix>-YYYYmmdd-HHMMSS.json``; print the path."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {path}")
    return path
