"""Outbound safety: which addresses a delivery may connect to (the SSRF guard).

The relay POSTs to URLs from relay.yaml, and a URL's host can name, or resolve
to, the relay's own machine, the private network around it, or a cloud metadata
service that hands out credentials. Whoever can edit an endpoint URL (or the DNS
of its host) must not be able to reach those through the relay, so destinations
are refused unless the operator lists their network in `delivery.allow_networks`.

The check must apply to the address actually connected to, not to the one seen
at check time, or DNS rebinding (a name answering a public address first and
127.0.0.1 a second later) walks straight past it. So the guard lives inside
aiohttp's connection path rather than in front of it:

* `classify()` is a pure function: why an address is special (loopback,
  private, link-local, metadata, ...), or None for a public address. IPv6 forms
  that carry an IPv4 address (mapped `::ffff:a.b.c.d`, IPv4-compatible,
  NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by the IPv4 inside.
* `DestinationPolicy` adds the operator's `allow_networks` to that. An entry
  admits exactly its own addresses: the embedded IPv4 above is used to refuse,
  never to admit (see `DestinationPolicy`).
* `GuardedResolver` wraps aiohttp's resolver: it resolves once, drops every
  refused address, and raises `DestinationRefused` when none is left. aiohttp
  connects only to the addresses a resolver returns, and keeps TLS SNI and the
  Host header on the URL's hostname, so nothing unchecked is ever dialled.
* `GuardedResolver.checked` does the same for a delivery through
  `delivery.proxy`, before the proxy is asked (`relay.delivery.egress`); the
  proxy's own address and port are the one exemption (`trust`).
* `GuardedResolver.socket_factory` re-checks the address each socket is about
  to connect to (aiohttp's `socket_factory` hook). It is the last line: it
  also covers IP-literal URLs, which aiohttp never sends through a resolver.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.connector import AddrInfoType
from aiohttp.resolver import DefaultResolver

from relay.exceptions import RelayError

__all__ = [
    "CHECKED_TTL_S",
    "METADATA_ADDRESSES",
    "DestinationPolicy",
    "DestinationRefused",
    "GuardedResolver",
    "IPAddress",
    "Network",
    "classify",
    "embedded_ipv4",
    "parse_ip",
]

CHECKED_TTL_S = 10.0  # as long as aiohttp's DNS cache keeps a direct delivery's answers
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_v4 = ipaddress.IPv4Network
_v6 = ipaddress.IPv6Network

#: Cloud instance metadata services: they answer with credentials, so they stay
#: refused even inside a broad allowed network unless listed as a single host.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset({
    ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack, Oracle, DigitalOcean
    ipaddress.ip_address("169.254.170.2"),    # AWS ECS task metadata
    ipaddress.ip_address("fd00:ec2::254"),    # AWS IMDS over IPv6
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
})

# Order matters only for the wording: the first block containing an address names it.
_V4_BLOCKS: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_v4("0.0.0.0/32"), "unspecified"),  # Linux connects 0.0.0.0 to the local host
    (_v4("0.0.0.0/8"), "reserved ('this network')"),
    (_v4("10.0.0.0/8"), "private (RFC 1918)"),
    (_v4("100.64.0.0/10"), "shared address space (RFC 6598, carrier-grade NAT)"),
    (_v4("127.0.0.0/8"), "loopback"),
    (_v4("169.254.0.0/16"), "link-local"),
    (_v4("172.16.0.0/12"), "private (RFC 1918)"),
    (_v4("192.0.0.0/24"), "reserved (IETF protocol assignments)"),
    (_v4("192.0.2.0/24"), "reserved (documentation)"),
    (_v4("192.88.99.0/24"), "reserved (6to4 relay anycast)"),
    (_v4("192.168.0.0/16"), "private (RFC 1918)"),
    (_v4("198.18.0.0/15"), "reserved (benchmarking)"),
    (_v4("198.51.100.0/24"), "reserved (documentation)"),
    (_v4("203.0.113.0/24"), "reserved (documentation)"),
    (_v4("224.0.0.0/4"), "multicast"),
    (_v4("255.255.255.255/32"), "broadcast"),
    (_v4("240.0.0.0/4"), "reserved"),
)

_V6_BLOCKS: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_v6("::/128"), "unspecified"),
    (_v6("::1/128"), "loopback"),
    (_v6("100::/64"), "reserved (discard-only)"),
    (_v6("64:ff9b:1::/48"), "reserved (local-use NAT64)"),
    (_v6("2001::/23"), "reserved (IETF protocol assignments, Teredo)"),
    (_v6("2001:db8::/32"), "reserved (documentation)"),
    (_v6("3fff::/20"), "reserved (documentation)"),
    (_v6("fc00::/7"), "private (unique local, ULA)"),
    (_v6("fe80::/10"), "link-local"),
    (_v6("fec0::/10"), "site-local (deprecated)"),
    (_v6("ff00::/8"), "multicast"),
)
_V6_GLOBAL_UNICAST = _v6("2000::/3")
_V6_MAPPED = _v6("::ffff:0:0/96")
_V6_TRANSLATED = _v6("::ffff:0:0:0/96")  # SIIT, RFC 2765
_V6_COMPATIBLE = _v6("::/96")  # deprecated IPv4-compatible, RFC 4291
_V6_NAT64 = _v6("64:ff9b::/96")  # well-known NAT64 prefix, RFC 6052
_V6_6TO4 = _v6("2002::/16")


def parse_ip(text: str) -> IPAddress | None:
    """The address in `text`, or None if it is not one; an IPv6 zone (`%eth0`) is dropped."""
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 form carries (and the form's name), if any.

    Such an address ends up at the IPv4 host (directly for mapped, through a
    NAT64 or 6to4 gateway otherwise), so that host is what must be judged.
    """
    packed = address.packed
    if address in _V6_MAPPED:
        return ipaddress.IPv4Address(packed[12:]), "IPv4-mapped"
    if address in _V6_TRANSLATED:
        return ipaddress.IPv4Address(packed[12:]), "IPv4-translated"
    if address in _V6_NAT64:
        return ipaddress.IPv4Address(packed[12:]), "NAT64"
    if address in _V6_6TO4:
        return ipaddress.IPv4Address(packed[2:6]), "6to4"
    if address in _V6_COMPATIBLE and int(address) > 1:
        return ipaddress.IPv4Address(packed[12:]), "IPv4-compatible"
    return None


