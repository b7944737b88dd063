"""Tracing in process: the ingest and attempt spans, their attributes and parents, the headers.

The relay runs in a thread with the SDK's in-memory exporter behind a simple
(synchronous) span processor, so each span is there as soon as it ends.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from standardwebhooks import Webhook

from relay.cli import main
from relay.config import load_config
from relay.config.models import TelemetryConfig
from relay.delivery.lane import bind_delivery
from relay.exceptions import ConfigError
from relay.http.app import load_telemetry
from relay.models import ClaimedDelivery
from relay.telemetry import Telemetry, add_trace_id, parse_trace_context
from tests.conftest import SECRET, endpoint_yaml
from tests.support import ROOT, Receiver, RelayThread, base_config, free_port, wait_until

pytestmark = pytest.mark.both_backends

BODY = b'{"type": "license.created", "data": {"licenseKey": "KEY-SECRET-PAYLOAD-7781"}}'
INCOMING_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING_SPAN = "00f067aa0ba902b7"
INCOMING = f"00-{INCOMING_TRACE}-{INCOMING_SPAN}-01"
INGEST_TOKEN = "ingest-token-do-not-trace-4411"


class Traced:
    """A relay in a thread whose spans land in memory."""

    def __init__(self, relay: RelayThread, exporter: InMemorySpanExporter) -> None:
        self.relay = relay
        self.exporter = exporter

    def spans(self, name: str, count: int = 1) -> list[ReadableSpan]:
        def found() -> list[ReadableSpan]:
            spans = [s for s in self.exporter.get_finished_spans() if s.name == name]
            return spans if len(spans) >= count else []

        spans: list[ReadableSpan] = wait_until(found, message=f"{count} {name} spans")
        return spans


@pytest.fixture
def make_traced(tmp_path: Path) -> Iterator[Callable[..., Traced]]:
    started: list[RelayThread] = []

    def make(endpoints: str, extra: str = "") -> Traced:
        exporter = InMemorySpanExporter()
        port = free_port()
        db = tmp_path / f"relay-{len(started)}.db"
        config = tmp_path / f"relay-{len(started)}.yaml"
        config.write_text(base_config(port, db, endpoints, extra))
        relay = RelayThread(config, port, db,
                            telemetry=Telemetry(processor=SimpleSpanProcessor(exporter)))
        started.append(relay.start())
        return Traced(relay, exporter)

    yield make
    for relay in started:
        relay.stop()


def _hex(value: int, width: int) -> str:
    return f"{value:0{width}x}"


def _all_attribute_text(spans: list[ReadableSpan]) -> str:
    return json.dumps([{k: v if isinstance(v, str | int | float | bool) else list(v)
                        for k, v in (s.attributes or {}).items()} for s in spans])


def test_one_trace_from_the_platform_to_the_receiver(
    make_traced: Callable[..., Traced], receiver: Receiver
) -> None:
    """The caller's traceparent is continued: ingest is its child, the attempt ingest's."""
    traced = make_traced(endpoint_yaml("crm", receiver.url + "/hooks"))
    answer = traced.relay.post(BODY, {"traceparent": INCOMING, "tracestate": "vendor=abc"})
    assert answer.status_code == 202
    event_id = answer.json()["id"]
    [ingest] = traced.spans("relay.ingest")
    [attempt] = traced.spans("relay.attempt")
    assert ingest.context is not None and attempt.context is not None
    assert _hex(ingest.context.trace_id, 32) == INCOMING_TRACE
    assert ingest.parent is not None and _hex(ingest.parent.span_id, 16) == INCOMING_SPAN
    assert attempt.context.trace_id == ingest.context.trace_id
    assert attempt.parent is not None and attempt.parent.span_id == ingest.context.span_id
    assert dict(ingest.attributes or {}) == {
        "http.request.method": "POST", "url.path": "/v1/events",
        "relay.event.id": event_id, "relay.event.size": len(BODY),
        "relay.event.type": "license.created", "relay.source": "default",
        "relay.deliveries": 1, "relay.outcome": "accepted", "http.response.status_code": 202}
    attributes = dict(attempt.attributes or {})
    assert attributes["relay.endpoint"] == "crm" and attributes["relay.attempt"] == 1
    assert attributes["relay.event.id"] == event_id
    assert attributes["http.response.status_code"] == 200
    assert attributes["relay.delivery.status"] == "delivered"
    assert attributes["relay.retry"] is False
    assert attributes["relay.attempt.duration_ms"] >= 0
    # The receiver gets the attempt as its parent, and the caller's tracestate.
    [request] = receiver.wait_for(1)
    assert request.header("traceparent") == (
        f"00-{INCOMING_TRACE}-{_hex(attempt.context.span_id, 16)}-01")
    assert request.header("tracestate") == "vendor=abc"
    # Headers only: the signature still verifies over the same bytes.
    assert request.body == BODY
    Webhook(SECRET).verify(request.body, request.headers)
    [(stored,)] = traced.relay.rows("SELECT trace_context FROM events")
    assert stored == (f"00-{INCOMING_TRACE}-{_hex(ingest.context.span_id, 16)}-01 "
                      "vendor=abc")


def test_a_retried_delivery_has_a_span_per_attempt_under_the_same_ingest(
    make_traced: Callable[..., Traced], make_receiver: Callable[..., Receiver]
) -> None:
    """A 500 then a 200: two attempt spans, the first saying it will be retried."""
    receiver = make_receiver(lambda i, r: (500, {}, b"busy") if i == 0 else (200, {}, b"ok"))
    traced = make_traced(endpoint_yaml("crm", receiver.url))
    assert traced.relay.post(BODY).status_code == 202
    [ingest] = traced.spans("relay.ingest")
    first, second = sorted(traced.spans("relay.attempt", 2),
                           key=lambda s: (s.attributes or {})["relay.attempt"])
    assert ingest.context is not None and ingest.parent is None  # no caller: a new trace
    for span in (first, second):
        assert span.parent is not None and span.parent.span_id == ingest.context.span_id
    assert (first.attributes or {})["http.response.status_code"] == 500
    assert (first.attributes or {})["relay.retry"] is True
    assert (first.attributes or {})["relay.delivery.status"] == "scheduled"
    assert not first.status.is_ok
    assert (second.attributes or {})["relay.attempt"] == 2
    assert (second.attributes or {})["relay.delivery.status"] == "delivered"


def test_a_malformed_traceparent_is_ignored(
    make_traced: Callable[..., Traced], receiver: Receiver
) -> None:
    """A bad traceparent is no error: the event is taken and starts a trace of its own."""
    traced = make_traced(endpoint_yaml("crm", receiver.url))
    bad = f"00-{INCOMING_TRACE.upper()}-{INCOMING_SPAN}-01"  # uppercase hex is not W3C
    assert traced.relay.post(BODY, {"traceparent": bad}).status_code == 202
    [ingest] = traced.spans("relay.ingest")
    assert ingest.parent is None
    assert ingest.context is not None and _hex(ingest.context.trace_id, 32) != INCOMING_TRACE


@pytest.mark.parametrize("text", [
    INCOMING + "\n", INCOMING + "-00", f"ff-{INCOMING_TRACE}-{INCOMING_SPAN}-01",
    f"00-{'0' * 32}-{INCOMING_SPAN}-01", f"00-{INCOMING_TRACE}-{'0' * 16}-01", "", "00-1-2-3",
])
def test_parse_trace_context_refuses_what_w3c_does(text: str) -> None:
    """Only a whole, valid version-00 traceparent is read."""
    assert parse_trace_context(text) is None


def test_a_bad_tracestate_is_dropped_but_the_traceparent_kept() -> None:
    """The traceparent alone still parents the span when the tracestate is malformed."""
    context = parse_trace_context(INCOMING + " Not=A,Valid\x01State")
    assert context is not None and _hex(context.trace_id, 32) == INCOMING_TRACE
    assert not context.trace_state


def test_the_opt_out_sends_no_traceparent_but_still_traces(
    make_traced: Callable[..., Traced], receiver: Receiver
) -> None:
    """`trace_context: false`: the receiver sees today's headers; the span is still made."""
    traced = make_traced(endpoint_yaml("crm", receiver.url, trace_context=False))
    assert traced.relay.post(BODY, {"traceparent": INCOMING}).status_code == 202
    [request] = receiver.wait_for(1)
    assert request.header("traceparent") is None and request.header("tracestate") is None
    [attempt] = traced.spans("relay.attempt")
    assert attempt.context is not None and _hex(attempt.context.trace_id, 32) == INCOMING_TRACE


