"""A local OTLP/HTTP trace sink for the tracing benchmark: answers 200, counts spans.

Decodes each export with opentelemetry-proto, as a collector would, so the
count it reports (`GET /count`) is of spans that really arrived.

    python -m bench.otlp_sink PORT
"""

from __future__ import annotations

import sys

import uvicorn
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

received = {"spans": 0, "exports": 0}
ANSWER = ExportTraceServiceResponse().SerializeToString()


async def traces(request: Request) -> Response:
    export = ExportTraceServiceRequest.FromString(await request.body())
    received["exports"] += 1
    received["spans"] += sum(len(scope.spans) for resource in export.resource_spans
                             for scope in resource.scope_spans)
    return Response(ANSWER, media_type="application/x-protobuf")


async def count(request: Request) -> Response:
    return JSONResponse(received)


app = Starlette(routes=[Route("/v1/traces", traces, methods=["POST"]),
                        Route("/count", count), Route("/healthz", count)])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http="httptools",
                log_level="warning", access_log=False)
