"""The admin API (SPEC section 5): endpoints, the delivery log, test/retry/recover, metrics.

Every route sits behind `Authorization: Bearer <admin.token>` when a token is
configured (read from the live config, so a reload that changes it applies at
once) and answers errors as problem documents like ingest does.

Public delivery ids are `dlv_<n>`, `n` being the store's integer id, which is
also the keyset of the delivery list: newest first, `cursor` is an opaque
token for "ids below this one", so a page is never repeated or skipped while
new deliveries (always with larger ids) arrive, and no page costs more than
its own rows (no OFFSET).

Actions go through the same machinery as everything else: `test` ingests a
`webhook.test` event through ingest's own commit path and waits for the lane
to attempt it; `pause`/`resume` persist the flag in the store and hold or wake
the endpoint's lane; `retry` and `recover` make deliveries due and wake it.

Each route is a thin wrapper around a `(state, arguments) -> dict` function
(`endpoints_data`, `pause`, `retry`, ...), so the dashboard (`relay.http.dashboard`)
shows the same data and acts through the same code paths as this API.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.config import EndpointConfig
from relay.exceptions import StorageError
from relay.http.auth import (
    HOST_NOT_ALLOWED,
    check_token,
    from_other_site,
    is_json_media_type,
)
from relay.http.ingest import store_events as ingest_events
from relay.http.problems import Problem
from relay.http.state import RelayState
from relay.metrics import CONTENT_TYPE_LATEST
from relay.models import AttemptRecord, AttemptResult, DeliveryStatus, NewEvent, new_event_id
from relay.storage.base import DeliveryFilter, DeliveryRecord, EndpointStats
from relay.units import parse_duration

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "TEST_EVENT_TYPE",
    "admin_routes",
    "deliveries_page",
    "delivery_data",
    "delivery_filter",
    "endpoint_data",
    "endpoints_data",
    "event_data",
    "format_delivery_id",
    "parse_delivery_id",
    "parse_time",
    "pause",
    "recover",
    "resume",
    "retry",
    "send_test",
]

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
TEST_EVENT_TYPE = "webhook.test"
TEST_WAIT_MARGIN_S = 5.0  # `test` waits for the endpoint's timeout plus this
_LIST_PARAMS = ("endpoint", "status", "type", "since", "until", "limit", "cursor")
_DELIVERY_ID = re.compile(r"(?:dlv_)?([0-9]{1,18})")
_DURATION_WITH_UNIT = re.compile(r"\s*[0-9]+(?:\.[0-9]+)?\s*(ms|s|m|h|d|w)\s*")
# Request headers an endpoint's `headers:` may add that carry credentials; the
# signature headers were already cut to their scheme when the attempt was stored.
_SENSITIVE_HEADER = re.compile(r"authorization|cookie|token|secret|api[-_]?key|password",
                               re.IGNORECASE)
_WAITING = (DeliveryStatus.PENDING, DeliveryStatus.SCHEDULED)

Handler = Callable[[Request, "RelayState"], Awaitable[Response]]


# -- values in and out ---------------------------------------------------------------------


def iso(ts: float | None) -> str | None:
    """Unix seconds as ISO 8601 UTC with milliseconds, the one time format of the API."""
    if ts is None:
        return None
    text = datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


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


def format_delivery_id(delivery_id: int) -> str:
    return f"dlv_{delivery_id}"


def parse_delivery_id(text: str) -> int | None:
    """`dlv_42` (or plain `42`) to 42; None when it cannot be a delivery id."""
    match = _DELIVERY_ID.fullmatch(text)
    return int(match.group(1)) if match else None


def _encode_cursor(before_id: int) -> str:
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


def _mask_headers(headers: dict[str, str]) -> dict[str, str]:
    return {name: "…" if _SENSITIVE_HEADER.search(name) else value
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


def endpoint_status(endpoint: EndpointConfig | None,
                    stats: EndpointStats) -> tuple[str, str | None]:
    """`ok`, `error`, `paused` or `disabled`, and why when it is not plain."""
    if endpoint is None:
        return "disabled", "not in relay.yaml any more"
    if not endpoint.enabled:
        return "disabled", "enabled: false in relay.yaml"
    if stats.disabled_reason:
        return "disabled", stats.disabled_reason
    if stats.paused:
        return "paused", "paused by an operator"
    if stats.failing_since is not None:
        return "error", stats.last_error or "the last attempt failed"
    return "ok", None


def endpoint_json(name: str, endpoint: EndpointConfig | None,
                  stats: EndpointStats | None) -> dict[str, Any]:
    stats = stats or EndpointStats(name, {s.value: 0 for s in DeliveryStatus})
    status, reason = endpoint_status(endpoint, stats)
    return {
        "name": name,
        "configured": endpoint is not None,
        "url": endpoint.url if endpoint else None,
        "events": list(endpoint.events) if endpoint else [],
        "signature": endpoint.signature if endpoint else None,
        "ordering": endpoint.ordering if endpoint else None,
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


# -- plumbing ------------------------------------------------------------------------------


async def check_admin_request(request: Request, state: RelayState) -> None:
    """The admin token, the browser rules of `relay.http.auth`, and JSON-only POST bodies.

    Other-site requests are refused whatever the token: a browser cannot hold
    the token, but a tokenless relay would obey any page that posts to it.
    """
    token = state.config.admin.token
    headers = request.headers
    if from_other_site(headers):
        raise Problem(403, "cross-site-request",
                      "this request was sent by a page of another site (Origin or "
                      "Sec-Fetch-Site says so); the admin API answers programs and this "
                      "relay's own pages only")
    if not token and not state.host_rule.allows(headers.get("host", "")):
        raise Problem(403, "host-not-allowed", HOST_NOT_ALLOWED)
    check_token(headers.get("authorization", ""), token, "admin.token")
    if request.method == "POST":
        content_type = headers.get("content-type")
        if content_type is None:
            if (await request.body()).strip():
                raise Problem(415, "unsupported-media-type",
                              "send the body as JSON with `Content-Type: application/json`")
        elif not is_json_media_type(content_type):
            media_type = content_type.split(";", 1)[0].strip() or "none"
            raise Problem(415, "unsupported-media-type",
                          f"admin actions take JSON: send `Content-Type: application/json` "
                          f"(got {media_type})")


def _admin(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Check who is asking, and answer 503 when the store fails underneath a route."""

    async def route(request: Request) -> Response:
        state: RelayState = request.app.state.relay
        await check_admin_request(request, state)
        try:
            return await handler(request, state)
        except StorageError as exc:
            raise Problem(503, "storage-unavailable", f"the store failed: {exc}; retry later",
                          headers={"Retry-After": "5"}) from None

    route.__name__ = handler.__name__
    route.__doc__ = handler.__doc__
    return route


