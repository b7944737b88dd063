"""The one place that speaks HTTP to endpoints.

Everything else in the relay sees only `Sender.send()` and `SendResult`, so the
HTTP client can be swapped (the benchmarks compare httpx and aiohttp) without
touching the workers. A sender never raises for what an endpoint does: refused
connections, timeouts, resets and bad answers all come back as a `SendResult`
with `error` set, because for a relay they are outcomes to record, not bugs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import httpx

from relay import __version__

__all__ = ["MAX_RESPONSE_BYTES", "USER_AGENT", "HttpxSender", "SendResult", "Sender"]

MAX_RESPONSE_BYTES = 4096
USER_AGENT = f"relay/{__version__}"


@dataclass(frozen=True, slots=True)
class SendResult:
    status: int | None  # None when no HTTP answer was received
    body: bytes  # at most MAX_RESPONSE_BYTES of the answer
    retry_after: str | None
    error: str | None
    duration_ms: float


class Sender(Protocol):
    async def send(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float
    ) -> SendResult:
        """POST `body` to `url`; the whole exchange is bounded by `timeout_s`."""

    async def aclose(self) -> None:
        """Close pooled connections."""


class HttpxSender:
    """A sender on one shared `httpx.AsyncClient` (connection pooling across endpoints)."""

    def __init__(self, max_connections: int = 100) -> None:
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=max_connections),
            headers={"User-Agent": USER_AGENT},
            trust_env=False,  # a relay must not route deliveries through ambient proxies
        )

    async def send(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float
    ) -> SendResult:
        started = time.perf_counter()

        def done(status: int | None, data: bytes, retry_after: str | None,
                 error: str | None) -> SendResult:
            return SendResult(status, data, retry_after, error,
                              (time.perf_counter() - started) * 1000)

        request = self._client.build_request(
            "POST", url, content=body,
            headers={"Content-Type": "application/json", **headers},
            timeout=httpx.Timeout(timeout_s),
        )
        status: int | None = None
        retry_after: str | None = None
        data = bytearray()
        try:
            async with asyncio.timeout(timeout_s):
                response = await self._client.send(request, stream=True)
                try:
                    status = response.status_code
                    retry_after = response.headers.get("retry-after")
                    async for chunk in response.aiter_bytes():
                        data += chunk
                        if len(data) >= MAX_RESPONSE_BYTES:
                            break
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            return done(status, bytes(data[:MAX_RESPONSE_BYTES]), retry_after,
                        f"timed out after {timeout_s:g}s")
        except httpx.HTTPError as exc:
            return done(status, bytes(data[:MAX_RESPONSE_BYTES]), retry_after,
                        describe_error(exc))
        return done(status, bytes(data[:MAX_RESPONSE_BYTES]), retry_after, None)

    async def aclose(self) -> None:
        await self._client.aclose()


def describe_error(exc: BaseException) -> str:
    """A short, human reason for a failed exchange, without a traceback."""
    kind = {
        httpx.ConnectError: "connection failed",
        httpx.RemoteProtocolError: "the endpoint broke the HTTP exchange",
        httpx.ReadError: "reading the answer failed",
        httpx.WriteError: "sending the request failed",
    }
    for cls, text in kind.items():
        if isinstance(exc, cls):
            detail = str(exc) or type(exc.__cause__ or exc).__name__
            return f"{text}: {detail}"
    return f"{type(exc).__name__}: {exc}"
