"""POST /v1/events and /v1/events/batch: from the platform's raw event to a stored one.

The body is relayed byte-exact, so it is parsed once, only to find the event
type (and the id field when one is configured); nothing is re-serialised.
A 202 is sent only after `Storage.ingest` returned, that is after the commit.

Ingest is the relay's hot path, so its two routes are plain ASGI callables
that the app calls before Starlette's middleware and routing (`RelayApp`):
no Request object, no per-request wrappers, the answer written as two ASGI
messages. Errors still go through `Problem`, as everywhere else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import structlog
from starlette.types import Receive, Scope, Send

from relay.config import TENANT_RE, TYPE_RE
from relay.exceptions import StorageError, StorageUnavailable
from relay.http.auth import HOST_NOT_ALLOWED, check_token, from_other_site, is_json_media_type
from relay.http.json_body import field_at, json_kind, loads, split_array
from relay.http.problems import Problem, crash_response
from relay.http.state import RelayState
from relay.models import IngestOutcome, NewEvent, new_event_id

if TYPE_CHECKING:  # only imported when tracing is on (relay.http.app.load_telemetry)
    from relay.telemetry import IngestSpan

__all__ = [
    "ClientGone", "IngestEndpoint", "IngestHeaders", "answer_crash", "answer_problem",
    "check_json_request", "check_local_caller", "make_event", "outcome_json", "parse_event",
    "read_body", "refuse_other_sites", "store_events",
]

log = structlog.get_logger("relay.http")

KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")
MAX_BATCH = 500
RETRY_AFTER_S = "5"


def check_caller(headers: IngestHeaders, state: RelayState) -> None:
    """The token when one is configured; without one, the browser rules of `relay.http.auth`.

    A platform's sender is a program: it sends a token, or it posts to a
    loopback listener by a loopback name and never says it comes from a site.
    """
    token = state.config.ingest.token
    if token:
        check_token(headers.authorization, token, "ingest.token")
        return
    check_local_caller(headers, state)


def check_local_caller(headers: IngestHeaders, state: RelayState) -> None:
    """A caller that proves nothing must use a name of this relay and not come from a page."""
    if not state.host_rule.allows(headers.host):
        raise Problem(403, "host-not-allowed", HOST_NOT_ALLOWED)
    refuse_other_sites(headers)


def refuse_other_sites(headers: IngestHeaders) -> None:
    """A request a browser says another site's page made is refused (`relay.http.auth`)."""
    if headers.fetch_site is not None or headers.origin is not None:
        signals = {"host": headers.host}
        if headers.fetch_site is not None:
            signals["sec-fetch-site"] = headers.fetch_site
        if headers.origin is not None:
            signals["origin"] = headers.origin
        if from_other_site(signals):
            raise Problem(403, "cross-site-request",
                          "this request was sent by a page of another site; the relay takes "
                          "events from programs, not from web pages")


def check_json_request(headers: IngestHeaders, limit: int) -> None:
    """Refuse a non-JSON media type, or a declared size over `limit`, before reading."""
    if headers.content_type != "application/json" and not is_json_media_type(
            headers.content_type):
        shown = headers.content_type.split(";", 1)[0].strip().lower() or "none"
        raise Problem(415, "unsupported-media-type",
                      f"send the event as JSON with `Content-Type: application/json` "
                      f"(got {shown})")
    declared = headers.content_length
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem(413, "body-too-large",
                      f"the body is {declared} bytes; this relay accepts at most {limit} "
                      "(ingest.max_body_bytes)")


