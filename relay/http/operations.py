"""What an operator can do, whatever the door: the admin API's routes and the dashboard's buttons.

Each operation is a `(state, arguments) -> dict` function that raises
`Problem` for what cannot be done, so a button and `relay pause NAME` can never
behave differently. Actions go through the same machinery as everything else:
`send_test` ingests a `webhook.test` event through ingest's own commit path
and waits for the lane to attempt it; `pause`/`resume` persist the flag in the
store and hold or wake the endpoint's lane; `retry` and `recover` make
deliveries due and wake it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from relay.config import EndpointConfig
from relay.http.ingest import store_events as ingest_events
from relay.http.params import (
    EndpointQuery,
    bad_cursor,
    encode_cursor,
    encode_event_cursor,
    encode_position,
    parse_time,
)
from relay.http.problems import Problem
from relay.http.serialization import (
    attempt_json,
    delivery_json,
    endpoint_json,
    endpoint_status,
    event_json,
    event_summary_json,
    format_delivery_id,
)
from relay.http.state import RelayState
from relay.models import AttemptResult, DeliveryStatus, NewEvent, new_event_id
from relay.storage.base import DeliveryFilter, EndpointStats, EventFilter
from relay.timefmt import iso
from relay.wire import compact_json

__all__ = [
    "TEST_EVENT_TYPE",
    "configured",
    "deliveries_page",
    "delivery_data",
    "endpoint_data",
    "endpoints_data",
    "endpoints_page",
    "event_data",
    "events_page",
    "pause",
    "recover",
    "resume",
    "retry",
    "send_test",
]

TEST_EVENT_TYPE = "webhook.test"

TEST_WAIT_MARGIN_S = 5.0  # `test` waits for the endpoint's timeout plus this


def configured(state: RelayState, name: str) -> EndpointConfig:
    """The endpoint an action needs: known (404 if not) and enabled (409 if not)."""
    endpoint = state.registry.get(name)
    if endpoint is None:
        raise Problem(404, "unknown-endpoint", f"no endpoint named {name!r}", endpoint=name)
    if not endpoint.enabled:
        how = ("in relay.yaml; enable it and reload the relay first"
               if state.registry.source(name) == "config"
               else f"; enable it first (PATCH /v1/endpoints/{name} {{\"enabled\": true}})")
        raise Problem(409, "endpoint-disabled",
                      f"endpoint {name!r} has `enabled: false` {how}", endpoint=name)
    return endpoint


def endpoint_answer(state: RelayState, name: str, stats: EndpointStats | None) -> dict[str, Any]:
    """One endpoint as the API shows it: settings, source, status and counts."""
    return endpoint_json(name, state.registry.get(name), stats, state.registry.source(name))


async def _not_held(state: RelayState, name: str, action: str) -> None:
    reason = (await state.storage.held_endpoints()).get(name)
    if reason is not None:
        what = "paused" if reason == "paused" else f"disabled ({reason})"
        raise Problem(409, "endpoint-held",
                      f"endpoint {name!r} is {what}, so nothing would be sent; "
                      f"`relay resume {name}` first, then {action}", endpoint=name)


async def endpoints_data(state: RelayState) -> list[dict[str, Any]]:
    """Every endpoint (relay.yaml's, then the API's), then any the store knows that they lost."""
    stats = await state.storage.endpoint_stats()
    data = [endpoint_answer(state, e.name, stats.get(e.name)) for e in state.registry]
    data += [endpoint_json(name, None, s) for name, s in stats.items()
             if state.registry.get(name) is None and not s.deleted]
    return data


async def endpoints_page(state: RelayState, query: EndpointQuery) -> dict[str, Any]:
    """One page of the endpoint list: relay.yaml's in file order, the API's by name, then
    any the store still knows that both lost (their deliveries are left).

    Pages by position (an index into relay.yaml's, a name among the others), so
    a page is never repeated while endpoints are added. Only the page's
    endpoints have their deliveries counted: a status filter reads the stored
    states alone (`Storage.endpoint_states`, one row per endpoint), and a page
    that ends among relay.yaml's and the API's endpoints reads nothing else.
    """
    registry = state.registry
    known: dict[str, EndpointStats] | None = None

    async def stored() -> dict[str, EndpointStats]:
        nonlocal known
        if known is None:
            known = await state.storage.endpoint_states()
        return known

    picked: list[tuple[tuple[int, str], str]] = []

    async def consider(position: tuple[int, str], name: str,
                       endpoint: EndpointConfig | None) -> None:
        if query.after is not None and position <= query.after:
            return
        if query.status is not None:
            found = (await stored()).get(name) or EndpointStats(name)
            if endpoint_status(endpoint, found, registry.source(name))[0] != query.status:
                return
        picked.append((position, name))

    for index, endpoint in enumerate(registry):
        if len(picked) > query.limit:
            break
        source = registry.source(endpoint.name)
        if query.tenant is not None and endpoint.tenant != query.tenant:
            continue
        if query.source is not None and source != query.source:
            continue
        await consider((0, f"{index:08d}") if source == "config" else (1, endpoint.name),
                       endpoint.name, endpoint)
    # Then those only the store knows: no tenant, no source, always `disabled`.
    if len(picked) <= query.limit and query.tenant is None and query.source is None and (
            query.status in (None, "disabled")):
        states = await stored()
        for name in sorted(set(states) | await state.storage.delivery_endpoints()):
            if len(picked) > query.limit:
                break
            found = states.get(name)
            if registry.get(name) is None and not (found is not None and found.deleted):
                await consider((2, name), name, None)
    page, more = picked[:query.limit], len(picked) > query.limit
    stats = await state.storage.endpoint_stats(names=[name for _, name in page])
    return {"data": [endpoint_answer(state, name, stats.get(name)) for _, name in page],
            "has_more": more,
            "next_cursor": encode_position(page[-1][0]) if more else None}


async def endpoint_data(state: RelayState, name: str) -> dict[str, Any]:
    """One endpoint with its status and counts; 404 when neither config nor store knows it."""
    endpoint = state.registry.get(name)
    stats = (await state.storage.endpoint_stats(name)).get(name)
    if endpoint is None and (stats is None or stats.deleted):
        raise Problem(404, "unknown-endpoint", f"no endpoint named {name!r}", endpoint=name)
    return endpoint_answer(state, name, stats)


async def pause(state: RelayState, name: str) -> dict[str, Any]:
    """Stop sending to an endpoint; its waiting deliveries are held, never dropped."""
    configured(state, name)
    # Store first: a claim committed after this finds only held rows, and a failed
    # write leaves the lane running as the store says it should.
    held = await state.storage.pause_endpoint(name, state.clock())
    state.dispatcher.set_held(name, "paused")
    stats = (await state.storage.endpoint_stats(name)).get(name)
    return {**endpoint_answer(state, name, stats), "held": held}


async def resume(state: RelayState, name: str) -> dict[str, Any]:
    """Send again: held deliveries are due as before, in their old order; lifts a disable."""
    configured(state, name)
    released = await state.storage.resume_endpoint(name, state.clock())
    state.dispatcher.set_held(name, None)  # wakes the lane
    stats = (await state.storage.endpoint_stats(name)).get(name)
    return {**endpoint_answer(state, name, stats), "released": released}


async def recover(state: RelayState, name: str, since_value: Any) -> dict[str, Any]:
    """Requeue the endpoint's deliveries that failed since a time, after its receiver is fixed.

    `since_value` is what the caller sent: a duration ago (`2h`) or an ISO 8601 time.
    """
    configured(state, name)
    if not isinstance(since_value, str) or not since_value.strip():
        raise Problem(400, "invalid-parameter",
                      'since: required, e.g. {"since": "2h"} or {"since": '
                      '"2025-01-03T14:00:00Z"}', parameter="since")
    now = state.clock()
    since = parse_time(since_value, now, "since")
    requeued = await state.storage.recover_failed(name, since, now)
    state.dispatcher.notify([name])
    return {"endpoint": name, "since": iso(since), "requeued": requeued}


async def send_test(state: RelayState, name: str) -> tuple[dict[str, Any], bool]:
    """Send a `webhook.test` event the way any event goes out; the outcome, and if attempted.

    The event is stored and routed to this endpoint only, signed and sent by its
    lane like any other; this waits for that first attempt (at most the
    endpoint's timeout plus a margin). `outcome` is `pending` when the lane has
    not reached it by then (a fifo backlog).
    """
    endpoint = configured(state, name)
    await _not_held(state, name, "test it")
    now = state.clock()
    body = compact_json({  # as JSON.stringify writes it: receivers that re-serialise verify it
        "type": TEST_EVENT_TYPE,
        "data": {"endpoint": name, "sent_at": iso(now),
                 "message": "a test event sent by the relay's operator"},
    })
    event = NewEvent(id=new_event_id(now), type=TEST_EVENT_TYPE, body=body, endpoints=(name,),
                     received_at=now, keyed=False)
    seen: set[int] = set()
    arrived = asyncio.Event()

    def listener(result: AttemptResult) -> None:
        if result.endpoint == name and result.counts:
            seen.add(result.delivery_id)
            arrived.set()

    with state.dispatcher.on_attempt(listener):  # before the commit: it may finish at once
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


async def deliveries_page(state: RelayState, where: DeliveryFilter,
                          limit: int) -> dict[str, Any]:
    """One page of the delivery log, newest first, with the cursor of the next page."""
    rows = await state.storage.list_deliveries(where, limit + 1)
    page, more = rows[:limit], len(rows) > limit
    return {
        "data": [delivery_json(r) for r in page],
        "has_more": more,
        "next_cursor": encode_cursor(page[-1].id) if more else None,
    }


async def delivery_data(state: RelayState, delivery_id: int) -> dict[str, Any]:
    """One delivery with every attempt: when, how long, the answer, the error."""
    record = await state.storage.get_delivery(delivery_id)
    if record is None:
        raise Problem(404, "unknown-delivery",
                      f"no delivery {format_delivery_id(delivery_id)} (never created, or "
                      "purged by retention)")
    attempts = await state.storage.list_attempts(delivery_id)
    return {**delivery_json(record), "attempts": [attempt_json(a) for a in attempts]}


async def retry(state: RelayState, delivery_id: int) -> dict[str, Any]:
    """Make one delivery due now; 409 while it is in flight or its endpoint is held."""
    public = format_delivery_id(delivery_id)
    record = await state.storage.get_delivery(delivery_id)
    if record is None:
        raise Problem(404, "unknown-delivery", f"no delivery {public}")
    if state.registry.get(record.endpoint) is None:
        raise Problem(409, "endpoint-not-configured",
                      f"{public} is for endpoint {record.endpoint!r}, which no longer "
                      "exists; nothing would send it", endpoint=record.endpoint)
    configured(state, record.endpoint)
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


async def events_page(state: RelayState, where: EventFilter, limit: int) -> dict[str, Any]:
    """One page of the event log, newest first, with the cursor of the next page."""
    try:
        rows = await state.storage.list_events(where, limit + 1)
    except ValueError:  # a position of another backend, or forged inside a valid token
        raise bad_cursor() from None
    page, more = rows[:limit], len(rows) > limit
    return {
        "data": [event_summary_json(e) for e in page],
        "has_more": more,
        "next_cursor": encode_event_cursor(page[-1].position) if more else None,
    }


async def event_data(state: RelayState, event_id: str) -> dict[str, Any]:
    """One event as received, with its deliveries; 404 when unknown or purged."""
    event = await state.storage.get_event(event_id)
    if event is None:
        raise Problem(404, "unknown-event",
                      f"no event {event_id!r} (never received, or purged by retention)")
    return event_json(event, await state.storage.event_deliveries(event_id))
