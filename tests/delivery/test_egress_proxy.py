"""Deliveries through `delivery.proxy`: a real proxy process, the SSRF rules still in force."""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from relay.config import parse_config
from relay.delivery.aiohttp_sender import AiohttpSender
from relay.delivery.egress import Egress
from relay.delivery.sender import SendResult
from tests.conftest import endpoint_yaml
from tests.delivery.helpers import NetworkFence, StaticResolver, TlsServer
from tests.forward_proxy import ForwardProxy
from tests.support import Receiver, RelayThread

pytestmark = pytest.mark.anyio

BODY = b'{"type": "license.created", "data": {"licenseKey": "ABCD-1234"}}'
PUBLIC = "93.184.216.34"  # what the relay's resolver says hooks.test is: a public address


@pytest.fixture
def make_proxy(tmp_path: Path) -> Iterator[Callable[..., ForwardProxy]]:
    started: list[ForwardProxy] = []

    def make(**options: Any) -> ForwardProxy:
        proxy = ForwardProxy(tmp_path / f"proxy-{len(started)}.log", **options)
        started.append(proxy)
        return proxy

    yield make
    for proxy in started:
        proxy.stop()


@pytest.fixture
async def senders() -> AsyncIterator[Callable[..., AiohttpSender]]:
    made: list[AiohttpSender] = []

    def make(proxy: ForwardProxy | str, *, allow: tuple[str, ...] = (),
             no_proxy: tuple[str, ...] = (), context: ssl.SSLContext | None = None,
             table: dict[str, list[str]] | None = None) -> AiohttpSender:
        url = proxy if isinstance(proxy, str) else proxy.url
        sender = AiohttpSender(4, allow_networks=allow, ssl_context=context,
                               resolver=StaticResolver(table or {
                                   "hooks.test": [PUBLIC], "evil.test": ["10.0.0.1"],
                                   "plain.test": ["127.0.0.1"]}),
                               egress=Egress.of(url, no_proxy))
        made.append(sender)
        return sender

    yield make
    for sender in made:
        await sender.aclose()


async def post(sender: AiohttpSender, url: str) -> SendResult:
    return await sender.send(url, BODY, {"webhook-id": "evt_1"}, 5.0, allow_http=True)


async def test_https_is_tunnelled_to_the_checked_address_with_tls_on_the_name(
    make_proxy: Callable[..., ForwardProxy], senders: Callable[..., AiohttpSender],
    tls_server: TlsServer, tls_files: tuple[Path, Path], network_fence: NetworkFence,
) -> None:
    """CONNECT names the address the relay resolved and allowed; SNI and Host stay the name.

    No network is allowed (`allow_networks` is empty): the proxy on 127.0.0.1 is
    reachable because it is the operator's proxy, and the destination because
    its address is public.
    """
    proxy = make_proxy(auth="relay:s3cret", hosts={PUBLIC: "127.0.0.1"})
    context = ssl.create_default_context(cafile=str(tls_files[0]))
    sender = senders(f"http://relay:s3cret@127.0.0.1:{proxy.port}", context=context)
    result = await post(sender, f"https://hooks.test:{tls_server.port}/hook")
    assert (result.status, result.error, result.body) == (200, None, b"ok")
    assert proxy.requests() == [{"method": "CONNECT", "target": f"{PUBLIC}:{tls_server.port}",
                                 "authorized": True}]
    assert tls_server.server_names == ["hooks.test"]
    assert f"Host: hooks.test:{tls_server.port}".encode() in tls_server.requests[0]
    assert BODY in tls_server.requests[0] or b"Content-Length: %d" % len(BODY) in (
        tls_server.requests[0])
    assert set(network_fence.attempts) == {"127.0.0.1"}


async def test_plain_http_goes_in_absolute_form_with_the_proxy_credentials(
    make_proxy: Callable[..., ForwardProxy], senders: Callable[..., AiohttpSender],
    http_server: HTTPServer,
) -> None:
    """The receiver gets the body and the relay's headers, never the proxy's credentials."""
    http_server.expect_request("/hook", method="POST").respond_with_data("ok", status=202)
    proxy = make_proxy(auth="relay:s3cret", hosts={"plain.test": "127.0.0.1"})
    sender = senders(f"http://relay:s3cret@127.0.0.1:{proxy.port}", allow=("127.0.0.0/8",))
    result = await post(sender, f"http://plain.test:{http_server.port}/hook")
    assert (result.status, result.error, result.body) == (202, None, b"ok")
    assert proxy.requests() == [{"method": "POST", "authorized": True,
                                 "target": f"http://plain.test:{http_server.port}/hook"}]
    [(request, _)] = http_server.log
    assert request.data == BODY and request.headers["webhook-id"] == "evt_1"
    assert "Proxy-Authorization" not in request.headers


@pytest.mark.parametrize("url", ["https://evil.test/hook", "http://evil.test/hook"])
async def test_a_refused_destination_never_reaches_the_proxy(
    url: str, make_proxy: Callable[..., ForwardProxy], senders: Callable[..., AiohttpSender],
) -> None:
    """The relay resolves the name itself and refuses a private address before asking."""
    proxy = make_proxy()
    result = await post(senders(proxy), url)
    assert result.error == ("refused destination: evil.test resolves to 10.0.0.1 (private "
                            "(RFC 1918)); list its network in delivery.allow_networks to "
                            "allow it")
    assert result.permanent
    assert proxy.requests() == []