def test_batch_and_source_requests_have_ingest_spans(
    make_traced: Callable[..., Traced], receiver: Receiver
) -> None:
    """A batch is one span for its events; a source's POST names its source."""
    traced = make_traced(endpoint_yaml("crm", receiver.url),
                         extra="sources:\n  - {name: shop, verify: {scheme: none}}\n")
    batch = b'[{"type": "a.one", "id": 1}, {"type": "a.two", "id": 2}]'
    assert traced.relay.post(batch, path="/v1/events/batch").status_code == 202
    assert traced.relay.post(BODY, path="/v1/sources/shop").status_code == 202
    first, second = traced.spans("relay.ingest", 2)
    attributes = dict(first.attributes or {})
    assert attributes["relay.event.count"] == 2
    assert attributes["relay.event.type"] == ("a.one", "a.two")
    assert len(attributes["relay.event.ids"]) == 2
    assert (second.attributes or {})["relay.source"] == "shop"
    assert (second.attributes or {})["url.path"] == "/v1/sources/shop"
    events = traced.spans("relay.attempt", 3)
    parents = {s.parent.span_id for s in events if s.parent is not None}
    assert parents == {first.context.span_id, second.context.span_id}  # type: ignore[union-attr]


def test_a_refused_request_says_why_without_its_detail(
    make_traced: Callable[..., Traced], receiver: Receiver
) -> None:
    """A 401 is an ingest span with outcome refused and the problem's type."""
    traced = make_traced(endpoint_yaml("crm", receiver.url),
                         extra=f"ingest: {{token: {INGEST_TOKEN}}}\n")
    assert traced.relay.post(BODY, {"Authorization": "Bearer wrong"}).status_code == 401
    [ingest] = traced.spans("relay.ingest")
    attributes = dict(ingest.attributes or {})
    assert attributes["relay.outcome"] == "refused"
    assert attributes["http.response.status_code"] == 401
    assert attributes["relay.problem"]