class IngestHeaders:
    """The few request headers ingest reads, taken from the raw ASGI list in one pass.

    A dict of every header cost as much as the rest of the header handling;
    ingest needs five names. As with a dict, the last of repeated headers wins.
    """

    __slots__ = ("authorization", "content_length", "content_type", "event_type",
                 "fetch_site", "host", "idempotency_key", "origin", "tenant")
    authorization: str
    content_length: str | None
    content_type: str
    event_type: str | None
    fetch_site: str | None
    host: str
    idempotency_key: str | None
    origin: str | None
    tenant: str | None

    def __init__(self, raw: Iterable[tuple[bytes, bytes]]) -> None:
        self.content_type = self.authorization = self.host = ""
        self.content_length = self.event_type = self.idempotency_key = None
        self.fetch_site = self.origin = self.tenant = None
        for name, value in raw:
            # uvicorn hands names lowercased; the values are latin-1 (RFC 9110).
            if name == b"content-type":
                self.content_type = value.decode("latin-1")
            elif name == b"content-length":
                self.content_length = value.decode("latin-1")
            elif name == b"authorization":
                self.authorization = value.decode("latin-1")
            elif name == b"x-event-type":
                self.event_type = value.decode("latin-1")
            elif name == b"idempotency-key":
                self.idempotency_key = value.decode("latin-1")
            elif name == b"host":
                self.host = value.decode("latin-1")
            elif name == b"sec-fetch-site":
                self.fetch_site = value.decode("latin-1")
            elif name == b"origin":
                self.origin = value.decode("latin-1")
            elif name == b"x-tenant":
                self.tenant = value.decode("latin-1")


