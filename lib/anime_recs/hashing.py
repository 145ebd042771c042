"""Stable short hashes of JSON-able values (run-log fingerprints, training identities)."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def stable_hash(payload: Any) -> str:
    """First 16 hex characters of sha256 over ``payload`` as canonical JSON.

    Canonical: keys sorted, values that JSON cannot encode written with ``str``; so equal
    mappings hash equally whatever their key order.
    """
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