def _configured(state: RelayState, name: str) -> EndpointConfig:
    """The endpoint an action needs: configured (404 if not) and enabled (409 if not)."""
    endpoint = state.config.endpoint(name)
    if endpoint is None:
        raise Problem(404, "unknown-endpoint",
                      f"no endpoint named {name!r} in relay.yaml", endpoint=name)
    if not endpoint.enabled:
        raise Problem(409, "endpoint-disabled",
                      f"endpoint {name!r} has `enabled: false` in relay.yaml; enable it and "
                      "reload the relay first", endpoint=name)
    return endpoint


async def _not_held(state: RelayState, name: str, action: str) -> None:
    reason = (await state.storage.held_endpoints()).get(name)
    if reason is not None:
        what = "paused" if reason == "paused" else f"disabled ({reason})"
        raise Problem(409, "endpoint-held",
                      f"endpoint {name!r} is {what}, so nothing would be sent; "
                      f"`relay resume {name}` first, then {action}", endpoint=name)


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise Problem(400, "invalid-json", "the body is not valid JSON") from None
    if not isinstance(value, dict):
        raise Problem(400, "invalid-json", "the body must be a JSON object")
    return value


def _json(data: Any, status_code: int = 200) -> Response:
    return JSONResponse(data, status_code=status_code)


