"""The interface between the delivery workers and HTTP, and the httpx sender.

Everything else in the relay sees only `Sender.send()` and `SendResult`, so the
HTTP client can be swapped (the benchmarks compare httpx and aiohttp) without
touching the workers. A sender never raises for what an endpoint does: refused
connections, timeouts, resets and bad answers all come back as a `SendResult`
with `error` set, because for a relay they are outcomes to record, not bugs.

Two implementations:

* `relay.delivery.aiohttp_sender.AiohttpSender`, the one the relay runs: 4 to
  70 times less client CPU per request than httpx (docs/delivery-client.md),
  and it enforces the outbound safety policy (`relay.delivery.ssrf`).
* `HttpxSender` here, on the project's declared client: kept for comparison in
  tests and benchmarks. It has no SSRF guard, so it must not face untrusted URLs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import httpx

from relay import __version__
from relay.config import Config

__all__ = ["MAX_RESPONSE_BYTES", "USER_AGENT", "HttpxSender", "SendResult", "Sender"]

MAX_RESPONSE_BYTES = 4096
USER_AGENT = f"relay/{__version__}"


@dataclass(slots=True)  # not frozen, for speed: see relay.models.ClaimedDelivery
class SendResult:
    """The outcome of one attempt, as the worker records it.

    `permanent` marks an outcome that no retry can change (the destination is
    refused by the outbound safety policy, or the URL cannot be used): the
    delivery fails at once instead of following the retry schedule.
    """

    status: int | None  # None when no HTTP answer was received
    body: bytes  # at most MAX_RESPONSE_BYTES of the answer
    retry_after: str | None
    error: str | None
    duration_ms: float
    permanent: bool = False


class Sender(Protocol):
    async def send(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float,
        *, allow_http: bool | None = None,
    ) -> SendResult:
        """POST `body` to `url`; the whole exchange is bounded by `timeout_s`.

        `allow_http` is the endpoint's `allow_http`: False refuses a plain
        `http://` URL (a permanent failure). None means the caller does not say;
        config validation already refused `http://` without `allow_http: true`.
        """

    def reconfigure(self, config: Config) -> None:
        """Apply a reloaded relay.yaml (its outbound policy) to attempts started from now."""

    async def aclose(self) -> None:
        """Close pooled connections."""


class HttpxSender:
    """A sender on one shared `httpx.AsyncClient` (connection pooling across endpoints).

    No outbound safety checks (`allow_http` is accepted and ignored): this is
    the comparison point for tests and benchmarks, not the production sender.
    """

    def __init__(self, max_connections: int = 100) -> None:
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=max_connections),
            headers={"User-Agent": USER_AGENT},
            trust_env=False,  # a relay must not route deliveries through ambient proxies
        )

    async def send(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float,
        *, allow_http: bool | None = None,
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

    def reconfigure(self, config: Config) -> None:
        """Nothing to apply: this sender has no outbound policy."""

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