class ClientGone(Exception):
    """The client disconnected before sending its whole body: nothing to answer."""


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole body, refused with a 413 as soon as it grows past `limit`."""
    message = await receive()
    chunks: list[bytes] = []
    size = 0
    while True:
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise Problem(413, "body-too-large",
                          f"the body is over {limit} bytes (ingest.max_body_bytes)")
        if not message.get("more_body", False):
            if not chunks:
                return chunk  # the usual case: the whole body in one message
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)
        message = await receive()


def parse_event(
    body: bytes,
    value: Any,
    headers: IngestHeaders,
    state: RelayState,
    received_at: float,
    where: str = "",
) -> NewEvent:
    """Build a `NewEvent` from one parsed raw event; raise `Problem` for what is wrong."""
    config = state.config
    prefix = f"{where}: " if where else ""
    if not isinstance(value, dict):
        raise Problem(400, "not-an-object",
                      f"{prefix}the event must be a JSON object, got {json_kind(value)}")
    event_type = headers.event_type
    if event_type is None:
        for name in config.ingest.type_fields:
            field = value.get(name)
            if isinstance(field, str):
                event_type = field
                break
        else:
            tried = ", ".join(config.ingest.type_fields)
            raise Problem(400, "missing-event-type",
                          f"{prefix}no event type: send an `X-Event-Type` header or a string "
                          f"field among {tried}")
    key = headers.idempotency_key
    key_source = "Idempotency-Key header"
    if key is None and config.ingest.id_field is not None:
        raw_id = value.get(config.ingest.id_field)
        if raw_id is not None:
            key = _as_key(raw_id, f"{prefix}field {config.ingest.id_field!r} (ingest.id_field)")
            key_source = f"field {config.ingest.id_field!r}"
    tenant = headers.tenant
    tenant_source = "X-Tenant header"
    if tenant is None and config.ingest.tenant_field is not None:
        raw_tenant = field_at(value, config.ingest.tenant_field)
        if raw_tenant is not None:
            tenant = _as_tenant(raw_tenant, f"{prefix}field {config.ingest.tenant_field!r} "
                                            "(ingest.tenant_field)")
            tenant_source = f"field {config.ingest.tenant_field!r}"
    return make_event(state, body, value, received_at, prefix, event_type,
                      key, key_source, tenant, tenant_source)


def _as_key(raw: Any, where: str) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise Problem(400, "invalid-idempotency-key",
                      f"{where} must be a string or an integer, got {json_kind(raw)}")
    return str(raw)


def _as_tenant(raw: Any, where: str) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise Problem(400, "invalid-tenant",
                      f"{where} must be a string or an integer, got {json_kind(raw)}")
    return str(raw)


def make_event(
    state: RelayState, body: bytes, value: Any, received_at: float, prefix: str,
    event_type: str, key: str | None, key_source: str,
    tenant: str | None, tenant_source: str, source: str | None = None,
) -> NewEvent:
    """The checks every event passes, however its type, id and tenant were found; routed.

    `value` is the parsed body, for the endpoints' content filters; `key_source`
    and `tenant_source` say where the values were read, for the message that
    refuses them; `prefix` places the event in a batch.
    """
    config = state.config
    if not TYPE_RE.fullmatch(event_type):
        raise Problem(400, "invalid-event-type",
                      f"{prefix}event type {event_type[:140]!r} is not valid: use 1 to 128 "
                      "letters, digits, '.', '_' or '-'")
    if config.events_strict and config.events is not None and event_type not in config.events:
        raise Problem(422, "unknown-event-type",
                      f"{prefix}event type {event_type!r} is not in this relay's `events` "
                      "catalog (events_strict is on)")
    if key is not None and not KEY_RE.fullmatch(key):
        raise Problem(400, "invalid-idempotency-key",
                      f"{prefix}the {key_source} must be 1 to 255 printable ASCII characters "
                      "without spaces")
    if tenant is not None and not TENANT_RE.fullmatch(tenant):
        raise Problem(400, "invalid-tenant",
                      f"{prefix}the {tenant_source} must be 1 to 128 printable ASCII "
                      "characters without spaces")
    return NewEvent(
        id=key if key is not None else new_event_id(received_at),
        type=event_type,
        body=body,
        endpoints=(state.router.route(event_type, tenant, value) if source is None
                   else state.router.route_source(source, event_type, tenant, value)),
        received_at=received_at,
        keyed=key is not None,
        tenant=tenant,
        source=source,
    )


async def store_events(state: RelayState, events: list[NewEvent],
                       span: IngestSpan | None = None) -> list[IngestOutcome]:
    """Commit events (all or nothing), then wake their endpoints' lanes.

    With tracing on, `span` is the request's: the events are stored with its
    context, for their attempts' spans to continue.
    """
    if span is not None:
        span.stamp(events)
    try:
        outcomes = await state.storage.ingest(events)
    except StorageUnavailable as exc:
        raise Problem(503, "storage-unavailable",
                      f"the event was not stored: {exc}; retry later",
                      headers={"Retry-After": RETRY_AFTER_S}) from None
    except StorageError as exc:
        raise Problem(503, "storage-error", f"the event was not stored: {exc}",
                      headers={"Retry-After": RETRY_AFTER_S}) from None
    state.dispatcher.notify(events[0].endpoints if len(events) == 1
                            else {name for e in events for name in e.endpoints})
    state.metrics.observe_ingest(events, outcomes, state.config.events)
    if span is not None:
        span.stored(outcomes)
    return outcomes


def outcome_json(outcome: IngestOutcome) -> str:
    # The type matched TYPE_RE and the id KEY_RE (printable ASCII): only a quote
    # or a backslash in the id needs escaping.
    quoted = (f'"{outcome.id}"' if '"' not in outcome.id and "\\" not in outcome.id
              else json.dumps(outcome.id))
    return (f'{{"id": {quoted}, "type": "{outcome.type}", '
            f'"deliveries": {outcome.deliveries}, '
            f'"duplicate": {"true" if outcome.duplicate else "false"}}}')


_JSON_HEADER = (b"content-type", b"application/json")


async def answer_problem(problem: Problem, span: IngestSpan | None, scope: Scope,
                         receive: Receive, send: Send) -> int:
    """Answer an ingest door's refusal (noted on its span when traced); the status."""
    if span is not None:
        span.refused(problem.status, problem.slug)
    await problem.response(scope["path"])(scope, receive, send)
    return problem.status


async def answer_crash(exc: Exception, span: IngestSpan | None, scope: Scope,
                       receive: Receive, send: Send) -> int:
    """Answer an ingest door's crash with a 500 (`crash_response`); the status."""
    if span is not None:
        span.refused(500, "internal-error")
    await crash_response(scope["path"], exc)(scope, receive, send)
    return 500