# -- endpoints -----------------------------------------------------------------------------


async def endpoints_data(state: RelayState) -> list[dict[str, Any]]:
    """Every configured endpoint, then any the store still knows that relay.yaml lost."""
    stats = await state.storage.endpoint_stats()
    data = [endpoint_json(e.name, e, stats.get(e.name)) for e in state.config.endpoints]
    configured = {e.name for e in state.config.endpoints}
    data += [endpoint_json(name, None, s) for name, s in stats.items() if name not in configured]
    return data


async def endpoint_data(state: RelayState, name: str) -> dict[str, Any]:
    """One endpoint with its status and counts; 404 when neither config nor store knows it."""
    endpoint = state.config.endpoint(name)
    stats = (await state.storage.endpoint_stats(name)).get(name)
    if endpoint is None and stats is None:
        raise Problem(404, "unknown-endpoint", f"no endpoint named {name!r}", endpoint=name)
    return endpoint_json(name, endpoint, stats)


async def pause(state: RelayState, name: str) -> dict[str, Any]:
    """Stop sending to an endpoint; its waiting deliveries are held, never dropped."""
    _configured(state, name)
    # Store first: a claim committed after this finds only held rows, and a failed
    # write leaves the lane running as the store says it should.
    held = await state.storage.pause_endpoint(name, state.clock())
    state.dispatcher.set_held(name, "paused")
    stats = (await state.storage.endpoint_stats(name)).get(name)
    return {**endpoint_json(name, state.config.endpoint(name), stats), "held": held}


async def resume(state: RelayState, name: str) -> dict[str, Any]:
    """Send again: held deliveries are due as before, in their old order; lifts a disable."""
    _configured(state, name)
    released = await state.storage.resume_endpoint(name, state.clock())
    state.dispatcher.set_held(name, None)  # wakes the lane
    stats = (await state.storage.endpoint_stats(name)).get(name)
    return {**endpoint_json(name, state.config.endpoint(name), stats), "released": released}


async def recover(state: RelayState, name: str, since_value: Any) -> dict[str, Any]:
    """Requeue the endpoint's deliveries that failed since a time, after its receiver is fixed.

    `since_value` is what the caller sent: a duration ago (`2h`) or an ISO 8601 time.
    """
    _configured(state, name)
    if not isinstance(since_value, str) or not since_value.strip():
        raise Problem(400, "invalid-parameter",
                      'since: required, e.g. {"since": "2h"} or {"since": '
                      '"2025-01-03T14:00:00Z"}', parameter="since")
    now = state.clock()
    since = parse_time(since_value, now, "since")
    requeued = await state.storage.recover_failed(name, since, now)
    state.dispatcher.notify([name])
    return {"endpoint": name, "since": iso(since), "requeued": requeued}


async def list_endpoints(request: Request, state: RelayState) -> Response:
    """Every configured endpoint, then any the store still knows that relay.yaml lost."""
    return _json({"data": await endpoints_data(state)})


async def get_endpoint(request: Request, state: RelayState) -> Response:
    """One endpoint with its status and counts."""
    return _json(await endpoint_data(state, request.path_params["name"]))


async def pause_endpoint(request: Request, state: RelayState) -> Response:
    """Stop sending to an endpoint; its waiting deliveries are held, never dropped."""
    return _json(await pause(state, request.path_params["name"]))


async def resume_endpoint(request: Request, state: RelayState) -> Response:
    """Send again: held deliveries are due as before, in their old order; lifts a disable."""
    return _json(await resume(state, request.path_params["name"]))


async def recover_endpoint(request: Request, state: RelayState) -> Response:
    """Requeue the endpoint's deliveries that failed since a time, after its receiver is fixed."""
    name = request.path_params["name"]
    _configured(state, name)  # an unknown endpoint is a 404 before a bad body is a 400
    body = await _json_body(request)
    return _json(await recover(state, name, body.get("since")))