def test_no_secret_token_or_payload_in_any_attribute(
    make_traced: Callable[..., Traced], make_receiver: Callable[..., Receiver]
) -> None:
    """Spans carry ids and outcomes: never the body, a signing secret, a token, a header."""
    receiver = make_receiver(lambda i, r: (500, {}, b"answer-body-7781") if i == 0
                             else (200, {}, b"ok"))
    traced = make_traced(
        endpoint_yaml("crm", receiver.url + "/hook?key=url-token-5521",
                      headers={"X-Api-Key": "header-secret-9034"}),
        extra=f"ingest: {{token: {INGEST_TOKEN}}}\n")
    assert traced.relay.post(BODY, {"Authorization": f"Bearer {INGEST_TOKEN}"}
                             ).status_code == 202
    traced.spans("relay.attempt", 2)
    spans = list(traced.exporter.get_finished_spans())
    text = _all_attribute_text(spans)
    for secret in (SECRET, SECRET.removeprefix("whsec_"), INGEST_TOKEN, "KEY-SECRET-PAYLOAD",
                   "url-token-5521", "header-secret-9034", "answer-body-7781"):
        assert secret not in text
    assert all(not s.events for s in spans)  # no exception events carrying messages


def test_tracing_off_sends_no_traceparent_and_stores_no_context(
    make_relay: Callable[..., RelayThread], receiver: Receiver
) -> None:
    """Without a tracer, today's requests exactly: no traceparent, a NULL column."""
    relay = make_relay(endpoint_yaml("crm", receiver.url))
    assert relay.post(BODY, {"traceparent": INCOMING}).status_code == 202
    [request] = receiver.wait_for(1)
    assert request.header("traceparent") is None
    relay.wait_statuses({"delivered": 1})
    assert relay.rows("SELECT trace_context FROM events") == [(None,)]


