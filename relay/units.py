"""Parsing of human-written durations, sizes and rates from relay.yaml.

Pure functions: they take the YAML value and return seconds, bytes or
events-per-second, raising `ValueError` with a message that a config error
can prefix with the key path.
"""

from __future__ import annotations

import re

__all__ = ["format_duration", "format_rate", "parse_duration", "parse_rate", "parse_size"]

_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d|w)?\s*")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kmg]i?b?|b)?\s*", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1, "k": 1000, "kb": 1000, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
    "ki": 1024, "kib": 1024, "mi": 1024**2, "mib": 1024**2, "gi": 1024**3, "gib": 1024**3,
}
_RATE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*/\s*(s|m|h|sec|min|hour|second|minute)\s*")
_RATE_UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0,
               "h": 3600.0, "hour": 3600.0}


def parse_duration(value: object) -> float:
    """Seconds from `500ms`, `5s`, `5m`, `2h`, `30d`, `1w`, or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 5s or 10m, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.fullmatch(value)):
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"]
    else:
        raise ValueError(f"expected a duration such as 500ms, 5s, 10m, 2h or 30d, got {value!r}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {value!r}")
    return seconds


def parse_size(value: object) -> int:
    """Bytes from `1048576`, `512KiB`, `1MiB`, `1MB`."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size such as 1MiB, got {value!r}")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and (match := _SIZE.fullmatch(value)):
        size = int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()])
    else:
        raise ValueError(f"expected a size such as 1048576, 512KiB or 1MiB, got {value!r}")
    if size <= 0:
        raise ValueError(f"a size must be positive, got {value!r}")
    return size


def parse_rate(value: object) -> float:
    """Events per second from `50/s`, `1000/m`, `10000/h`."""
    if isinstance(value, str) and (match := _RATE.fullmatch(value)):
        rate = float(match.group(1)) / _RATE_UNITS[match.group(2)]
        if rate > 0:
            return rate
    raise ValueError(f"expected a rate such as 50/s, 1000/m or 10000/h, got {value!r}")


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of a duration, for summaries and logs."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def format_rate(per_second: float) -> str:
    """A rate as `parse_rate` reads it: per second when whole, else per minute or hour."""
    for unit, size in (("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        count = per_second * size
        if abs(count - round(count)) < 1e-9:
            return f"{round(count)}/{unit}"
    return f"{per_second * 3600:g}/h"