def classify(address: IPAddress) -> str | None:
    """Why `address` is not an ordinary public destination, or None if it is one.

    Pure and independent of configuration: `DestinationPolicy` decides whether
    the operator allowed it anyway.
    """
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        address = ipaddress.IPv6Address(int(address))  # fe80::1%eth0 -> fe80::1
    if address in METADATA_ADDRESSES:
        return "a cloud metadata service"
    if isinstance(address, ipaddress.IPv4Address):
        for network, label in _V4_BLOCKS:
            if address in network:
                return label
        return None
    embedded = embedded_ipv4(address)
    if embedded is not None:
        inner, form = embedded
        reason = classify(inner)
        if reason is not None:
            return f"{reason}, as {form} {inner}"
        if form == "IPv4-compatible":
            return "reserved (deprecated IPv4-compatible form)"
        return None
    for network6, label in _V6_BLOCKS:
        if address in network6:
            return label
    if address not in _V6_GLOBAL_UNICAST:
        return "reserved (not global unicast)"
    return None


def _as_connected(address: IPAddress) -> IPAddress:
    """The socket address `address` stands for: mapped IPv4 unmapped, all else as is.

    `::ffff:a.b.c.d` is the one IPv6 form that *is* its IPv4 address: a
    dual-stack socket connecting to it sends IPv4 packets to a.b.c.d itself,
    with no gateway in between (RFC 4291 2.5.5.2, RFC 3493 3.7), so it is
    matched as that IPv4 address. Every other
    form that embeds an IPv4 address (translated, compatible, NAT64, 6to4) is
    a distinct IPv6 destination that some gateway or relay may or may not carry
    to that IPv4 host; it stays IPv6.
    """
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        if mapped is not None:
            return mapped
    return address