def test_tracing_off_imports_no_opentelemetry(tmp_path: Path) -> None:
    """A relay built without tracing has not loaded OpenTelemetry at all."""
    config = tmp_path / "relay.yaml"
    config.write_text(base_config(free_port(), tmp_path / "r.db", "  []\n"))
    code = (
        "import os, sys\n"
        "for name in ('OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'):\n"
        "    os.environ.pop(name, None)\n"
        "from relay.config import load_config\n"
        "from relay.http.app import create_app, load_telemetry\n"
        f"config = load_config({str(config)!r})\n"
        "assert load_telemetry(config) is None\n"
        "create_app(config)\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('opentelemetry'))\n"
        "print(loaded)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=60, check=True)
    assert out.stdout.strip() == "[]", out.stderr


def test_load_telemetry_follows_the_config_and_the_standard_variables(tmp_path: Path) -> None:
    """On with telemetry.otlp_endpoint or OTEL_EXPORTER_OTLP_*; off otherwise."""
    config = tmp_path / "relay.yaml"
    config.write_text(base_config(free_port(), tmp_path / "r.db", "  []\n"))
    plain = load_config(config)
    assert load_telemetry(plain, {}) is None
    on = load_telemetry(plain, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"})
    assert isinstance(on, Telemetry)
    on.shutdown()
    assert TelemetryConfig(otlp_endpoint="http://c:4318/").traces_url() == "http://c:4318/v1/traces"
    assert TelemetryConfig(otlp_endpoint="http://c:4318/v1/traces").traces_url() \
        == "http://c:4318/v1/traces"
    assert not TelemetryConfig().enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": " "})


def test_tracing_without_the_extra_names_the_key_and_the_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Asking for tracing without OpenTelemetry installed is a config error that says how."""
    config = tmp_path / "relay.yaml"
    config.write_text(base_config(free_port(), tmp_path / "r.db", "  []\n",
                                  "telemetry: {otlp_endpoint: 'http://127.0.0.1:4318'}\n"))
    # What an environment without the extra looks like to the import.
    monkeypatch.setitem(sys.modules, "relay.telemetry", None)
    with pytest.raises(ConfigError) as caught:
        load_telemetry(load_config(config), {})
    [message] = caught.value.errors
    assert message.startswith("telemetry.otlp_endpoint: ")
    assert "pip install 'license-webhook-relay[otel]'" in message
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert main(["check", "-c", str(config)]) == 2  # relay check finds it before a deploy
    err = capsys.readouterr().err
    assert "telemetry.otlp_endpoint: tracing needs OpenTelemetry" in err


@pytest.mark.parametrize(("value", "words"), [
    ("'ftp://collector:4318'", "http:// or https://"),
    ("'http://user:pw@collector:4318'", "credentials"),
    ("'http://collector:4318/?x=1'", "without query"),
])
def test_a_bad_otlp_endpoint_names_its_key(tmp_path: Path, value: str, words: str) -> None:
    """The endpoint is checked like every URL of relay.yaml, its key in the message."""
    config = tmp_path / "relay.yaml"
    config.write_text(base_config(free_port(), tmp_path / "r.db", "  []\n",
                                  f"telemetry: {{otlp_endpoint: {value}}}\n"))
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert any(line.startswith("telemetry.otlp_endpoint") and words in line
               for line in caught.value.errors), caught.value.errors


def test_logs_carry_the_trace_id() -> None:
    """Inside a span a line gets its trace id; a traced delivery's lines get the event's."""
    telemetry = Telemetry(processor=SimpleSpanProcessor(InMemorySpanExporter()))
    span = telemetry.ingest("/v1/events", [(b"traceparent", INCOMING.encode())])
    try:
        line: dict[str, Any] = {}
        add_trace_id(None, "info", line)
        assert line["trace_id"] == INCOMING_TRACE and len(line["span_id"]) == 16
    finally:
        span.end(202)
    outside: dict[str, Any] = {}
    assert "trace_id" not in add_trace_id(None, "info", outside)
    claimed = ClaimedDelivery(1, "evt_1", "a.b", "crm", b"{}", 1, 0.0, INCOMING)
    with structlog.testing.capture_logs() as logs:
        bind_delivery(claimed).warning("delivery_failed")
    assert logs[0]["trace_id"] == INCOMING_TRACE
    telemetry.shutdown()


def test_the_opt_out_works_through_the_endpoint_api(
    make_traced: Callable[..., Traced], make_receiver: Callable[..., Receiver]
) -> None:
    """An API endpoint made with `trace_context: false` shows it, and gets no traceparent."""
    quiet, chatty = make_receiver(), make_receiver()
    traced = make_traced(endpoint_yaml("crm", chatty.url))
    made = httpx.post(traced.relay.url + "/v1/endpoints", timeout=10, json={
        "name": "quiet", "url": quiet.url, "allow_http": True, "secret": SECRET,
        "trace_context": False})
    assert made.status_code == 201, made.text
    assert made.json()["trace_context"] is False
    shown = httpx.get(traced.relay.url + "/v1/endpoints/crm", timeout=10).json()
    assert shown["trace_context"] is True
    assert traced.relay.post(BODY).status_code == 202
    [to_quiet], [to_chatty] = quiet.wait_for(1), chatty.wait_for(1)
    assert to_quiet.header("traceparent") is None
    assert to_chatty.header("traceparent") is not None
