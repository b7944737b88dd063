"""SSRF guard end to end: AiohttpSender refuses disguised loopback and private targets.

Refusals must happen before any connection: the `network_fence` fixture
records every connect, so "no attempt" is asserted, not assumed. Allowed
destinations are real servers on 127.0.0.1 (and ::1 when the machine has it).
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable

import pytest
from pytest_httpserver import HTTPServer

from relay.config import Config, DeliveryConfig
from relay.delivery.aiohttp_sender import AiohttpSender
from relay.delivery.sender import SendResult
from relay.delivery.ssrf import DestinationPolicy, DestinationRefused, GuardedResolver
from tests.delivery.helpers import NetworkFence, StaticResolver

pytestmark = pytest.mark.anyio

LOOPBACK = ["127.0.0.0/8", "::1/128"]
HOSTS = {
    "loopback.test": ["127.0.0.1"],
    "loopback6.test": ["::1"],
    "private.test": ["10.0.0.1"],
    "metadata.test": ["169.254.169.254"],
    "mixed.test": ["10.0.0.1", "169.254.169.254", "127.0.0.1"],
}

SenderFactory = Callable[..., AiohttpSender]


@pytest.fixture
async def make_sender() -> AsyncIterator[SenderFactory]:
    senders: list[AiohttpSender] = []

    def make(allow: list[str] | None = None, **kwargs: object) -> AiohttpSender:
        kwargs.setdefault("resolver", StaticResolver(HOSTS))
        sender = AiohttpSender(8, allow_networks=allow or [], **kwargs)  # type: ignore[arg-type]
        senders.append(sender)
        return sender

    yield make
    for sender in senders:
        await sender.aclose()


def ok_server(server: HTTPServer) -> HTTPServer:
    server.expect_request("/hook", method="POST").respond_with_data("ok")
    return server


async def post(sender: AiohttpSender, url: str) -> SendResult:
    return await sender.send(url, b'{"type": "t"}', {}, 2.0, allow_http=True)


def assert_refused(result: SendResult, *fragments: str) -> None:
    assert result.permanent, result
    assert result.status is None
    assert result.error is not None
    assert result.error.startswith("refused destination: "), result.error
    for fragment in fragments:
        assert fragment in result.error, result.error


@pytest.mark.parametrize(("host", "fragments"), [
    ("127.0.0.1", ["127.0.0.1 is loopback"]),
    ("localhost", ["localhost resolves to", "loopback"]),
    ("[::1]", ["::1 is loopback"]),
    ("[::ffff:127.0.0.1]", ["loopback, as IPv4-mapped 127.0.0.1"]),
    ("loopback.test", ["loopback.test resolves to 127.0.0.1 (loopback)"]),
    ("0.0.0.0", ["0.0.0.0 is unspecified"]),
    ("[::]", [":: is unspecified"]),
    ("0x7f.1", ["resolves to 127.0.0.1 (loopback)"]),
    ("127.1", ["not a canonical IP address"]),
    ("2130706433", ["not a canonical IP address"]),
])
async def test_loopback_in_any_disguise_is_refused_when_not_allowed(
    host: str, fragments: list[str], http_server: HTTPServer, network_fence: NetworkFence,
    make_sender: SenderFactory,
) -> None:
    """A real server listens on 127.0.0.1 but is never reached: no connection is made."""
    ok_server(http_server)
    # localhost and 0x7f.1 go through the system resolver (the hosts file, no DNS).
    sender = make_sender(resolver=None) if host in ("localhost", "0x7f.1") else make_sender()
    result = await post(sender, f"http://{host}:{http_server.port}/hook")
    assert_refused(result, *fragments)
    assert network_fence.attempts == []
    assert http_server.log == []


@pytest.mark.parametrize(("url", "fragment"), [
    ("http://10.0.0.1/hook", "10.0.0.1 is private (RFC 1918)"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata service"),
    ("http://[fd00:ec2::254]/", "a cloud metadata service"),
    ("http://100.100.100.200/", "a cloud metadata service"),
    ("http://100.64.0.1/", "shared address space"),
    ("http://192.168.1.1/", "private (RFC 1918)"),
    ("http://[fe80::1%25eth0]/", "link-local"),
    ("http://[fc00::1]/", "unique local"),
    ("http://224.0.0.1/", "multicast"),
    ("http://[64:ff9b::a9fe:a9fe]/", "metadata service, as NAT64"),
    ("http://[2002:a00:1::1]/", "private (RFC 1918), as 6to4 10.0.0.1"),
    ("http://private.test/", "private.test resolves to 10.0.0.1 (private (RFC 1918))"),
    ("http://metadata.test/", "169.254.169.254 (a cloud metadata service)"),
])
async def test_private_and_metadata_targets_are_refused_before_connecting(
    url: str, fragment: str, network_fence: NetworkFence, make_sender: SenderFactory,
) -> None:
    """Never a packet towards 10.x or 169.254.169.254: the refusal comes first."""
    result = await post(make_sender(LOOPBACK), url)
    assert_refused(result, fragment, "delivery.allow_networks")
    assert network_fence.attempts == []


async def test_https_targets_are_guarded_too(network_fence: NetworkFence,
                                             make_sender: SenderFactory) -> None:
    """The guard is not an http:// feature: https://10.0.0.1 is refused the same way."""
    result = await make_sender().send("https://private.test/hook", b"{}", {}, 2.0)
    assert_refused(result, "10.0.0.1")
    assert network_fence.attempts == []


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "loopback.test",
                                  "[::ffff:127.0.0.1]"])
