"""AiohttpSender against real servers on 127.0.0.1: what is sent, read, and reported."""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import socket
import ssl
import struct
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from relay import __version__
from relay.config import Config, DeliveryConfig, EndpointConfig
from relay.delivery.aiohttp_sender import AiohttpSender
from relay.delivery.sender import MAX_RESPONSE_BYTES, HttpxSender, SendResult
from tests.delivery.helpers import (
    Behaviour,
    NetworkFence,
    RawServer,
    StaticResolver,
    TlsServer,
    read_request,
)

pytestmark = pytest.mark.anyio

BODY = b'{"type": "license.created", "data": {"licenseKey": "ABCD-1234"}}'


@pytest.fixture
async def sender() -> AsyncIterator[AiohttpSender]:
    sender = AiohttpSender(8, allow_networks=["127.0.0.0/8"],
                           resolver=StaticResolver({"hooks.test": ["127.0.0.1"]}))
    yield sender
    await sender.aclose()


async def post(sender: AiohttpSender, url: str, timeout_s: float = 2.0,
               headers: dict[str, str] | None = None) -> SendResult:
    return await sender.send(url, BODY, headers or {}, timeout_s, allow_http=True)


async def test_posts_the_body_byte_for_byte_with_the_relay_headers(
    http_server: HTTPServer, sender: AiohttpSender,
) -> None:
    """JSON content type, relay/<version> user agent, extra headers, no compression ask."""
    http_server.expect_request("/hook", method="POST").respond_with_data("ok", status=202)
    result = await post(sender, http_server.url_for("/hook"),
                        headers={"X-Team": "licensing", "webhook-id": "evt_1"})
    assert (result.status, result.body, result.error, result.permanent) == (
        202, b"ok", None, False)
    assert result.duration_ms > 0
    [(request, _)] = http_server.log
    assert request.get_data() == BODY
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == f"relay/{__version__}"
    assert request.headers["X-Team"] == "licensing"
    assert request.headers["webhook-id"] == "evt_1"
    assert request.headers["Accept-Encoding"] == "identity"  # recorded raw, so never compressed
    assert "Cookie" not in request.headers


async def test_a_redirect_is_not_followed_and_is_a_failed_attempt(
    http_server: HTTPServer, sender: AiohttpSender, network_fence: NetworkFence,
) -> None:
    """302 to a private address: recorded with its status, nothing fetched from there."""
    http_server.expect_request("/hook").respond_with_data(
        "", status=302, headers={"Location": "http://10.0.0.1/admin"})
    result = await post(sender, http_server.url_for("/hook"))
    assert result.status == 302
    assert result.error == ("endpoint answered 302 redirecting to http://10.0.0.1/admin; "
                            "redirects are not followed")
    assert not result.permanent
    assert network_fence.attempts == ["127.0.0.1"]
    assert len(http_server.log) == 1


async def test_a_redirect_to_another_local_path_is_not_followed_either(
    http_server: HTTPServer, sender: AiohttpSender,
) -> None:
    """Even an allowed destination is not fetched: the receiver must fix its URL."""
    http_server.expect_request("/hook").respond_with_data(
        "", status=307, headers={"Location": http_server.url_for("/elsewhere")})
    http_server.expect_request("/elsewhere").respond_with_data("should not be reached")
    result = await post(sender, http_server.url_for("/hook"))
    assert result.status == 307
    assert "not followed" in str(result.error)
    assert [request.path for request, _ in http_server.log] == ["/hook"]


async def test_the_answer_is_read_to_at_most_4_kib(
    http_server: HTTPServer, sender: AiohttpSender,
) -> None:
    """A receiver answering 1 MiB costs the relay 4 KiB, and the next send still works."""
    http_server.expect_request("/big").respond_with_data(b"x" * (1024 * 1024))
    http_server.expect_request("/chunked").respond_with_handler(
        lambda request: Response(iter([b"y" * 1000] * 1000)))
    for path, byte in (("/big", b"x"), ("/chunked", b"y")):
        result = await post(sender, http_server.url_for(path))
        assert (result.status, result.error) == (200, None)
        assert result.body == byte * MAX_RESPONSE_BYTES


async def test_a_compressed_answer_is_recorded_as_sent_not_inflated(
    http_server: HTTPServer, sender: AiohttpSender,
) -> None:
    """No decompression: a gzip bomb stays 4 KiB of gzip bytes."""
    bomb = gzip.compress(b"\0" * (8 * 1024 * 1024))
    http_server.expect_request("/hook").respond_with_data(
        bomb, headers={"Content-Encoding": "gzip"})
    result = await post(sender, http_server.url_for("/hook"))
    assert (result.status, result.error) == (200, None)
    assert result.body == bomb[:MAX_RESPONSE_BYTES]