def _as_connected_network(network: Network) -> Network:
    """An entry written in mapped form (`::ffff:127.0.0.0/104`) as the IPv4 network it is."""
    if (isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96
            and network.subnet_of(_V6_MAPPED)):
        return ipaddress.IPv4Network(
            (int(network.network_address) & 0xFFFFFFFF, network.prefixlen - 96))
    return network


def _is_metadata(address: IPAddress) -> bool:
    if address in METADATA_ADDRESSES:
        return True
    embedded = embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else None
    return embedded is not None and embedded[0] in METADATA_ADDRESSES


@dataclass(frozen=True, slots=True)
class DestinationPolicy:
    """`classify()` plus the operator's `delivery.allow_networks` exceptions.

    An entry admits exactly the addresses inside it, compared as connected to
    (`_as_connected`: only the IPv4-mapped form is taken as its IPv4 address).
    So `127.0.0.0/8` admits `127.0.0.1` and `::ffff:127.0.0.1`, but not
    `::ffff:0:7f00:1`, `::7f00:1`, `64:ff9b::7f00:1` or `2002:7f00:1::1`:
    embedded IPv4 makes those refused (see `classify()`), never allowed; an
    operator who means them lists them as IPv6.

    A metadata address, or an IPv6 form embedding one, is allowed only by an
    entry for that single host (`169.254.169.254/32`): allowing
    `169.254.0.0/16` for a link-local device, `100.64.0.0/10` for a VPN or
    `64:ff9b::/96` for a NAT64 network must not hand out cloud credentials too.
    """

    allow_networks: tuple[Network, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "allow_networks",
                           tuple(_as_connected_network(n) for n in self.allow_networks))

    @classmethod
    def of(cls, networks: Iterable[Network | str]) -> DestinationPolicy:
        """A policy from CIDRs, as objects or strings (`"127.0.0.0/8"`)."""
        return cls(tuple(ipaddress.ip_network(n, strict=False) if isinstance(n, str) else n
                         for n in networks))

    def refusal(self, address: IPAddress) -> str | None:
        """Why a connection to `address` is refused, or None when it is allowed."""
        if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
            address = ipaddress.IPv6Address(int(address))
        reason = classify(address)
        if reason is None or self._allowed(_as_connected(address)):
            return None
        return reason

    def _allowed(self, address: IPAddress) -> bool:
        metadata = _is_metadata(address)
        for network in self.allow_networks:
            if address.version == network.version and address in network and (
                    not metadata or network.prefixlen == network.max_prefixlen):
                return True
        return False

    def refusal_for(self, host: str) -> str | None:
        """`refusal()` for an address in text form; text that is no address is refused."""
        address = parse_ip(host)
        if address is None:
            return "not an IP address"
        return self.refusal(address)


class DestinationRefused(RelayError, OSError):
    """A delivery's destination is refused by the outbound safety policy.

    An `OSError` only so that aiohttp carries it through its connection path
    (it wraps resolver and socket errors as connector errors with this as the
    cause); callers catch it as a `RelayError`. Retrying cannot help: the fix
    is the endpoint URL or `delivery.allow_networks`.
    """

    def __init__(self, host: str, refused: Sequence[tuple[str, str]]) -> None:
        self.host = host
        self.refused = tuple(refused)
        if not refused:
            detail = f"{host} has no address"
        elif len(refused) == 1 and refused[0][0] == host:
            detail = f"{host} is {refused[0][1]}"
        else:
            listed = ", ".join(f"{address} ({reason})" for address, reason in refused[:4])
            more = f" and {len(refused) - 4} more" if len(refused) > 4 else ""
            detail = f"{host} resolves to {listed}{more}"
        super().__init__(
            f"refused destination: {detail}; list its network in delivery.allow_networks "
            "to allow it")


