"""Local paths and URIs (``s3a://``, ``abfss://``, ``file://``) through one test."""

from __future__ import annotations

from pathlib import Path


def is_uri(path: str | Path) -> bool:
    """True for ``scheme://...`` paths: read through Spark or a client, never as local files."""
    return "://" in str(path)


def join(base: str | Path, name: str) -> str:
    """``<base>/<name>``: a URI kept as written, a local folder made absolute."""
    if is_uri(base):
        return f"{str(base).rstrip('/')}/{name}"
    return str(Path(base).absolute() / name)