async def send_test_event(request: Request, state: RelayState) -> Response:
    """Send a `webhook.test` event the way any event goes out, and answer with the outcome.

    Answers 200 once attempted, whatever the outcome, or 202 when the lane has
    not reached it yet (a fifo backlog).
    """
    data, attempted = await send_test(state, request.path_params["name"])
    return _json(data, 200 if attempted else 202)


async def send_test(state: RelayState, name: str) -> tuple[dict[str, Any], bool]:
    """Send a `webhook.test` event the way any event goes out; the outcome, and if attempted.

    The event is stored and routed to this endpoint only, signed and sent by its
    lane like any other; this waits for that first attempt (at most the
    endpoint's timeout plus a margin). `outcome` is `pending` when the lane has
    not reached it by then (a fifo backlog).
    """
    endpoint = _configured(state, name)
    await _not_held(state, name, "test it")
    now = state.clock()
    body = json.dumps({
        "type": TEST_EVENT_TYPE,
        "data": {"endpoint": name, "sent_at": iso(now),
                 "message": "a test event sent by the relay's operator"},
    }).encode()
    event = NewEvent(id=new_event_id(now), type=TEST_EVENT_TYPE, body=body, endpoints=(name,),
                     received_at=now, keyed=False)
    seen: set[int] = set()
    arrived = asyncio.Event()

    def listener(result: AttemptResult) -> None:
        if result.endpoint == name and result.counts:
            seen.add(result.delivery_id)
            arrived.set()

    # Listening before the commit: the attempt may finish at once.
    with state.dispatcher.on_attempt(listener):
        await ingest_events(state, [event])
        [delivery] = await state.storage.event_deliveries(event.id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + endpoint.timeout_s + TEST_WAIT_MARGIN_S
        while delivery.id not in seen and loop.time() < deadline:
            arrived.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(deadline - loop.time()):
                    await arrived.wait()
    record = await state.storage.get_delivery(delivery.id) or delivery
    attempts = await state.storage.list_attempts(delivery.id)
    attempted = delivery.id in seen
    if not attempted:
        outcome = "pending"
    elif record.status == DeliveryStatus.DELIVERED:
        outcome = "delivered"
    else:
        outcome = "failed"
    return {
        "endpoint": name,
        "event_id": event.id,
        "outcome": outcome,
        "delivery": {**delivery_json(record), "attempts": [attempt_json(a) for a in attempts]},
    }, attempted


# -- deliveries and events ---------------------------------------------------------------


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
        if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
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
                          event_type=values["type"], since=since, until=until,
                          before_id=before), limit


async def deliveries_page(state: RelayState, where: DeliveryFilter,
                          limit: int) -> dict[str, Any]:
    """One page of the delivery log, newest first, with the cursor of the next page."""
    rows = await state.storage.list_deliveries(where, limit + 1)
    page, more = rows[:limit], len(rows) > limit
    return {
        "data": [delivery_json(r) for r in page],
        "has_more": more,
        "next_cursor": _encode_cursor(page[-1].id) if more else None,
    }


async def list_deliveries(request: Request, state: RelayState) -> Response:
    """The delivery log, newest first, one page at a time."""
    where, limit = delivery_filter(request.query_params, state.clock())
    return _json(await deliveries_page(state, where, limit))


def _delivery_path_id(request: Request) -> int:
    text = request.path_params["delivery_id"]
    delivery_id = parse_delivery_id(text)
    if delivery_id is None:
        raise Problem(404, "unknown-delivery",
                      f"{text!r} is not a delivery id (they look like dlv_42)")
    return delivery_id


async def delivery_data(state: RelayState, delivery_id: int) -> dict[str, Any]:
    """One delivery with every attempt: when, how long, the answer, the error."""
    record = await state.storage.get_delivery(delivery_id)
    if record is None:
        raise Problem(404, "unknown-delivery",
                      f"no delivery {format_delivery_id(delivery_id)} (never created, or "
                      "purged by retention)")
    attempts = await state.storage.list_attempts(delivery_id)
    return {**delivery_json(record), "attempts": [attempt_json(a) for a in attempts]}


