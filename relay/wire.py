"""JSON as the relay writes it for others: compact, the way JavaScript's JSON.stringify does.

Receivers written in JavaScript often verify a signature over
`JSON.stringify(req.body)` (LicenseChain's own example does) instead of the
raw body; for them the relay's own events (`relay send`, `relay test`, test
events) are written exactly as JSON.stringify would write them: no spaces,
non-ASCII kept as is, the same escapes.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["compact_json"]


def compact_json(value: Any) -> bytes:
    """`value` as JSON.stringify writes it (for the strings, integers and objects we send)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")
