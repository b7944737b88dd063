"""The ingest baseline: a Starlette endpoint that reads the body and answers 202.

Served by uvicorn with the relay's own server settings (uvloop, httptools, no
access log), so the ratio measures what the relay adds: parsing, the group
commit and its fsync.
"""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def ingest(request: Request) -> Response:
    await request.body()
    return Response(b'{"id": "evt_x", "deliveries": 1, "duplicate": false}', status_code=202,
                    media_type="application/json")


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(routes=[Route("/v1/events", ingest, methods=["POST"]),
                        Route("/v1/events/batch", ingest, methods=["POST"]),
                        Route("/healthz", healthz)])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http="httptools",
                log_level="warning", access_log=False, backlog=4096)
