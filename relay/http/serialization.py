"""How the relay's stored records look in its JSON answers: the admin API's and the dashboard's.

One function per record (`delivery_json`, `attempt_json`, `endpoint_json`,
`event_json`, `event_summary_json`), so the API, the dashboard's pages and the CLI (which prints
the API's JSON) can never disagree about a field. Public delivery ids are
`dlv_<n>`, `n` being the store's integer id.
"""

from __future__ import annotations

import json
import re
from typing import Any

from relay.config import EndpointConfig
from relay.config.sources import DEFAULT_SOURCE
from relay.http.json_body import MAX_DEPTH, nests_deeper
from relay.models import AttemptRecord, DeliveryStatus
from relay.storage.base import DeliveryRecord, EndpointStats, EventRecord, EventSummary
from relay.timefmt import iso

__all__ = [
    "MASK",
    "attempt_json",
    "delivery_json",
    "endpoint_json",
    "endpoint_settings",
    "endpoint_status",
    "event_json",
    "event_summary_json",
    "format_delivery_id",
    "iso",
    "parse_delivery_id",
    "stored_payload",
]

_DELIVERY_ID = re.compile(r"(?:dlv_)?([0-9]{1,18})")

# Request headers an endpoint's `headers:` may add that carry credentials; the
# signature headers were already cut to their scheme when the attempt was stored.
_SENSITIVE_HEADER = re.compile(r"authorization|cookie|token|secret|api[-_]?key|password",
                               re.IGNORECASE)

_WAITING = (DeliveryStatus.PENDING, DeliveryStatus.SCHEDULED)


def format_delivery_id(delivery_id: int) -> str:
    return f"dlv_{delivery_id}"


def parse_delivery_id(text: str) -> int | None:
    """`dlv_42` (or plain `42`) to 42; None when it cannot be a delivery id."""
    match = _DELIVERY_ID.fullmatch(text)
    return int(match.group(1)) if match else None


MASK = "…"  # what a credential-carrying header's value reads as in answers


def _mask_headers(headers: dict[str, str]) -> dict[str, str]:
    return {name: MASK if _SENSITIVE_HEADER.search(name) else value
            for name, value in headers.items()}


def delivery_json(record: DeliveryRecord) -> dict[str, Any]:
    waiting = record.status in _WAITING
    return {
        "id": format_delivery_id(record.id),
        "event_id": record.event_id,
        "event_type": record.event_type,
        "endpoint": record.endpoint,
        "status": record.status.value,
        "attempt_count": record.attempts,
        "created_at": iso(record.created_at),
        "updated_at": iso(record.updated_at),
        "next_attempt_at": iso(record.next_attempt_at) if waiting else None,
        "last_attempt_at": iso(record.last_attempt_at),
        "last_status_code": record.last_status_code,
        "last_error": record.last_error,
        "tenant": record.tenant,
    }


def attempt_json(attempt: AttemptRecord) -> dict[str, Any]:
    return {
        "attempt": attempt.attempt,
        "started_at": iso(attempt.started_at),
        "duration_ms": None if attempt.duration_ms is None else round(attempt.duration_ms, 1),
        "status_code": attempt.status_code,
        "response": attempt.response_body,
        "error": attempt.error,
        "request_headers": _mask_headers(attempt.request_headers),
    }


def endpoint_status(endpoint: EndpointConfig | None, stats: EndpointStats,
                    source: str | None = "config") -> tuple[str, str | None]:
    """`ok`, `error`, `paused` or `disabled`, and why when it is not plain."""
    if endpoint is None:
        return "disabled", "not in relay.yaml any more"
    if not endpoint.enabled:
        return "disabled", ("enabled: false in relay.yaml" if source == "config"
                            else "enabled: false")
    if stats.disabled_reason:
        return "disabled", stats.disabled_reason
    if stats.paused:
        return "paused", "paused by an operator"
    if stats.failing_since is not None:
        return "error", stats.last_error or "the last attempt failed"
    return "ok", None


def endpoint_settings(endpoint: EndpointConfig) -> dict[str, Any]:
    """An endpoint's settings as relay.yaml spells them, secrets left out, credentials masked.

    A header that carries a credential (`Authorization`, `X-Api-Key`...) reads
    `…`; sending `…` back in a PATCH keeps the stored value.
    """
    settings = endpoint.model_dump(mode="json", by_alias=True)
    settings["headers"] = _mask_headers(settings["headers"])
    return settings


def endpoint_json(name: str, endpoint: EndpointConfig | None, stats: EndpointStats | None,
                  source: str | None = "config") -> dict[str, Any]:
    stats = stats or EndpointStats(name, {s.value: 0 for s in DeliveryStatus})
    status, reason = endpoint_status(endpoint, stats, source)
    settings: dict[str, Any] = ({"url": None, "events": [], "signature": None,
                                 "ordering": None} if endpoint is None
                                else endpoint_settings(endpoint))
    return {
        "name": name,
        "source": source if endpoint is not None else None,
        "configured": endpoint is not None,
        **{key: value for key, value in settings.items() if key != "name"},
        "status": status,
        "status_reason": reason,
        "paused": stats.paused,
        "disabled_reason": stats.disabled_reason,
        "failing_since": iso(stats.failing_since),
        "last_error": stats.last_error,
        "last_sent_at": iso(stats.last_attempt_at),
        "last_delivered_at": iso(stats.last_success_at),
        "next_retry_at": iso(stats.next_retry_at),
        "counts": stats.counts or {s.value: 0 for s in DeliveryStatus},
    }


def stored_payload(body: bytes) -> tuple[Any, str | None]:
    """An event's body for an answer: `(parsed, None)`, or `(None, text)` when it cannot be.

    Ingest relays bytes and accepts JSON that no JSON answer can carry back: a
    number beyond a double (`1e400` reads as infinity), a lone surrogate
    (`"\\ud800"`, which cannot be written as UTF-8), and, stored before the
    nesting limit, events up to 1024 levels deep. Those come back as their text
    (invalid UTF-8 replaced), so the answer stays valid JSON and hides nothing.
    """
    if not nests_deeper(body, MAX_DEPTH):
        try:
            payload = json.loads(body.decode("utf-8"))
            json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8")
        except (ValueError, RecursionError):
            pass
        else:
            return payload, None
    return None, body.decode("utf-8", errors="replace")


def _event_head(event: EventRecord | EventSummary) -> dict[str, Any]:
    """What the event list and one event's answer both show first."""
    return {
        "id": event.id,
        "type": event.type,
        "received_at": iso(event.received_at),
        "tenant": event.tenant,
        "source": event.source or DEFAULT_SOURCE,
    }


def event_json(event: EventRecord, deliveries: list[DeliveryRecord]) -> dict[str, Any]:
    """One event as received (see `stored_payload`), with its deliveries."""
    payload, payload_text = stored_payload(event.body)
    return {
        **_event_head(event),
        "payload": payload,
        "payload_text": payload_text,
        "size_bytes": len(event.body),
        "deliveries": [delivery_json(d) for d in deliveries],
    }


def event_summary_json(event: EventSummary) -> dict[str, Any]:
    """One event of the event list: as `event_json` without the payload and the deliveries,
    which `GET /v1/events/{id}` gives; how many deliveries it made instead."""
    return {**_event_head(event), "size_bytes": event.size_bytes,
            "delivery_count": event.delivery_count}
