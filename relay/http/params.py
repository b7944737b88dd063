"""The admin API's query parameters: times, the delivery and event lists' filters, cursors.

The delivery list is newest first and pages by id: `cursor` is an opaque token
for "ids below this one", so a page is never repeated or skipped while new
deliveries (always with larger ids) arrive, and no page costs more than its
own rows (no OFFSET). The event list pages the same way by the store's
position of an event (`EventFilter.before`), wrapped in a token of its own.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from relay.http.problems import Problem
from relay.models import DeliveryStatus
from relay.storage.base import DeliveryFilter, EventFilter
from relay.units import parse_duration

__all__ = [
    "DEFAULT_LIMIT", "MAX_LIMIT", "EndpointQuery", "bad_cursor", "delivery_filter", "encode_cursor",
    "encode_event_cursor", "encode_position", "endpoint_query", "event_filter", "parse_time",
]

DEFAULT_LIMIT = 50

MAX_LIMIT = 500

_LIST_PARAMS = ("endpoint", "tenant", "status", "type", "since", "until", "limit", "cursor")
_EVENT_PARAMS = ("tenant", "type", "source", "since", "until", "limit", "cursor")
_ENDPOINT_PARAMS = ("tenant", "source", "status", "limit", "cursor")
ENDPOINT_PAGE = 100
ENDPOINT_STATES = ("ok", "error", "paused", "disabled")

_DURATION_WITH_UNIT = re.compile(r"\s*[0-9]+(?:\.[0-9]+)?\s*(ms|s|m|h|d|w)\s*")


def parse_time(value: str, now: float, param: str) -> float:
    """An ISO 8601 time (UTC unless it says otherwise), or a duration ago such as `2h`.

    A bare number is refused: "since=3600" could mean a Unix time or an hour ago.
    """
    text = value.strip()
    if _DURATION_WITH_UNIT.fullmatch(text):
        return now - parse_duration(text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise Problem(400, "invalid-parameter",
                      f"{param}: {value!r} is neither an ISO 8601 time such as "
                      "2025-01-03T14:25:30Z nor a duration such as 30m, 2h or 7d",
                      parameter=param) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def encode_cursor(before_id: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{before_id}".encode()).decode().rstrip("=")


def bad_cursor() -> Problem:
    """The 400 of a cursor this relay did not issue (or another backend's)."""
    return Problem(400, "invalid-parameter",
                   "cursor: not a cursor this relay issued; pass `next_cursor` from the "
                   "previous page unchanged", parameter="cursor")


def _unwrap(cursor: str, version: str) -> str:
    """The text a cursor of `version` wraps; 400 for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad_cursor() from None
    found, _, text = raw.partition(":")
    if found != version or not text:
        raise bad_cursor()
    return text


def _decode_cursor(cursor: str) -> int:
    number = _unwrap(cursor, "v1")
    if not (number.isascii() and number.isdigit()):
        raise bad_cursor()
    return int(number)


def encode_event_cursor(position: str) -> str:
    return base64.urlsafe_b64encode(f"ev1:{position}".encode()).decode().rstrip("=")


def _values(query: Mapping[str, str], names: tuple[str, ...],
            what: str) -> dict[str, str | None]:
    """The named parameters, blank as None; 400 naming the first unknown one."""
    unknown = sorted(set(query) - set(names))
    if unknown:
        raise Problem(400, "invalid-parameter",
                      f"{unknown[0]}: unknown parameter; the {what} takes "
                      f"{', '.join(names)}", parameter=unknown[0])
    return {key: query.get(key, "").strip() or None for key in names}


def _limit(text: str | None, default: int) -> int:
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:
        raise Problem(400, "invalid-parameter",
                      f"limit: expected a whole number from 1 to {MAX_LIMIT}, got {text!r}",
                      parameter="limit")
    return int(text)


def _window(values: dict[str, str | None], now: float) -> tuple[float | None, float | None]:
    """`since` and `until` as inclusive bounds; 400 when either is not a time or they cross."""
    since = parse_time(values["since"], now, "since") if values["since"] else None
    until = parse_time(values["until"], now, "until") if values["until"] else None
    if until is not None:
        # Times are shown to the millisecond (truncated): a time pasted from an
        # answer must include that record.
        until += 0.000999
    if since is not None and until is not None and since > until:
        raise Problem(400, "invalid-parameter", "until: is before since", parameter="until")
    return since, until


def delivery_filter(query: Mapping[str, str], now: float) -> tuple[DeliveryFilter, int]:
    """The list's query parameters as a store filter and a page size; 400 on anything odd."""
    values = _values(query, _LIST_PARAMS, "delivery list")
    status = None
    if values["status"] is not None:
        try:
            status = DeliveryStatus(values["status"])
        except ValueError:
            raise Problem(400, "invalid-parameter",
                          f"status: {values['status']!r} is not a delivery state; use one of "
                          f"{', '.join(s.value for s in DeliveryStatus)}",
                          parameter="status") from None
    limit = _limit(values["limit"], DEFAULT_LIMIT)
    since, until = _window(values, now)
    before = _decode_cursor(values["cursor"]) if values["cursor"] else None
    return DeliveryFilter(endpoint=values["endpoint"], status=status,
                          event_type=values["type"], tenant=values["tenant"], since=since,
                          until=until, before_id=before), limit


def event_filter(query: Mapping[str, str], now: float,
                 default_source: str) -> tuple[EventFilter, int]:
    """The event list's query parameters as a store filter and a page size; 400 on anything odd.

    `source=<default_source>` (`default`) is /v1/events, which the store keeps as no source.
    """
    values = _values(query, _EVENT_PARAMS, "event list")
    limit = _limit(values["limit"], DEFAULT_LIMIT)
    since, until = _window(values, now)
    source = "" if values["source"] == default_source else values["source"]
    before = _unwrap(values["cursor"], "ev1") if values["cursor"] else None
    return EventFilter(tenant=values["tenant"], event_type=values["type"], source=source,
                       since=since, until=until, before=before), limit


@dataclass(frozen=True, slots=True)
class EndpointQuery:
    """The endpoint list's filters and page: `after` is the cursor's position key."""

    tenant: str | None = None
    source: str | None = None
    status: str | None = None
    limit: int = ENDPOINT_PAGE
    after: tuple[int, str] | None = None  # (0, index) for relay.yaml's, (1, name) for the API's


def encode_position(position: tuple[int, str]) -> str:
    return base64.urlsafe_b64encode(f"e1:{position[0]}:{position[1]}".encode()).decode()


def _decode_position(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, rank, key = raw.split(":", 2)
        if version != "e1" or rank not in ("0", "1"):
            raise ValueError(raw)
        return int(rank), key
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad_cursor() from None


def endpoint_query(query: Mapping[str, str]) -> EndpointQuery:
    """The endpoint list's query parameters; 400 on anything odd."""
    values = _values(query, _ENDPOINT_PARAMS, "endpoint list")
    if values["source"] not in (None, "config", "api"):
        raise Problem(400, "invalid-parameter",
                      f"source: {values['source']!r} is not a source; use config or api",
                      parameter="source")
    if values["status"] not in (None, *ENDPOINT_STATES):
        raise Problem(400, "invalid-parameter",
                      f"status: {values['status']!r} is not an endpoint status; use one of "
                      f"{', '.join(ENDPOINT_STATES)}", parameter="status")
    limit = _limit(values["limit"], ENDPOINT_PAGE)
    after = _decode_position(values["cursor"]) if values["cursor"] else None
    return EndpointQuery(values["tenant"], values["source"], values["status"], limit, after)
