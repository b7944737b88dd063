"""The production sender: one shared aiohttp `ClientSession`, behind the SSRF guard.

Why aiohttp and not httpx (the project's declared client, still used by the
CLI and the tests): a 1 KiB POST costs 0.05-0.1 ms of client CPU with aiohttp
against 0.35-4.5 ms with httpx, whose cost grows with concurrency (83x fewer
requests/s at 64); docs/delivery-client.md has the figures and
`python -m bench.delivery_clients` measures them again.

What a caller can rely on:

* `send()` never raises for what an endpoint or the network does. Refused
  connections, DNS failures, TLS errors, timeouts and resets come back as a
  `SendResult` with a short human `error`.
* A destination refused by the outbound safety policy (`relay.delivery.ssrf`),
  a plain `http://` URL sent with `allow_http=False`, or a URL that cannot be
  used, is a `SendResult` with `permanent=True`: retrying cannot help. No
  connection is attempted for these.
* Redirects are never followed: a 3xx is a failed attempt with its status and
  `Location` in the error.
* At most `MAX_RESPONSE_BYTES` of the answer are read; the rest is never
  downloaded (the connection is closed instead of reused). The body is not
  decompressed: `Accept-Encoding: identity` asks for it as is, and what arrives
  is recorded raw.
* No cookies are kept between deliveries, no proxy from the environment is used:
  only `delivery.proxy` (`relay.delivery.egress` says how the SSRF rules still
  apply through it). A failure of the proxy itself (unreachable, or refusing
  the CONNECT) is an error starting `proxy error:`, retried like a network one.
"""

from __future__ import annotations

import asyncio
import errno
import ssl
import time
from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from relay.config import Config
from relay.delivery.egress import Egress, proxy_answer_error, proxy_status_error
from relay.delivery.sender import MAX_RESPONSE_BYTES, USER_AGENT, SendResult
from relay.delivery.ssrf import (
    DestinationPolicy,
    DestinationRefused,
    GuardedResolver,
    Network,
    parse_ip,
)

__all__ = ["AiohttpSender"]

_MAX_CACHED_TARGETS = 1024
_MAX_LOCATION_CHARS = 200
_DNS_CACHE_TTL_S = 10  # only allowed answers are cached: a refused lookup raises


