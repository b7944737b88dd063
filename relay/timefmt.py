"""Times as the relay shows them: ISO 8601 in the API, "2m ago" for people.

One set of rules for the CLI's tables and the dashboard's pages, so that both
say the same thing about the same delivery.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["absolute", "iso", "relative", "timestamp"]


def iso(ts: float | None) -> str | None:
    """Unix seconds as ISO 8601 UTC with milliseconds, the one time format of the API."""
    if ts is None:
        return None
    text = datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def timestamp(value: str | float | None) -> float | None:
    """Unix seconds from an API time (ISO 8601) or from seconds; None for no time."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(value).timestamp()


def _span(seconds: float) -> str:
    if seconds < 60:
        return f"{int(seconds)}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    if seconds < 86400:
        hours, minutes = int(seconds // 3600), int(seconds % 3600 // 60)
        return f"{hours}h {minutes}m" if hours < 10 and minutes else f"{hours}h"
    return f"{int(seconds // 86400)}d"


def relative(value: str | float | None, now: float, *, due: bool = False,
             empty: str = "—") -> str:
    """"in 4m", "2m ago", "now"; with `due`, a past time reads "due now" (a late retry).

    A time under a second ahead reads "in 1s", never "now": it has not come yet.

    A time more than 30 days away reads as its date: "412d ago" says less.
    """
    ts = timestamp(value)
    if ts is None:
        return empty
    delta = ts - now
    if due and delta <= 0:
        return "due now"
    if 0 < delta < 1:
        return "in 1s"  # a retry 0.4 s away is not due yet: "now" would say it is
    if abs(delta) < 1:
        return "now"
    if abs(delta) >= 30 * 86400:
        return absolute(ts, with_time=False)
    return f"in {_span(delta)}" if delta > 0 else f"{_span(-delta)} ago"


def absolute(value: str | float | None, *, with_time: bool = True, empty: str = "—") -> str:
    """A UTC time an operator can paste into `--since`: 2025-01-03 14:25:30Z."""
    ts = timestamp(value)
    if ts is None:
        return empty
    when = datetime.fromtimestamp(ts, UTC)
    return when.strftime("%Y-%m-%d %H:%M:%SZ" if with_time else "%Y-%m-%d")
