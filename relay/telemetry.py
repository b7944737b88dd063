"""OpenTelemetry tracing: an ingest span per request, a span per delivery attempt.

Every use of OpenTelemetry in the relay is in this module, and nothing imports
it unless tracing is on (`relay.http.app.load_telemetry`): with tracing off the
hot paths pay one `is None` check and the `[otel]` extra need not be installed.

One trace runs from the platform's POST to every attempt, however late and on
whichever replica it happens: ingest stores its span's W3C context with the
event (`NewEvent.trace_context`, the `events.trace_context` column), and each
attempt's span is a child of it, continued from the stored text. A child, not
only a link to a producer span in a trace of its own (OTel's messaging
guidance), because a child is what tracing backends draw as one trace: the
platform's request, the relay's ingest, then its attempts and the receiver's
spans under them. The stored text is `traceparent`, then a space and the
`tracestate` if one came in (a traceparent holds no space).

Attributes hold ids, names, counts and outcomes, never a body, a secret, a
header value or an endpoint's URL (which may carry a token).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, MutableMapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, TraceState

from relay import __version__
from relay.models import AttemptResult, ClaimedDelivery, IngestOutcome, NewEvent

__all__ = [
    "TRACEPARENT_RE",
    "AttemptSpan",
    "IngestSpan",
    "Telemetry",
    "add_trace_id",
    "parse_trace_context",
]

# W3C Trace Context, version 00: version, trace id, parent id, flags; all-zero ids
# are invalid, and so is version ff. Lowercase hex only, as the spec says.
TRACEPARENT_RE = re.compile(
    r"(?!ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")
# A tracestate list: up to 32 `key=value` members separated by commas and optional
# spaces; keys and values as the W3C grammar has them, at most 512 characters in all.
_TS_KEY = r"[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13}|[a-z][_0-9a-z\-*/]{0,255}"
_TS_VALUE = r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
_TS_MEMBER = rf"(?:{_TS_KEY})=(?:{_TS_VALUE})"
TRACESTATE_RE = re.compile(rf"{_TS_MEMBER}(?:[ \t]*,[ \t]*{_TS_MEMBER}){{0,31}}")
MAX_TRACESTATE = 512


def parse_trace_context(text: str | None) -> SpanContext | None:
    """The remote span context in a stored or received `traceparent[ tracestate]`, or None.

    Anything malformed is None: a bad header from a platform starts a new trace
    instead of failing its request.
    """
    if not text:
        return None
    parent, _, state = text.partition(" ")
    if not TRACEPARENT_RE.fullmatch(parent):
        return None
    trace_state = None
    if state and len(state) <= MAX_TRACESTATE and TRACESTATE_RE.fullmatch(state):
        trace_state = TraceState.from_header([state])
    return SpanContext(trace_id=int(parent[3:35], 16), span_id=int(parent[36:52], 16),
                       is_remote=True, trace_flags=TraceFlags(int(parent[53:55], 16)),
                       trace_state=trace_state)


def format_trace_context(span_context: SpanContext, with_state: bool = True) -> str:
    """`traceparent`, and ` tracestate` when there is one (and `with_state`)."""
    text = (f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-"
            f"{int(span_context.trace_flags):02x}")
    state = span_context.trace_state.to_header() if span_context.trace_state else ""
    return f"{text} {state}" if state and with_state else text


def _incoming(raw_headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The request's `traceparent` (and `tracestate`) as stored text; None if absent or bad.

    Read here and not by `IngestHeaders`, so that ingest with tracing off reads
    no header more than before.
    """
    parent = state = None
    for name, value in raw_headers:
        if name == b"traceparent":
            parent = value.decode("latin-1").strip()
        elif name == b"tracestate":
            state = value.decode("latin-1").strip()
    if parent is None or not TRACEPARENT_RE.fullmatch(parent):
        return None
    return f"{parent} {state}" if state else parent


class IngestSpan:
    """The span of one ingest request (`relay.ingest`), current while the request runs.

    Its attributes are gathered in a dict and given to the span once, at the
    end: the SDK takes a lock and checks the value for each call, which per
    attribute was a visible share of a traced request's cost.
    """

    __slots__ = ("_token", "attributes", "span")

    def __init__(self, span: trace.Span, attributes: dict[str, Any]) -> None:
        self.span = span
        self.attributes = attributes
        # Current, so that what is logged meanwhile carries its trace id (`add_trace_id`).
        self._token = otel_context.attach(trace.set_span_in_context(span))

    def stamp(self, events: Sequence[NewEvent]) -> None:
        """Give the events this span's context, to be stored with them; note what they are."""
        context = format_trace_context(self.span.get_span_context())
        for event in events:
            event.trace_context = context
        attributes = self.attributes
        first = events[0]
        if len(events) == 1:
            attributes["relay.event.id"] = first.id
            attributes["relay.event.size"] = len(first.body)
            attributes["relay.event.type"] = first.type
            if first.tenant is not None:
                attributes["relay.tenant"] = first.tenant
            attributes["relay.deliveries"] = len(first.endpoints)
        else:
            attributes["relay.event.ids"] = [e.id for e in events]
            attributes["relay.event.count"] = len(events)
            attributes["relay.event.size"] = sum(len(e.body) for e in events)
            types = sorted({e.type for e in events})
            attributes["relay.event.type"] = types[0] if len(types) == 1 else types
            tenants = sorted({e.tenant for e in events if e.tenant is not None})
            if tenants:
                attributes["relay.tenant"] = tenants[0] if len(tenants) == 1 else tenants
            attributes["relay.deliveries"] = sum(len(e.endpoints) for e in events)
        attributes["relay.source"] = first.source or "default"

    def stored(self, outcomes: Sequence[IngestOutcome]) -> None:
        """What the store made of the events: accepted, duplicate or conflict."""
        if len(outcomes) == 1:
            only = outcomes[0]
            outcome = ("conflict" if only.conflict else "duplicate" if only.duplicate
                       else "accepted")
        elif any(o.conflict for o in outcomes):
            outcome = "conflict"
        elif all(o.duplicate for o in outcomes):
            outcome = "duplicate"
        else:
            outcome = "accepted"
        self.attributes["relay.outcome"] = outcome

    def refused(self, status: int, slug: str) -> None:
        """The request was answered with a problem: its status and type, not its detail."""
        self.attributes["relay.outcome"] = "refused"
        self.attributes["relay.problem"] = slug
        if status >= 500:
            self.span.set_status(trace.StatusCode.ERROR, slug)

    def end(self, status: int | None) -> None:
        """End the span with the answer's status (None: the client went away)."""
        if status is not None:
            self.attributes["http.response.status_code"] = status
        else:
            self.attributes["relay.outcome"] = "client_gone"
        otel_context.detach(self._token)
        self.span.set_attributes(self.attributes)
        self.span.end()


