"""A receiver that notes when each webhook-id arrived; GET /arrivals returns them."""

from __future__ import annotations

import sys
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

arrivals: dict[str, float] = {}


async def hook(request: Request) -> Response:
    await request.body()
    key = request.headers.get("webhook-id") or request.headers.get("x-direct-id", "")
    arrivals.setdefault(key, time.time())
    return Response(b"ok")


async def dump(request: Request) -> Response:
    return JSONResponse(arrivals)


app = Starlette(routes=[Route("/hooks", hook, methods=["POST"]),
                        Route("/arrivals", dump), Route("/healthz", dump)])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http="httptools",
                log_level="warning", access_log=False)
