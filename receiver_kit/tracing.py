"""OpenTelemetry for receivers: the relay's `traceparent` continued around the handler.

When `opentelemetry-api` is installed, each framework integration runs the
handler inside a `webhook.receive` span whose parent is the relay's delivery
attempt (the W3C `traceparent` the relay sends), through the application's
own propagators and tracer provider: the platform's request, the relay's
attempts and the receiver's work are one trace. Without the package this is
a no-op context manager, so OpenTelemetry stays an optional dependency.

The span carries the event's id and type; never its body or a header value.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

from receiver_kit.events import WebhookEvent

try:
    from opentelemetry import propagate, trace

    _TRACING = True
except ImportError:  # pragma: no cover - the kit runs without OpenTelemetry
    _TRACING = False

__all__ = ["SPAN_NAME", "handler_span"]

SPAN_NAME = "webhook.receive"


def handler_span(headers: Any, event: WebhookEvent) -> AbstractContextManager[Any]:
    """A span around the handler of `event`, continuing the request's trace context.

    `headers` is the framework's case-insensitive headers object (anything
    with `.get(name)`). An exception from the handler is recorded on the span
    and goes on; the span ends with the handler.
    """
    if not _TRACING:
        return nullcontext()
    parent = propagate.extract(headers)
    attributes: dict[str, str] = {"webhook.event.id": event.id, "webhook.scheme": event.scheme}
    if event.type is not None:
        attributes["webhook.event.type"] = event.type
    tracer = trace.get_tracer("receiver_kit")
    return tracer.start_as_current_span(SPAN_NAME, context=parent, kind=trace.SpanKind.SERVER,
                                        attributes=attributes)
