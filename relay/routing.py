"""Which endpoints an event goes to: exact names and `*` globs (`license.*`, `*`).

Matching is cached per event type, because a relay sees a few dozen types and
millions of events; the cache is rebuilt when the config (and so the endpoint
list) changes, by building a new `Router`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from relay.config import EndpointConfig

__all__ = ["Router", "pattern_matches"]


@lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def pattern_matches(pattern: str, event_type: str) -> bool:
    """`*` matches any run of characters, dots included: `license.*`, `*.created`, `*`."""
    if "*" not in pattern:
        return pattern == event_type
    return _compile(pattern).fullmatch(event_type) is not None


class Router:
    """Maps an event type to the names of the enabled endpoints subscribed to it."""

    def __init__(self, endpoints: Sequence[EndpointConfig]) -> None:
        self._endpoints = [e for e in endpoints if e.enabled]
        self._cache: dict[str, tuple[str, ...]] = {}

    def route(self, event_type: str) -> tuple[str, ...]:
        names = self._cache.get(event_type)
        if names is None:
            names = tuple(
                e.name for e in self._endpoints
                if any(pattern_matches(p, event_type) for p in e.events)
            )
            if len(self._cache) < 10_000:
                self._cache[event_type] = names
        return names