class GuardedResolver(AbstractResolver):
    """An aiohttp resolver that returns only addresses the policy allows.

    `inner` resolves names (aiohttp's default resolver when None; tests inject
    a fixed mapping). `policy` may be replaced at any time (config reload); the
    next resolution and the next socket use the new one.
    """

    def __init__(self, policy: DestinationPolicy,
                 inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self._inner = inner
        self._owns_inner = inner is None
        self._trusted: tuple[str, int] | None = None
        self._trusted_addresses: set[tuple[str, int]] = set()
        self._checked: dict[tuple[str, int], tuple[float, list[ResolveResult]]] = {}

    def trust(self, proxy: tuple[str, int] | None) -> None:
        """Exempt the operator's proxy (host, port) from the policy, and forget checked names.

        Only that port of the proxy's addresses is exempt, and only as the
        name (or address) relay.yaml gives: an endpoint URL naming another
        port of the proxy's machine is judged like any other destination.
        """
        self._trusted = proxy
        self._trusted_addresses.clear()
        if proxy is not None and parse_ip(proxy[0]) is not None:
            self._trusted_addresses.add(proxy)
        self._checked.clear()

    async def _answers(self, host: str, port: int,
                       family: socket.AddressFamily) -> list[ResolveResult]:
        if self._inner is None:
            self._inner = DefaultResolver()  # needs the running loop, so created here
        return await self._inner.resolve(host, port, family)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._answers(host, port, family)
        if self._trusted == (host, port):
            self._trusted_addresses.update((a["host"], port) for a in answers)
            return answers
        return self._filter(host, answers)

    async def checked(self, host: str, port: int) -> list[ResolveResult]:
        """A destination's allowed addresses, for a delivery through the proxy.

        The proxy is asked for one of these, never for what it would resolve
        itself; answers are kept `CHECKED_TTL_S` (aiohttp's DNS cache, which
        direct deliveries use, does not see these lookups).
        """
        now = time.monotonic()
        cached = self._checked.get((host, port))
        if cached is not None and cached[0] > now:
            return cached[1]
        allowed = self._filter(host, await self._answers(host, port, socket.AF_UNSPEC))
        if len(self._checked) >= 1024:
            self._checked.clear()
        self._checked[(host, port)] = (now + CHECKED_TTL_S, allowed)
        return allowed

    def _filter(self, host: str, answers: list[ResolveResult]) -> list[ResolveResult]:
        policy = self.policy
        allowed: list[ResolveResult] = []
        refused: list[tuple[str, str]] = []
        for answer in answers:
            reason = policy.refusal_for(answer["host"])
            if reason is None:
                allowed.append(answer)
            else:
                refused.append((answer["host"], reason))
        if not allowed:
            raise DestinationRefused(host, refused)
        return allowed

    async def close(self) -> None:
        """Close the resolver this guard made; the next lookup makes a new one."""
        if self._owns_inner and self._inner is not None:
            inner, self._inner = self._inner, None
            await inner.close()

    def socket_factory(self, addr_info: AddrInfoType) -> socket.socket:
        """Create the socket for one connection attempt, after checking its address.

        Given to `aiohttp.TCPConnector(socket_factory=...)`: whatever path an
        address took (resolver, IP literal, DNS cache), it is checked here
        right before the connect, under the current policy.
        """
        family, type_, proto, _, sockaddr = addr_info
        host = str(sockaddr[0])
        if (host, sockaddr[1]) in self._trusted_addresses:
            return socket.socket(family=family, type=type_, proto=proto)
        reason = self.policy.refusal_for(host)
        if reason is not None:
            raise DestinationRefused(host, [(host, reason)])
        return socket.socket(family=family, type=type_, proto=proto)
