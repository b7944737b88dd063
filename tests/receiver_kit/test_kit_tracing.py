"""The receiver kit continues the relay's traceparent around the handler, in every framework.

The application's tracer provider is OpenTelemetry's global one, as a real
receiver would set it up; it can be set once per process, so this module sets
it once and reads the spans each test adds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient as FastAPIClient
from kit_http_contract import SECRET, delivery
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from receiver_kit import Verifier
from receiver_kit.contrib.fastapi import WebhookDependency
from receiver_kit.events import WebhookEvent
from receiver_kit.tracing import SPAN_NAME

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE}-{PARENT}-01"

_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    current = trace.get_tracer_provider()
    if not isinstance(current, TracerProvider):  # the first module to ask sets it
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    return _EXPORTER


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> Iterator[Callable[[], list[ReadableSpan]]]:
    exporter.clear()
    yield lambda: [s for s in exporter.get_finished_spans() if s.name == SPAN_NAME]
    exporter.clear()


def _signed(event_type: str = "license.created") -> tuple[bytes, dict[str, str]]:
    body, headers = delivery(event_type)
    return body, {**headers, "traceparent": TRACEPARENT}


def _check(span: ReadableSpan, event_id: str) -> None:
    assert span.context is not None and f"{span.context.trace_id:032x}" == TRACE
    assert span.parent is not None and f"{span.parent.span_id:016x}" == PARENT
    assert dict(span.attributes or {}) == {"webhook.event.id": event_id,
                                           "webhook.event.type": "license.created",
                                           "webhook.scheme": "standard"}


def test_starlette_middleware_runs_the_app_in_a_child_span(
    spans: Callable[[], list[ReadableSpan]],
) -> None:
    """The handler sees the span as current: its own spans and calls join the trace."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from receiver_kit.contrib.starlette import WebhookMiddleware, get_event

    seen: list[str] = []

    def receive(request: Request) -> JSONResponse:
        seen.append(f"{trace.get_current_span().get_span_context().trace_id:032x}")
        return JSONResponse({"id": get_event(request).id})

    app = Starlette(routes=[Route("/webhooks", receive, methods=["POST"])])
    app.add_middleware(WebhookMiddleware, verifier=Verifier(SECRET), paths=["/webhooks"])
    body, headers = _signed()
    with TestClient(app) as client:
        answer = client.post("/webhooks", content=body, headers=headers)
    assert answer.status_code == 200
    [span] = spans()
    _check(span, answer.json()["id"])
    assert seen == [TRACE]


_webhook = WebhookDependency(verifier=Verifier(SECRET))


async def _fastapi_receive(event: Annotated[WebhookEvent, _webhook.depends()]) -> dict[str, str]:
    return {"id": event.id}


def test_fastapi_dependency_traces_the_endpoint(
    spans: Callable[[], list[ReadableSpan]],
) -> None:
    """The dependency's span covers the endpoint that depends on it."""
    app = FastAPI()
    _webhook.install(app)
    app.post("/webhooks")(_fastapi_receive)
    body, headers = _signed()
    with FastAPIClient(app) as client:
        answer = client.post("/webhooks", content=body, headers=headers)
    assert answer.status_code == 200
    [span] = spans()
    _check(span, answer.json()["id"])


def test_flask_view_runs_in_a_child_span_and_a_failure_is_recorded(
    spans: Callable[[], list[ReadableSpan]],
) -> None:
    """A view that raises: the kit answers 500 and the span says the handler failed."""
    from flask import Flask

    from receiver_kit.contrib.flask import webhook_view

    app = Flask(__name__)

    @app.post("/webhooks")
    @webhook_view(verifier=Verifier(SECRET))
    def receive(event: Any) -> Any:
        if event.type == "test.fail":
            raise RuntimeError("handler broke")
        return {"id": event.id}

    body, headers = _signed()
    answer = app.test_client().post("/webhooks", data=body, headers=headers)
    assert answer.status_code == 200
    [span] = spans()
    _check(span, answer.get_json()["id"])
    body, headers = _signed("test.fail")
    assert app.test_client().post("/webhooks", data=body, headers=headers).status_code == 500
    failed = spans()[1]
    assert not failed.status.is_ok
    assert [e.name for e in failed.events] == ["exception"]


def test_without_a_traceparent_the_handler_starts_a_trace(
    spans: Callable[[], list[ReadableSpan]],
) -> None:
    """No header (a sender that does not trace): a root span, the request still answered."""
    from flask import Flask

    from receiver_kit.contrib.flask import webhook_view

    app = Flask(__name__)

    @app.post("/webhooks")
    @webhook_view(verifier=Verifier(SECRET))
    def receive(event: Any) -> Any:
        return {"id": event.id}

    body, headers = delivery()
    assert app.test_client().post("/webhooks", data=body, headers=headers).status_code == 200
    [span] = spans()
    assert span.parent is None


@pytest.mark.parametrize("path", ["/webhooks", "/async/webhooks"])
def test_django_views_run_in_a_child_span(
    django_db: Any, spans: Callable[[], list[ReadableSpan]], path: str
) -> None:
    """Sync and async decorated views both continue the trace."""
    import kit_django_urls
    from django.db import connections
    from django.test import AsyncClient, Client

    kit_django_urls.recorder.reset()
    body, headers = _signed()
    headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    try:
        if path == "/webhooks":
            answer = Client().post(path, data=body, content_type="application/json",
                                   headers=headers)
        else:
            import asyncio

            answer = asyncio.run(AsyncClient().post(path, data=body,
                                                    content_type="application/json",
                                                    headers=headers))
    finally:
        connections.close_all()
    assert answer.status_code == 200, answer.content
    [span] = spans()
    _check(span, answer.json()["handled"])