class AiohttpSender:
    """A `Sender` on one lazily created `aiohttp.ClientSession`.

    The session is created on the first `send()`, inside the running loop,
    because the app builds its sender before uvicorn starts the loop; after
    `aclose()` the next `send()` opens a new one.

    `concurrency` caps connections in use, 0 for no cap: the relay's sender
    has none, its dispatcher bounds the attempts in flight (a hung one moves
    out of `delivery.concurrency`, and must not keep a connection from the
    others). There is no per-host cap, an endpoint's `max_in_flight` is that.
    `allow_networks` are the CIDRs exempt from the SSRF guard. `resolver`
    replaces aiohttp's name resolution (tests map hostnames to loopback with
    it); the guard wraps it either way.
    `max_timeout_s` bounds how long an attempt can run, so that a pool retired
    by `reconfigure()` is closed only after its attempts ended.

    `egress` is `delivery.proxy` and `delivery.no_proxy` (direct when None).

    `send(..., allow_http=False)` refuses a plain `http://` URL; None (the
    caller does not say) leaves it to config validation, which already refuses
    `http://` without `allow_http: true`. None is the default so that a URL
    added by a reload is never refused for want of information.
    """

    def __init__(
        self,
        concurrency: int = 64,
        *,
        allow_networks: Iterable[Network | str] = (),
        resolver: AbstractResolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
        max_timeout_s: float = 10.0,
        egress: Egress | None = None,
    ) -> None:
        self._limit = max(concurrency, 0)
        self._guard = GuardedResolver(DestinationPolicy.of(allow_networks), resolver)
        self._egress = egress or Egress()
        self._guard.trust(self._proxy_key())
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._max_timeout_s = max_timeout_s
        self._session: aiohttp.ClientSession | None = None
        self._retiring: dict[asyncio.Task[None], aiohttp.ClientSession] = {}
        self._targets: dict[str, URL | str] = {}
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    @classmethod
    def from_config(
        cls, config: Config, *, resolver: AbstractResolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> AiohttpSender:
        """The sender for a relay.yaml: its allowed networks, no cap of its own."""
        sender = cls(0, resolver=resolver, ssl_context=ssl_context,
                     egress=Egress.of(config.delivery.proxy, config.delivery.no_proxy))
        sender.reconfigure(config)
        return sender

    @property
    def policy(self) -> DestinationPolicy:
        return self._guard.policy

    def _proxy_key(self) -> tuple[str, int] | None:
        proxy = self._egress.proxy
        return (proxy.host, proxy.port) if proxy is not None else None

    def reconfigure(self, config: Config) -> None:
        """Apply a reloaded relay.yaml's `delivery.allow_networks`, `proxy` and `no_proxy`.

        When they change, pooled keep-alive connections were checked under the
        old policy (or go to the old proxy), so new attempts get a fresh pool;
        the old one is closed once the attempts already on it are over.
        """
        self._max_timeout_s = max([config.delivery.timeout_s,
                                   *(e.timeout_s for e in config.endpoints)])
        policy = DestinationPolicy(config.delivery.allow_networks)
        egress = Egress.of(config.delivery.proxy, config.delivery.no_proxy)
        if policy == self._guard.policy and egress == self._egress:
            return
        self._guard.policy = policy
        self._egress = egress
        self._guard.trust(self._proxy_key())
        self._targets.clear()
        old, self._session = self._session, None
        if old is not None:
            task = asyncio.get_running_loop().create_task(
                self._close_later(old, self._max_timeout_s + 1.0), name="sender-pool-retire")
            self._retiring[task] = old
            task.add_done_callback(self._retiring_done)

    async def _close_later(self, session: aiohttp.ClientSession, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        await session.close()

    def _retiring_done(self, task: asyncio.Task[None]) -> None:
        self._retiring.pop(task, None)

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._limit,
            limit_per_host=0,
            resolver=self._guard,
            socket_factory=self._guard.socket_factory,
            ttl_dns_cache=_DNS_CACHE_TTL_S,
            ssl=self._ssl,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            # identity: the answer is recorded as it comes, so ask for it
            # uncompressed (sent outright: `skip_auto_headers` would copy the
            # headers of every request to check it, a tenth of aiohttp's cost).
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
            auto_decompress=False,
            trust_env=False,  # never route deliveries through an ambient proxy
            raise_for_status=False,
        )
        return self._session

    def _timeout(self, timeout_s: float) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(timeout_s)
        if timeout is None:
            # ceil_threshold=inf: aiohttp would round long timeouts up to a whole
            # second of loop time; an endpoint's `timeout: 10s` means 10 s.
            timeout = self._timeouts[timeout_s] = aiohttp.ClientTimeout(
                total=timeout_s, ceil_threshold=float("inf"))
        return timeout

    def _target(self, url: str) -> URL | str:
        """The parsed URL, or why it is refused before any connection (cached per URL).

        IP-literal hosts never reach a resolver in aiohttp, so they are judged
        here; the guard's socket factory checks them again at connect time.
        """
        cached = self._targets.get(url)
        if cached is not None:
            return cached
        target: URL | str
        try:
            parsed = URL(url)
        except (ValueError, TypeError) as exc:
            target = f"invalid URL: {exc}"
        else:
            target = _refusal(parsed, self._guard.policy) or parsed
        if len(self._targets) >= _MAX_CACHED_TARGETS:
            self._targets.clear()
        self._targets[url] = target
        return target

    async def send(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float,
        *, allow_http: bool | None = None,
    ) -> SendResult:
        started = time.perf_counter()
        target = self._target(url)
        if isinstance(target, str):
            return SendResult(None, b"", None, target, _ms(started), permanent=True)
        if allow_http is False and target.scheme == "http":
            return SendResult(None, b"", None, "refused destination: plain http:// needs "
                              "`allow_http: true` on the endpoint", _ms(started), permanent=True)
        options: dict[str, Any] = {}
        proxied = self._egress.applies(target.host or "")
        if proxied:
            routed = await self._through_proxy(target, options)
            if isinstance(routed, SendResult):
                return SendResult(None, b"", None, routed.error, _ms(started),
                                  permanent=routed.permanent)
            target = routed
        session = self._session if self._session is not None else self._open()
        status: int | None = None
        retry_after: str | None = None
        error: str | None = None
        permanent = False
        data = bytearray()
        try:
            async with session.post(
                target, data=body,
                headers={"Content-Type": "application/json", **headers,
                         **options.pop("headers", {})},
                allow_redirects=False, timeout=self._timeout(timeout_s), **options,
            ) as response:
                status = response.status
                retry_after = response.headers.get("Retry-After")
                proxy_status = (proxy_status_error(response.headers.get("Proxy-Status"))
                                if proxied else None)
                if proxied and (status == 407 or proxy_status is not None):
                    error = proxy_answer_error(status, response.reason, proxy_status=proxy_status)
                elif 300 <= status < 400:
                    error = _redirect_error(status, response.headers.get("Location"))
                content = response.content
                length = response.content_length
                if length is not None and length <= MAX_RESPONSE_BYTES:
                    data += await response.read()  # small and announced: in one go
                while len(data) < MAX_RESPONSE_BYTES and not content.at_eof():
                    chunk = await content.read(MAX_RESPONSE_BYTES - len(data))
                    if not chunk:
                        break
                    data += chunk
        except TimeoutError:
            error = f"timed out after {timeout_s:g}s"
        except (aiohttp.ClientError, OSError) as exc:
            error, permanent = _describe(exc)
            if proxied and isinstance(exc, aiohttp.ClientConnectorError) and (
                    self._egress.is_proxy(exc.host, exc.port)):
                error = f"proxy error: {error}"
        return SendResult(status, bytes(data), retry_after, error, _ms(started),
                          permanent=permanent)

    async def _through_proxy(self, target: URL, options: dict[str, Any]) -> URL | SendResult:
        """The URL to ask the proxy for, its options set; or why not to send at all.

        The destination's name is resolved and judged here, as a direct
        delivery's would be at connect time; https:// is tunnelled to the
        checked address with TLS and `Host` kept on the name.
        """
        host, port = target.host or "", target.port or 0
        try:
            answers = await self._guard.checked(host, port)
        except DestinationRefused as exc:
            return SendResult(None, b"", None, str(exc), 0.0, permanent=True)
        except OSError as exc:
            reason = exc.strerror or str(exc) or "no address"
            return SendResult(None, b"", None, f"DNS failure: cannot resolve {host} ({reason})",
                              0.0)
        options["proxy"] = self._egress.url
        authorization = self._egress.authorization
        credentials = {"Proxy-Authorization": authorization} if authorization else {}
        if target.scheme != "https":
            options["headers"] = credentials  # aiohttp sends proxy_headers on CONNECT only
            return target
        options["proxy_headers"] = credentials or None
        options["server_hostname"] = host
        options["headers"] = {"Host": target.host_port_subcomponent or host}
        return target.with_host(answers[0]["host"])

    async def aclose(self) -> None:
        """Close the pool (and any pool retired by a reload) and the resolver."""
        sessions = list(self._retiring.values())
        for task in list(self._retiring):
            task.cancel()
        self._retiring.clear()
        if self._session is not None:
            sessions.append(self._session)
            self._session = None
        for session in sessions:
            await session.close()
        await self._guard.close()


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _refusal(url: URL, policy: DestinationPolicy) -> str | None:
    """Why `url` cannot be delivered to, judged without any network access."""
    if url.scheme not in ("http", "https") or not url.host:
        return f"invalid URL: deliveries need an http:// or https:// URL with a host, got {url}"
    if url.user is not None or url.password is not None:
        return "invalid URL: credentials in the URL are not sent; use the endpoint's headers"
    host = url.host
    if ":" in host or host.replace(".", "").isdigit():  # aiohttp treats these as IP literals
        address = parse_ip(host)
        if address is None:
            return (f"refused destination: {host} is not a canonical IP address "
                    "(write it as a.b.c.d or in IPv6 notation)")
        reason = policy.refusal(address)
        if reason is not None:
            return str(DestinationRefused(host, [(host, reason)]))
    return None


def _redirect_error(status: int, location: str | None) -> str:
    text = f"endpoint answered {status}"
    if location:
        shown = "".join(c if c.isprintable() else "?" for c in location[:_MAX_LOCATION_CHARS])
        text += f" redirecting to {shown}{'…' if len(location) > _MAX_LOCATION_CHARS else ''}"
    return text + "; redirects are not followed"


def _cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The first exception of `kind` in `exc`'s chain (aiohttp wraps OS errors)."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _describe(exc: BaseException) -> tuple[str, bool]:
    """A short human reason for a failed exchange, and whether retrying is pointless."""
    refused = _cause(exc, DestinationRefused)
    if refused is not None:
        return str(refused), True
    if isinstance(exc, aiohttp.InvalidURL):
        return f"invalid URL: {exc}", True
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        reason = exc.os_error.strerror or str(exc.os_error) or "no address"
        return f"DNS failure: cannot resolve {exc.host} ({reason})", False
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cert = exc.certificate_error
        reason = getattr(cert, "verify_message", None) or str(cert)
        return f"TLS error: certificate of {exc.host} rejected ({reason})", False
    if isinstance(exc, aiohttp.ClientSSLError):
        os_error = exc.os_error
        reason = getattr(os_error, "reason", None) or os_error.strerror or str(os_error)
        return f"TLS error with {exc.host}:{exc.port}: {reason}", False
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        proxy_status = proxy_status_error(
            exc.headers.get("Proxy-Status") if exc.headers is not None else None)
        return proxy_answer_error(exc.status, exc.message, connect=True,
                                  proxy_status=proxy_status), False
    if isinstance(exc, aiohttp.ClientConnectorError):
        code = exc.os_error.errno
        where = f"{exc.host}:{exc.port}"
        if code == errno.ECONNREFUSED:
            return f"connection refused by {where}", False
        if code in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return f"{where} is unreachable ({exc.os_error.strerror})", False
        reason = exc.os_error.strerror or str(exc.os_error) or type(exc.os_error).__name__
        return f"connecting to {where} failed: {reason}", False
    if _cause(exc, ConnectionResetError) is not None or (
            isinstance(exc, OSError) and exc.errno == errno.ECONNRESET):
        return "connection reset by peer", False
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the endpoint closed the connection without a complete answer", False
    if isinstance(exc, aiohttp.ClientPayloadError):
        return f"the answer's body was cut short: {exc}", False
    if isinstance(exc, aiohttp.ClientResponseError):
        first_line = (exc.message.strip().splitlines() or [""])[0][:_MAX_LOCATION_CHARS]
        return f"invalid HTTP answer: {first_line}", False
    if isinstance(exc, OSError) and exc.strerror:
        return f"network error: {exc.strerror}", False
    return f"{type(exc).__name__}: {exc}", False