async def test_loopback_is_reached_when_allowed(
    host: str, http_server: HTTPServer, network_fence: NetworkFence,
    make_sender: SenderFactory,
) -> None:
    """With 127.0.0.0/8 in allow_networks the same URLs deliver to the real server."""
    if host.startswith("[") and not _ipv6_sockets():
        pytest.skip("IPv6 sockets are not available on this machine")
    ok_server(http_server)
    sender = make_sender(LOOPBACK, resolver=None) if host == "localhost" else make_sender(
        LOOPBACK)
    result = await post(sender, f"http://{host}:{http_server.port}/hook")
    assert (result.status, result.error, result.body) == (200, None, b"ok")
    assert len(http_server.log) == 1
    assert network_fence.attempts  # it did connect, to the loopback only


async def test_ipv6_loopback_is_refused_then_reached_when_allowed(
    http_server_v6: HTTPServer, network_fence: NetworkFence, make_sender: SenderFactory,
) -> None:
    """[::1] and a name resolving to ::1: refused by default, delivered with ::1/128."""
    ok_server(http_server_v6)
    for url in (f"http://[::1]:{http_server_v6.port}/hook",
                f"http://loopback6.test:{http_server_v6.port}/hook"):
        assert_refused(await post(make_sender(["127.0.0.0/8"]), url), "loopback")
        assert network_fence.attempts == []
        result = await post(make_sender(LOOPBACK), url)
        assert (result.status, result.error) == (200, None)
        assert network_fence.attempts == ["::1"]
        network_fence.attempts.clear()
    assert len(http_server_v6.log) == 2


@pytest.mark.parametrize("address", ["::ffff:0:7f00:1", "::7f00:1", "64:ff9b::7f00:1",
                                     "2002:7f00:1::1"])
async def test_an_ipv4_allow_entry_does_not_open_ipv6_forms_that_embed_loopback(
    address: str, http_server: HTTPServer, network_fence: NetworkFence,
    make_sender: SenderFactory,
) -> None:
    """127.0.0.0/8 is allowed; a name or literal for these IPv6 addresses is still refused.

    They are not 127.0.0.1 on the wire (a SIIT/NAT64 gateway or 6to4 relay
    would carry them on), so the refusal must come before any connect.
    """
    ok_server(http_server)
    resolver = StaticResolver({"embedded.test": [address]})
    for host in ("embedded.test", f"[{address}]"):
        sender = make_sender(["127.0.0.0/8"], resolver=resolver)
        result = await post(sender, f"http://{host}:{http_server.port}/hook")
        assert_refused(result, "loopback, as ", "delivery.allow_networks")
    assert network_fence.attempts == []
    assert http_server.log == []
    result = await post(make_sender(["127.0.0.0/8"]), f"http://loopback.test:{http_server.port}/hook")
    assert (result.status, result.error) == (200, None)


async def test_a_name_with_forbidden_and_allowed_addresses_connects_only_to_allowed_ones(
    http_server: HTTPServer, network_fence: NetworkFence, make_sender: SenderFactory,
) -> None:
    """Resolve once, drop what is refused, dial only what was checked."""
    ok_server(http_server)
    result = await post(make_sender(["127.0.0.0/8"]), f"http://mixed.test:{http_server.port}/hook")
    assert (result.status, result.error) == (200, None)
    assert set(network_fence.attempts) == {"127.0.0.1"}