@pytest.mark.parametrize(("status", "value"), [(503, "120"),
                                               (429, "Wed, 21 Oct 2015 07:28:00 GMT")])
async def test_retry_after_is_recorded(
    status: int, value: str, http_server: HTTPServer, sender: AiohttpSender,
) -> None:
    """The worker honours Retry-After, so the sender hands it over verbatim."""
    http_server.expect_request("/hook").respond_with_data(
        "busy", status=status, headers={"Retry-After": value})
    result = await post(sender, http_server.url_for("/hook"))
    assert (result.status, result.retry_after, result.body, result.error) == (
        status, value, b"busy", None)


async def test_cookies_are_not_kept_between_deliveries(
    http_server: HTTPServer, sender: AiohttpSender,
) -> None:
    """One endpoint cannot plant state that the relay sends back (or to another)."""
    http_server.expect_request("/hook").respond_with_data(
        "ok", headers={"Set-Cookie": "session=abc; Path=/"})
    for _ in range(2):
        await post(sender, http_server.url_for("/hook"))
    assert all("Cookie" not in request.headers for request, _ in http_server.log)


def _keep_alive(conn: socket.socket, release: threading.Event) -> None:
    while read_request(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


async def test_connections_are_kept_alive_and_reused(
    raw_server: Callable[[Behaviour], RawServer], sender: AiohttpSender,
    network_fence: NetworkFence,
) -> None:
    """Ten deliveries to one HTTP/1.1 endpoint open one connection."""
    server = raw_server(_keep_alive)
    for _ in range(10):
        assert (await post(sender, server.url)).status == 200
    assert network_fence.attempts == ["127.0.0.1"]
    assert server.connections == 1


async def test_a_timeout_is_reported_with_the_endpoint_timeout(
    raw_server: Callable[[Behaviour], RawServer], sender: AiohttpSender,
) -> None:
    """A receiver that never answers costs exactly the endpoint's timeout."""
    def hang(conn: socket.socket, release: threading.Event) -> None:
        read_request(conn)
        release.wait(10)

    server = raw_server(hang)
    started = time.perf_counter()
    result = await post(sender, server.url, timeout_s=0.3)
    elapsed = time.perf_counter() - started
    assert result.error == "timed out after 0.3s"
    assert (result.status, result.permanent) == (None, False)
    assert 0.25 < elapsed < 2.0


async def test_a_slow_body_counts_against_the_same_timeout(
    raw_server: Callable[[Behaviour], RawServer], sender: AiohttpSender,
) -> None:
    """Headers in time but a trickling body: still bounded by the total timeout."""
    def trickle(conn: socket.socket, release: threading.Event) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
        release.wait(10)

    result = await post(sender, raw_server(trickle).url, timeout_s=0.3)
    assert result.error == "timed out after 0.3s"
    assert result.status == 200


async def test_connection_refused(sender: AiohttpSender) -> None:
    """Nothing listening: a short message naming the address, retried later."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = await post(sender, f"http://127.0.0.1:{port}/hook")
    assert result.error == f"connection refused by 127.0.0.1:{port}"
    assert (result.status, result.permanent) == (None, False)


def _reset(conn: socket.socket, release: threading.Event) -> None:
    read_request(conn)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()  # with a zero linger: RST instead of FIN


def _close_early(conn: socket.socket, release: threading.Event) -> None:
    read_request(conn)
    conn.close()


def _garbage(conn: socket.socket, release: threading.Event) -> None:
    read_request(conn)
    conn.sendall(b"SMTP ready\r\n\r\n")
    conn.close()


@pytest.mark.parametrize(("behaviour", "error"), [
    (_reset, "connection reset by peer"),
    (_close_early, "the endpoint closed the connection without a complete answer"),
    (_garbage, "invalid HTTP answer: Bad status line:"),
])
async def test_broken_exchanges_give_short_errors(
    behaviour: Behaviour, error: str, raw_server: Callable[[Behaviour], RawServer],
    sender: AiohttpSender,
) -> None:
    """Resets, early closes and non-HTTP answers are outcomes, not exceptions."""
    result = await post(sender, raw_server(behaviour).url)
    assert str(result.error).startswith(error), result.error
    assert "\n" not in str(result.error)
    assert (result.status, result.permanent) == (None, False)


async def test_a_dns_failure_is_reported_and_retried(sender: AiohttpSender) -> None:
    """An unknown name is a temporary failure: DNS may come back."""
    result = await post(sender, "http://nowhere.test/hook")
    assert result.error == "DNS failure: cannot resolve nowhere.test (Name or service not known)"
    assert not result.permanent


async def test_tls_to_a_plain_http_server_is_a_tls_error(
    http_server: HTTPServer, sender: AiohttpSender,
) -> None:
    """https:// to a port speaking plain HTTP."""
    http_server.expect_request("/hook").respond_with_data("ok")
    result = await post(sender, f"https://127.0.0.1:{http_server.port}/hook")
    assert str(result.error).startswith(f"TLS error with 127.0.0.1:{http_server.port}: "), (
        result.error)
    assert not result.permanent


async def test_tls_keeps_sni_and_host_on_the_hostname(
    tls_server: TlsServer, tls_files: tuple[Path, Path],
) -> None:
    """Connecting to the checked address keeps TLS on the name: SNI, certificate, Host."""
    context = ssl.create_default_context(cafile=str(tls_files[0]))
    sender = AiohttpSender(4, allow_networks=["127.0.0.0/8"], ssl_context=context,
                           resolver=StaticResolver({"hooks.test": ["127.0.0.1"]}))
    try:
        result = await sender.send(f"https://hooks.test:{tls_server.port}/hook", BODY, {}, 5.0)
    finally:
        await sender.aclose()
    assert (result.status, result.error, result.body) == (200, None, b"ok")
    assert tls_server.server_names == ["hooks.test"]
    assert f"Host: hooks.test:{tls_server.port}".encode() in tls_server.requests[0]


async def test_an_untrusted_certificate_is_a_tls_error(
    tls_server: TlsServer, sender: AiohttpSender,
) -> None:
    """Certificates are verified against the system's CAs by default."""
    result = await sender.send(f"https://hooks.test:{tls_server.port}/hook", BODY, {}, 5.0)
    assert str(result.error).startswith("TLS error: certificate of hooks.test rejected"), (
        result.error)
    assert not result.permanent


@pytest.mark.parametrize(("url", "error"), [
    ("ftp://hooks.test/hook", "invalid URL: deliveries need an http:// or https:// URL"),
    ("http://user:pw@hooks.test/hook", "invalid URL: credentials in the URL are not sent"),
    ("http:///hook", "invalid URL"),
])
async def test_unusable_urls_fail_permanently(
    url: str, error: str, sender: AiohttpSender, network_fence: NetworkFence,
) -> None:
    """No retry can fix the URL itself."""
    result = await post(sender, url)
    assert str(result.error).startswith(error), result.error
    assert result.permanent
    assert network_fence.attempts == []


async def test_many_concurrent_sends_share_one_session(
    http_server: HTTPServer, sender: AiohttpSender,
) -> None:
    """More sends than the connection cap wait for a connection instead of failing."""
    http_server.expect_request("/hook").respond_with_data("ok")
    results = await asyncio.gather(*(post(sender, http_server.url_for("/hook"))
                                     for _ in range(40)))
    assert {r.status for r in results} == {200}
    assert len(http_server.log) == 40


async def test_the_sender_reopens_after_aclose(
    http_server: HTTPServer, sender: AiohttpSender,
) -> None:
    """The app may run its lifespan twice on one sender (tests do): closing is not final."""
    http_server.expect_request("/hook").respond_with_data("ok")
    assert (await post(sender, http_server.url_for("/hook"))).status == 200
    await sender.aclose()
    await sender.aclose()
    assert (await post(sender, http_server.url_for("/hook"))).status == 200


async def test_from_config_takes_concurrency_and_allowed_networks(
    http_server: HTTPServer,
) -> None:
    """The app builds its sender from relay.yaml alone."""
    http_server.expect_request("/hook").respond_with_data("ok")
    url = http_server.url_for("/hook")
    config = Config(delivery=DeliveryConfig(concurrency=3, allow_networks=()),
                    endpoints=(EndpointConfig(name="e", url=url, allow_http=True),))
    sender = AiohttpSender.from_config(config)
    try:
        refused = await sender.send(url, BODY, {}, 2.0)
        assert refused.permanent
        sender.reconfigure(Config(delivery=DeliveryConfig(
            allow_networks=(ipaddress.ip_network("127.0.0.0/8"),))))
        assert (await sender.send(url, BODY, {}, 2.0)).status == 200
    finally:
        await sender.aclose()


@pytest.mark.parametrize("make", [
    lambda: AiohttpSender(4, allow_networks=["127.0.0.0/8"]),
    lambda: HttpxSender(4),
])
async def test_both_senders_agree_on_the_basics(
    make: Callable[[], AiohttpSender | HttpxSender], http_server: HTTPServer,
) -> None:
    """HttpxSender stays a drop-in comparison point for tests and benchmarks."""
    http_server.expect_request("/hook").respond_with_handler(
        lambda request: Response(request.get_data()[::-1], status=201,
                                 headers={"Retry-After": "7"}))
    sender = make()
    try:
        result = await sender.send(http_server.url_for("/hook"), BODY, {}, 2.0, allow_http=True)
    finally:
        await sender.aclose()
    assert (result.status, result.body, result.retry_after, result.error) == (
        201, BODY[::-1], "7", None)