class AttemptSpan:
    """The span of one delivery attempt (`relay.attempt`), a child of its event's ingest span."""

    __slots__ = ("span",)

    def __init__(self, span: trace.Span) -> None:
        self.span = span

    def headers(self, stored: str | None) -> dict[str, str]:
        """W3C headers for the receiver: this attempt as its parent, the event's tracestate."""
        context = self.span.get_span_context()
        parent = format_trace_context(context, with_state=False)
        state = stored.partition(" ")[2] if stored else ""
        return {"traceparent": parent, "tracestate": state} if state else {"traceparent": parent}

    def end(self, result: AttemptResult) -> None:
        """Record the attempt's answer and what the delivery becomes, then end the span."""
        span = self.span
        attributes: dict[str, Any] = {
            "relay.attempt.duration_ms": round(result.duration_ms, 3),
            "relay.delivery.status": result.new_status.value,
            "relay.retry": result.next_attempt_at is not None}
        if result.status_code is not None:
            attributes["http.response.status_code"] = result.status_code
        if result.next_attempt_at is not None:
            attributes["relay.retry.at"] = result.next_attempt_at
        if not result.counts:
            attributes["relay.attempt.interrupted"] = True
        if result.error is not None:
            attributes["relay.error"] = result.error
        span.set_attributes(attributes)
        if result.error is not None or result.new_status.value != "delivered":
            span.set_status(trace.StatusCode.ERROR, result.error or f"HTTP {result.status_code}")
        span.end()


class Telemetry:
    """The relay's tracer: its provider, where spans go, and the two kinds of span.

    `processor` is where finished spans go; by default a batching OTLP/HTTP
    exporter to `endpoint` (else to what OTEL_EXPORTER_OTLP_* says). Tests
    pass the SDK's in-memory exporter in a simple processor.
    """

    def __init__(self, *, endpoint: str | None = None, service_name: str = "relay",
                 processor: SpanProcessor | None = None) -> None:
        self.provider = TracerProvider(resource=Resource.create({
            "service.name": service_name, "service.version": __version__}))
        if processor is None:
            processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint))
        self.provider.add_span_processor(processor)
        self.tracer = self.provider.get_tracer("relay", __version__)

    def ingest(self, path: str, raw_headers: Iterable[tuple[bytes, bytes]]) -> IngestSpan:
        """Start the span of an ingest request, continuing the caller's `traceparent`."""
        remote = parse_trace_context(_incoming(raw_headers))
        parent = None if remote is None else trace.set_span_in_context(NonRecordingSpan(remote))
        span = self.tracer.start_span("relay.ingest", context=parent, kind=SpanKind.SERVER)
        return IngestSpan(span, {"http.request.method": "POST", "url.path": path})

    def attempt(self, claimed: ClaimedDelivery) -> AttemptSpan:
        """Start an attempt's span as a child of the ingest span stored with its event.

        An event stored while tracing was off has no context: its attempts start
        traces of their own.
        """
        remote = parse_trace_context(claimed.trace_context)
        parent = None if remote is None else trace.set_span_in_context(NonRecordingSpan(remote))
        attributes: dict[str, Any] = {
            "relay.endpoint": claimed.endpoint, "relay.attempt": claimed.attempt,
            "relay.delivery.id": claimed.id, "relay.event.id": claimed.event_id,
            "relay.event.type": claimed.event_type, "http.request.method": "POST"}
        span = self.tracer.start_span("relay.attempt", context=parent, kind=SpanKind.CLIENT,
                                      attributes=attributes)
        return AttemptSpan(span)

    def shutdown(self) -> None:
        """Export what is still buffered, then stop (blocking: call it off the event loop)."""
        self.provider.shutdown()


def add_trace_id(logger: Any, method: str,
                 event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the current span's `trace_id` and `span_id` on every line."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid and "trace_id" not in event:
        event["trace_id"] = f"{context.trace_id:032x}"
        event["span_id"] = f"{context.span_id:016x}"
    return event