async def test_the_host_header_keeps_the_hostname(
    http_server: HTTPServer, make_sender: SenderFactory,
) -> None:
    """Connecting to the checked address does not rewrite Host to that address."""
    ok_server(http_server)
    await post(make_sender(LOOPBACK), f"http://loopback.test:{http_server.port}/hook")
    [(request, _)] = http_server.log
    assert request.headers["Host"] == f"loopback.test:{http_server.port}"


class RebindingResolver(StaticResolver):
    """Answers 127.0.0.1 to the first lookup and 10.0.0.1 to every later one."""

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list:  # type: ignore[type-arg]
        answer = await super().resolve(host, port, family)
        self.table[host] = ["10.0.0.1"]
        return answer


async def test_dns_rebinding_cannot_reach_a_forbidden_address(
    http_server: HTTPServer, network_fence: NetworkFence, make_sender: SenderFactory,
) -> None:
    """Whatever a name answers later, only addresses checked at lookup are dialled."""
    http_server.expect_request("/hook").respond_with_data("ok", headers={"Connection": "close"})
    resolver = RebindingResolver({"rebind.test": ["127.0.0.1"]})
    sender = make_sender(["127.0.0.0/8"], resolver=resolver)
    url = f"http://rebind.test:{http_server.port}/hook"
    results = [await post(sender, url) for _ in range(3)]
    assert results[0].status == 200
    for result in results[1:]:
        assert result.status == 200 or (result.permanent and "10.0.0.1" in str(result.error))
    assert set(network_fence.attempts) == {"127.0.0.1"}
    # A fresh lookup (a new pool after aclose) gets the rebound answer and refuses it.
    await sender.aclose()
    assert_refused(await post(sender, url), "10.0.0.1")
    assert set(network_fence.attempts) == {"127.0.0.1"}


async def test_the_socket_factory_refuses_an_unchecked_address() -> None:
    """The last line: whatever path an address took, the connect itself is checked."""
    guard = GuardedResolver(DestinationPolicy.of(["127.0.0.0/8"]))
    for address in (("10.0.0.1", 80), ("169.254.169.254", 80), ("::1", 80, 0, 0)):
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        with pytest.raises(DestinationRefused):
            guard.socket_factory((family, socket.SOCK_STREAM, 6, "", address))
    with guard.socket_factory((socket.AF_INET, socket.SOCK_STREAM, 6, "",
                               ("127.0.0.1", 80))) as sock:
        assert sock.family == socket.AF_INET


async def test_the_resolver_raises_when_every_answer_is_refused() -> None:
    """No allowed address left: a `DestinationRefused` listing each refused one."""
    guard = GuardedResolver(DestinationPolicy(), StaticResolver(HOSTS))
    with pytest.raises(DestinationRefused) as caught:
        await guard.resolve("mixed.test", 443)
    assert [address for address, _ in caught.value.refused] == [
        "10.0.0.1", "169.254.169.254", "127.0.0.1"]
    allowed = await GuardedResolver(DestinationPolicy.of(["127.0.0.0/8"]),
                                    StaticResolver(HOSTS)).resolve("mixed.test", 443)
    assert [a["host"] for a in allowed] == ["127.0.0.1"]


async def test_plain_http_is_refused_when_the_endpoint_does_not_allow_it(
    http_server: HTTPServer, network_fence: NetworkFence, make_sender: SenderFactory,
) -> None:
    """`allow_http=False` refuses http:// at send time, whatever the config said."""
    ok_server(http_server)
    result = await make_sender(LOOPBACK).send(http_server.url_for("/hook"), b"{}", {}, 2.0,
                                              allow_http=False)
    assert_refused(result, "allow_http: true")
    assert network_fence.attempts == []


async def test_reconfigure_applies_a_tightened_allow_list_to_pooled_connections(
    http_server: HTTPServer, make_sender: SenderFactory,
) -> None:
    """After a reload drops 127.0.0.0/8, even a kept-alive connection is not reused."""
    ok_server(http_server)
    sender = make_sender(LOOPBACK)
    for host in ("127.0.0.1", "loopback.test"):
        assert (await post(sender, f"http://{host}:{http_server.port}/hook")).status == 200
    sender.reconfigure(Config(delivery=DeliveryConfig(allow_networks=())))
    for host in ("127.0.0.1", "loopback.test"):
        assert_refused(await post(sender, f"http://{host}:{http_server.port}/hook"),
                       "loopback")
    assert len(http_server.log) == 2


def _ipv6_sockets() -> bool:
    try:
        socket.socket(socket.AF_INET6).close()
    except OSError:
        return False
    return True
