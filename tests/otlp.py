"""A real OTLP/HTTP trace receiver on 127.0.0.1, for relays run as processes.

It decodes each export with opentelemetry-proto's own protobuf classes, as a
collector would, and keeps the spans as plain records.
"""

from __future__ import annotations

import gzip
import http.server
import threading
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.support import wait_until

__all__ = ["OtlpReceiver", "Span"]


@dataclass(frozen=True)
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str  # "" for a root span
    service: str
    attributes: dict[str, Any]


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in any_value.array_value.values]
    return getattr(any_value, kind) if kind else None


class OtlpReceiver:
    """Answers `POST /v1/traces` with 200 and records every span it was sent."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    data = gzip.decompress(data)
                request = ExportTraceServiceRequest.FromString(data)
                receiver._add(request)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _add(self, request: ExportTraceServiceRequest) -> None:
        spans = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(Span(
                        span.name, span.trace_id.hex(), span.span_id.hex(),
                        span.parent_span_id.hex(), str(resource.get("service.name", "")),
                        {a.key: _value(a.value) for a in span.attributes}))
        with self._lock:
            self.spans.extend(spans)

    def start(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def named(self, name: str, count: int = 1, timeout: float = 20.0) -> list[Span]:
        """The spans called `name`, once at least `count` have come."""
        def found() -> list[Span]:
            with self._lock:
                spans = [s for s in self.spans if s.name == name]
            return spans if len(spans) >= count else []

        spans: list[Span] = wait_until(found, timeout, message=f"{count} {name} spans")
        return spans


def telemetry_yaml(otlp: OtlpReceiver, service: str) -> str:
    """relay.yaml's `telemetry:` section sending to `otlp` as `service`."""
    return f"telemetry: {{otlp_endpoint: '{otlp.url}', service_name: {service}}}\n"


def check_one_trace(otlp: OtlpReceiver, receiver: Any, ingest_on: Any, other: Any, *,
                    side_by_side: bool) -> None:
    """Ingest on one relay process while delivery is paused, stop it, deliver on `other`.

    `other` (a RelayProcess not started yet) is the same relay restarted on its
    database, or, `side_by_side`, another replica started while the first still
    runs. Either way its attempt's span must be a child of the first relay's
    ingest span, in the same trace, and the receiver's traceparent a child of
    the attempt.
    """
    import httpx

    paused = httpx.post(f"{ingest_on.url}/v1/endpoints/crm/pause", timeout=10)
    assert paused.status_code == 200, paused.text
    answer = ingest_on.post({"type": "license.created", "data": {"key": "PAYLOAD-BODY-1"}})
    assert answer.status_code == 202, answer.text
    event_id = answer.json()["id"]
    if side_by_side:
        other.start(timeout=30)
    assert ingest_on.terminate() == 0  # its spans are flushed as it stops
    if not side_by_side:
        other.start(timeout=30)
    [ingest] = otlp.named("relay.ingest")
    assert ingest.attributes["relay.event.id"] == event_id
    resumed = httpx.post(f"{other.url}/v1/endpoints/crm/resume", timeout=10)
    assert resumed.status_code == 200, resumed.text
    [request] = receiver.wait_for(1, timeout=20)
    assert other.terminate() == 0
    [attempt] = otlp.named("relay.attempt")
    assert (ingest.service, attempt.service) == ("relay-a", "relay-b")
    assert attempt.trace_id == ingest.trace_id
    assert attempt.parent_span_id == ingest.span_id
    assert attempt.attributes["relay.event.id"] == event_id
    assert attempt.attributes["http.response.status_code"] == 200
    # Sampled (01); a trace the relay started also says its id is random (02, W3C level 2).
    parent = request.header("traceparent") or ""
    assert parent[:-2] == f"00-{ingest.trace_id}-{attempt.span_id}-", request.headers
    assert int(parent[-2:], 16) & 1
    assert "PAYLOAD-BODY-1" not in repr(otlp.spans)
