"""The admin API's query parameters: times, the delivery list's filters and its cursor.

The delivery list is newest first and pages by id: `cursor` is an opaque token
for "ids below this one", so a page is never repeated or skipped while new
deliveries (always with larger ids) arrive, and no page costs more than its
own rows (no OFFSET).
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
from relay.storage.base import DeliveryFilter
from relay.units import parse_duration

__all__ = [
    "DEFAULT_LIMIT", "MAX_LIMIT", "EndpointQuery", "delivery_filter", "encode_cursor",
    "encode_position", "endpoint_query", "parse_time",
]

DEFAULT_LIMIT = 50

MAX_LIMIT = 500

_LIST_PARAMS = ("endpoint", "tenant", "status", "type", "since", "until", "limit", "cursor")
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


def _decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, _, number = raw.partition(":")
        if version != "v1" or not number.isdigit():
            raise ValueError(raw)
        return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Problem(400, "invalid-parameter",
                      "cursor: not a cursor this relay issued; pass `next_cursor` from the "
                      "previous page unchanged", parameter="cursor") from None


def delivery_filter(query: Mapping[str, str], now: float) -> tuple[DeliveryFilter, int]:
    """The list's query parameters as a store filter and a page size; 400 on anything odd."""
    unknown = sorted(set(query) - set(_LIST_PARAMS))
    if unknown:
        raise Problem(400, "invalid-parameter",
                      f"{unknown[0]}: unknown parameter; the delivery list takes "
                      f"{', '.join(_LIST_PARAMS)}", parameter=unknown[0])
    values = {key: query.get(key, "").strip() or None for key in _LIST_PARAMS}
    status = None
    if values["status"] is not None:
        try:
            status = DeliveryStatus(values["status"])
        except ValueError:
            raise Problem(400, "invalid-parameter",
                          f"status: {values['status']!r} is not a delivery state; use one of "
                          f"{', '.join(s.value for s in DeliveryStatus)}",
                          parameter="status") from None
    limit = DEFAULT_LIMIT
    if values["limit"] is not None:
        text = values["limit"]
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:
            raise Problem(400, "invalid-parameter",
                          f"limit: expected a whole number from 1 to {MAX_LIMIT}, got {text!r}",
                          parameter="limit")
        limit = int(text)
    since = parse_time(values["since"], now, "since") if values["since"] else None
    until = parse_time(values["until"], now, "until") if values["until"] else None
    if until is not None:
        # Times are shown to the millisecond (truncated): a `created_at` pasted from
        # an answer must include that delivery.
        until += 0.000999
    if since is not None and until is not None and since > until:
        raise Problem(400, "invalid-parameter", "until: is before since", parameter="until")
    before = _decode_cursor(values["cursor"]) if values["cursor"] else None
    return DeliveryFilter(endpoint=values["endpoint"], status=status,
                          event_type=values["type"], tenant=values["tenant"], since=since,
                          until=until, before_id=before), limit


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
        raise Problem(400, "invalid-parameter",
                      "cursor: not a cursor this relay issued; pass `next_cursor` from the "
                      "previous page unchanged", parameter="cursor") from None


def endpoint_query(query: Mapping[str, str]) -> EndpointQuery:
    """The endpoint list's query parameters; 400 on anything odd."""
    unknown = sorted(set(query) - set(_ENDPOINT_PARAMS))
    if unknown:
        raise Problem(400, "invalid-parameter",
                      f"{unknown[0]}: unknown parameter; the endpoint list takes "
                      f"{', '.join(_ENDPOINT_PARAMS)}", parameter=unknown[0])
    values = {key: query.get(key, "").strip() or None for key in _ENDPOINT_PARAMS}
    if values["source"] not in (None, "config", "api"):
        raise Problem(400, "invalid-parameter",
                      f"source: {values['source']!r} is not a source; use config or api",
                      parameter="source")
    if values["status"] not in (None, *ENDPOINT_STATES):
        raise Problem(400, "invalid-parameter",
                      f"status: {values['status']!r} is not an endpoint status; use one of "
                      f"{', '.join(ENDPOINT_STATES)}", parameter="status")
    limit = ENDPOINT_PAGE
    if values["limit"] is not None:
        text = values["limit"]
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:
            raise Problem(400, "invalid-parameter",
                          f"limit: expected a whole number from 1 to {MAX_LIMIT}, got {text!r}",
                          parameter="limit")
        limit = int(text)
    after = _decode_position(values["cursor"]) if values["cursor"] else None
    return EndpointQuery(values["tenant"], values["source"], values["status"], limit, after)