async def get_delivery(request: Request, state: RelayState) -> Response:
    """One delivery with every attempt: when, how long, the answer, the error."""
    return _json(await delivery_data(state, _delivery_path_id(request)))


async def retry_delivery(request: Request, state: RelayState) -> Response:
    """Make one delivery due now: a failed, scheduled, held or even delivered one."""
    return _json(await retry(state, _delivery_path_id(request)))


async def retry(state: RelayState, delivery_id: int) -> dict[str, Any]:
    """Make one delivery due now; 409 while it is in flight or its endpoint is held."""
    public = format_delivery_id(delivery_id)
    record = await state.storage.get_delivery(delivery_id)
    if record is None:
        raise Problem(404, "unknown-delivery", f"no delivery {public}")
    if state.config.endpoint(record.endpoint) is None:
        raise Problem(409, "endpoint-not-configured",
                      f"{public} is for endpoint {record.endpoint!r}, which is no longer in "
                      "relay.yaml; nothing would send it", endpoint=record.endpoint)
    _configured(state, record.endpoint)
    await _not_held(state, record.endpoint, f"retry {public}")
    outcome, previous = await state.storage.retry_delivery(delivery_id, state.clock())
    if outcome == "not_found":
        raise Problem(404, "unknown-delivery", f"no delivery {public}")
    if outcome == "in_flight":
        raise Problem(409, "delivery-in-flight",
                      f"{public} is being attempted right now; wait for the outcome "
                      f"(`relay delivery {public}`)", delivery=public)
    # Read the delivery back before waking its lane, so the answer shows the
    # state the retry made (`scheduled`, due now) rather than a race with the lane.
    updated = await state.storage.get_delivery(delivery_id) or record
    state.dispatcher.notify([record.endpoint])
    return {**delivery_json(updated), "previous_status": previous.value if previous else None}


async def get_event(request: Request, state: RelayState) -> Response:
    """One event as received, with its deliveries."""
    return _json(await event_data(state, request.path_params["event_id"]))


async def event_data(state: RelayState, event_id: str) -> dict[str, Any]:
    """One event as received (payload parsed, None if not JSON), with its deliveries."""
    event = await state.storage.get_event(event_id)
    if event is None:
        raise Problem(404, "unknown-event",
                      f"no event {event_id!r} (never received, or purged by retention)")
    deliveries = await state.storage.event_deliveries(event_id)
    try:
        payload: Any = json.loads(event.body)
    except ValueError:
        payload = None
    return {
        "id": event.id,
        "type": event.type,
        "received_at": iso(event.received_at),
        "payload": payload,
        "size_bytes": len(event.body),
        "deliveries": [delivery_json(d) for d in deliveries],
    }


async def metrics(request: Request, state: RelayState) -> Response:
    """Prometheus text exposition."""
    names = [e.name for e in state.config.endpoints]
    text = await state.metrics.render(state.storage, names, state.clock())
    return Response(text, media_type=CONTENT_TYPE_LATEST)


def admin_routes() -> list[Route]:
    """The routes to mount on the relay's app, next to ingest."""
    return [
        Route("/v1/endpoints", _admin(list_endpoints), methods=["GET"]),
        Route("/v1/endpoints/{name}", _admin(get_endpoint), methods=["GET"]),
        Route("/v1/endpoints/{name}/test", _admin(send_test_event), methods=["POST"]),
        Route("/v1/endpoints/{name}/pause", _admin(pause_endpoint), methods=["POST"]),
        Route("/v1/endpoints/{name}/resume", _admin(resume_endpoint), methods=["POST"]),
        Route("/v1/endpoints/{name}/recover", _admin(recover_endpoint), methods=["POST"]),
        Route("/v1/deliveries", _admin(list_deliveries), methods=["GET"]),
        Route("/v1/deliveries/{delivery_id}", _admin(get_delivery), methods=["GET"]),
        Route("/v1/deliveries/{delivery_id}/retry", _admin(retry_delivery), methods=["POST"]),
        Route("/v1/events/{event_id:path}", _admin(get_event), methods=["GET"]),
        Route("/metrics", _admin(metrics), methods=["GET"]),
    ]