async def test_proxy_failures_say_so_and_are_retried(
    make_proxy: Callable[..., ForwardProxy], senders: Callable[..., AiohttpSender],
    http_server: HTTPServer, free_tcp_port: int,
) -> None:
    """Wrong credentials, a proxy that cannot reach the destination, a proxy that is down."""
    proxy = make_proxy(auth="relay:s3cret")
    wrong = senders(f"http://relay:wrong@127.0.0.1:{proxy.port}", allow=("127.0.0.0/8",))
    tunnelled = await post(wrong, "https://hooks.test/hook")
    assert tunnelled.error == ("proxy error: the proxy answered 407 Proxy Authentication "
                               "Required to CONNECT; check delivery.proxy's credentials")
    plain = await post(wrong, f"http://plain.test:{http_server.port}/hook")
    assert plain.error == ("proxy error: the proxy answered 407 Proxy Authentication "
                           "Required; check delivery.proxy's credentials")
    failing = make_proxy(fail_first=2)
    sender = senders(failing, allow=("127.0.0.0/8",))
    tunnelled = await post(sender, "https://hooks.test/hook")
    assert tunnelled.error == ("proxy error: the proxy answered 502 Bad Gateway to CONNECT "
                               "(Proxy-Status: testproxy; error=destination_unavailable)")
    plain = await post(sender, f"http://plain.test:{http_server.port}/hook")
    assert plain.error == ("proxy error: the proxy answered 502 Bad Gateway "
                           "(Proxy-Status: testproxy; error=destination_unavailable)")
    down = await post(senders(f"http://127.0.0.1:{free_tcp_port}"), "https://hooks.test/h")
    assert down.error == f"proxy error: connection refused by 127.0.0.1:{free_tcp_port}"
    assert not any(r.permanent for r in (tunnelled, plain, down))


async def test_no_proxy_hosts_go_direct(
    make_proxy: Callable[..., ForwardProxy], senders: Callable[..., AiohttpSender],
    http_server: HTTPServer,
) -> None:
    """A listed name, a name under a listed domain, and a listed network skip the proxy."""
    http_server.expect_request("/hook", method="POST").respond_with_data("ok")
    proxy = make_proxy()
    sender = senders(proxy, allow=("127.0.0.0/8",), no_proxy=("test", "127.0.0.0/8"),
                     table={"plain.test": ["127.0.0.1"]})
    for host in ("plain.test", "127.0.0.1"):
        result = await post(sender, f"http://{host}:{http_server.port}/hook")
        assert (result.status, result.error) == (200, None)
    assert proxy.requests() == []
    assert len(http_server.log) == 2


def test_the_proxy_url_is_checked_and_its_password_never_shown() -> None:
    config = parse_config("delivery:\n  proxy: http://relay:s%40cret@proxy.internal:3128\n"
                          "  no_proxy: [.internal, 10.0.0.0/8, crm.example.com]\n")
    assert config.delivery.model_dump(mode="json")["proxy"] == (
        "http://relay:***@proxy.internal:3128")
    assert "s%40cret" not in config.summary() and "s%40cret" not in repr(config)
    assert config.delivery.no_proxy == ("internal", "10.0.0.0/8", "crm.example.com")
    egress = Egress.of(config.delivery.proxy, config.delivery.no_proxy)
    assert egress.authorization == "Basic " + base64.b64encode(b"relay:s@cret").decode()
    assert not egress.applies("crm.internal") and not egress.applies("10.1.2.3")
    assert egress.applies("notinternal") and egress.applies("api.example.com")


@pytest.mark.both_backends
def test_a_relay_delivers_through_its_proxy_and_retries_the_proxy_failure(
    make_proxy: Callable[..., ForwardProxy], make_relay: Callable[..., RelayThread],
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """relay.yaml takes the proxy's password from the environment; a failure is recorded."""
    proxy = make_proxy(auth="relay:env-s3cret", fail_first=1)
    monkeypatch.setenv("TEST_PROXY_PASSWORD", "env-s3cret")
    relay = make_relay(
        endpoint_yaml("crm", receiver.url + "/hooks"),
        f"  proxy: http://relay:${{TEST_PROXY_PASSWORD}}@127.0.0.1:{proxy.port}\n")
    response = relay.post(json.dumps({"type": "license.created", "data": {"seats": 5}}))
    assert response.status_code == 202
    relay.wait_statuses({"delivered": 1})
    first, second = relay.rows("SELECT error, status_code FROM attempts ORDER BY id")
    assert first == ("proxy error: the proxy answered 502 Bad Gateway (Proxy-Status: "
                     "testproxy; error=destination_unavailable)", 502)
    assert second == (None, 200)
    [request] = receiver.wait_for(1)
    assert request.header("proxy-authorization") is None
    assert [r["authorized"] for r in proxy.requests()] == [True, True]