class IngestEndpoint:
    """The ASGI callable behind POST /v1/events (`batch=False`) and /v1/events/batch."""

    def __init__(self, state: RelayState, batch: bool) -> None:
        self.state = state
        self.batch = batch

    async def __call__(self, scope: Scope, receive: Receive, send: Send,
                       span: IngestSpan | None = None) -> int | None:
        """Answer the request; its status (None: the client went away).

        `span` is the request's when tracing is on (`RelayApp` starts and ends it).
        """
        state = self.state
        try:
            if scope["method"] != "POST":
                raise Problem(405, "method-not-allowed",
                              f"{scope['method']} is not allowed on {scope['path']}; use POST",
                              headers={"Allow": "POST"})
            headers = IngestHeaders(scope["headers"])
            ingest = state.config.ingest
            check_caller(headers, state)
            check_json_request(headers, ingest.max_body_bytes)
            body = await read_body(receive, ingest.max_body_bytes)
            if self.batch:
                status, answer = await self._batch(state, body, headers, span)
            else:
                # One event, inline: a coroutine fewer to suspend and resume.
                event = parse_event(body, loads(body, ingest.id_field), headers, state,
                                    state.clock())
                outcome = (await store_events(state, [event], span))[0]
                if outcome.conflict:
                    raise Problem(409, "idempotency-conflict",
                                  f"an event with id {outcome.id!r} was already received "
                                  "with a different body; use a new Idempotency-Key for a "
                                  "new event", id=outcome.id)
                status = 200 if outcome.duplicate else 202
                answer = outcome_json(outcome)
        except ClientGone:
            return None
        except Problem as problem:
            return await answer_problem(problem, span, scope, receive, send)
        except Exception as exc:
            return await answer_crash(exc, span, scope, receive, send)
        data = answer.encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [_JSON_HEADER, (b"content-length", b"%d" % len(data))]})
        await send({"type": "http.response.body", "body": data})
        return status

    async def _batch(self, state: RelayState, body: bytes, headers: IngestHeaders,
                     span: IngestSpan | None) -> tuple[int, str]:
        items = split_array(body)
        if not isinstance(items, list):
            raise Problem(400, "not-an-array",
                          f"a batch must be a JSON array of events, got {json_kind(items)}")
        if not 1 <= len(items) <= MAX_BATCH:
            raise Problem(400, "invalid-batch-size",
                          f"a batch holds 1 to {MAX_BATCH} events, got {len(items)}")
        if headers.idempotency_key is not None:
            raise Problem(400, "invalid-idempotency-key",
                          "Idempotency-Key does not apply to a batch; set ingest.id_field and "
                          "give each event its own id field")
        now = state.clock()
        events: list[NewEvent] = []
        errors: list[dict[str, Any]] = []
        for index, (raw, item) in enumerate(items):
            try:
                events.append(parse_event(raw, item, headers, state, now, f"item {index}"))
            except Problem as problem:
                errors.append({"index": index, "status": problem.status,
                               "detail": problem.detail})
        if errors:
            status = 422 if all(e["status"] == 422 for e in errors) else 400
            raise Problem(status, "invalid-batch",
                          f"{len(errors)} of {len(items)} events are invalid; nothing was "
                          f"stored (first: {errors[0]['detail']})", errors=errors)
        outcomes = await store_events(state, events, span)
        conflicts = [i for i, o in enumerate(outcomes) if o.conflict]
        if conflicts:
            raise Problem(409, "idempotency-conflict",
                          f"{len(conflicts)} events reuse an id with a different body (first: "
                          f"item {conflicts[0]}, id {outcomes[conflicts[0]].id!r}); nothing "
                          "was stored",
                          errors=[{"index": i, "id": outcomes[i].id} for i in conflicts])
        all_duplicates = all(o.duplicate for o in outcomes)
        answer = '{"results": [' + ", ".join(outcome_json(o) for o in outcomes) + "]}"
        return (200 if all_duplicates else 202), answer
