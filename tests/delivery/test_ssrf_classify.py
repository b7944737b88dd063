"""The pure address classifier and the allow-list policy of relay.delivery.ssrf."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.delivery.ssrf import (
    METADATA_ADDRESSES,
    DestinationPolicy,
    DestinationRefused,
    classify,
    parse_ip,
)
from relay.exceptions import RelayError

IPv4 = ipaddress.IPv4Address
IPv6 = ipaddress.IPv6Address

REFUSED = [
    # IPv4
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "this network"),
    ("10.0.0.1", "private"),
    ("10.255.255.255", "private"),
    ("100.64.0.1", "shared address space"),
    ("100.127.255.254", "shared address space"),
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("169.254.0.1", "link-local"),
    ("169.254.169.254", "metadata"),
    ("169.254.170.2", "metadata"),
    ("100.100.100.200", "metadata"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.0.0.8", "reserved"),
    ("192.0.2.1", "documentation"),
    ("192.88.99.1", "6to4 relay"),
    ("192.168.1.1", "private"),
    ("198.18.0.1", "benchmarking"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    # IPv6
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("fe80::1", "link-local"),
    ("febf:ffff::1", "link-local"),
    ("fc00::1", "unique local"),
    ("fd12:3456:789a::1", "unique local"),
    ("fd00:ec2::254", "metadata"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("ff05::2", "multicast"),
    ("100::1", "discard"),
    ("2001:db8::1", "documentation"),
    ("2001::1", "Teredo"),
    ("3fff::1", "documentation"),
    ("64:ff9b:1::1", "local-use NAT64"),
    ("4000::1", "not global unicast"),
    ("::2:3:4:5:6", "not global unicast"),
    # IPv4 inside IPv6
    ("::ffff:127.0.0.1", "loopback, as IPv4-mapped 127.0.0.1"),
    ("::ffff:10.1.2.3", "private (RFC 1918), as IPv4-mapped"),
    ("::ffff:169.254.169.254", "metadata service, as IPv4-mapped"),
    ("::ffff:0.0.0.0", "unspecified, as IPv4-mapped"),
    ("::ffff:0:127.0.0.1", "loopback, as IPv4-translated"),
    ("::127.0.0.1", "loopback, as IPv4-compatible"),
    ("::10.0.0.1", "private (RFC 1918), as IPv4-compatible"),
    ("::8.8.8.8", "deprecated IPv4-compatible"),
    ("64:ff9b::127.0.0.1", "loopback, as NAT64"),
    ("64:ff9b::a9fe:a9fe", "metadata service, as NAT64 169.254.169.254"),
    ("2002:7f00:1::", "loopback, as 6to4 127.0.0.1"),
    ("2002:c0a8:101:1::1", "private (RFC 1918), as 6to4 192.168.1.1"),
]

PUBLIC = [
    "1.1.1.1", "8.8.8.8", "93.184.216.34", "100.63.255.255", "100.128.0.0", "172.15.255.255",
    "172.32.0.0", "192.167.255.255", "223.255.255.255", "169.253.255.255",
    "2606:4700:4700::1111", "2001:4860:4860::8888", "2a00:1450:4001::1",
    "::ffff:8.8.8.8", "64:ff9b::8.8.8.8", "2002:808:808::1",
]


@pytest.mark.parametrize(("text", "reason"), REFUSED)
def test_special_addresses_are_classified_with_a_reason(text: str, reason: str) -> None:
    """Loopback, private, link-local, metadata, reserved... in every written form."""
    address = ipaddress.ip_address(text)
    found = classify(address)
    assert found is not None, text
    assert reason in found
    assert DestinationPolicy().refusal(address) == found


@pytest.mark.parametrize("text", PUBLIC)
def test_public_addresses_are_not_classified(text: str) -> None:
    """Ordinary internet addresses, including mapped/NAT64/6to4 forms of them, pass."""
    assert classify(ipaddress.ip_address(text)) is None
    assert DestinationPolicy().refusal_for(text) is None


def test_zone_ids_are_ignored_for_classification() -> None:
    """`fe80::1%eth0` is link-local like `fe80::1`; a zone cannot disguise an address."""
    assert classify(IPv6("fe80::1%eth0")) == "link-local"
    assert DestinationPolicy().refusal_for("fe80::1%eth0") == "link-local"
    assert DestinationPolicy.of(["fe80::/10"]).refusal_for("fe80::1%eth0") is None


@pytest.mark.parametrize("text", ["localhost", "127.1", "2130706433", "0x7f000001", "", "::g"])
def test_text_that_is_not_a_canonical_address_is_refused(text: str) -> None:
    """The policy judges addresses only; anything else is refused, never guessed at."""
    assert parse_ip(text) is None
    assert DestinationPolicy.of(["0.0.0.0/0", "::/0"]).refusal_for(text) == "not an IP address"


def test_allow_networks_exempt_the_addresses_inside_them() -> None:
    """`delivery.allow_networks` lets an operator reach a receiver on this host or LAN."""
    policy = DestinationPolicy.of(["127.0.0.0/8", "::1/128", "10.1.0.0/16"])
    assert policy.refusal_for("127.0.0.1") is None
    assert policy.refusal_for("127.9.9.9") is None
    assert policy.refusal_for("::1") is None
    assert policy.refusal_for("10.1.2.3") is None
    assert policy.refusal_for("10.2.0.1") == "private (RFC 1918)"
    assert policy.refusal_for("192.168.0.1") == "private (RFC 1918)"
    assert policy.refusal_for("::2") is not None


def test_an_allowed_ipv4_network_also_allows_its_mapped_forms() -> None:
    """`::ffff:127.0.0.1` is the socket address 127.0.0.1, so 127.0.0.0/8 allows it."""
    policy = DestinationPolicy.of(["127.0.0.0/8"])
    assert policy.refusal_for("::ffff:127.0.0.1") is None
    assert policy.refusal_for("::ffff:127.9.9.9") is None
    assert policy.refusal_for("::ffff:10.0.0.1") is not None


# IPv4-translated, IPv4-compatible, NAT64 and 6to4 forms of 127.0.0.1: each is a
# different address, routed elsewhere (a SIIT or NAT64 gateway, a 6to4 relay).
LOOPBACK_IN_IPV6_FORMS = ["::ffff:0:7f00:1", "::7f00:1", "64:ff9b::7f00:1", "2002:7f00:1::1"]


@pytest.mark.parametrize("text", LOOPBACK_IN_IPV6_FORMS)
def test_an_ipv4_allow_entry_does_not_admit_ipv6_forms_that_embed_it(text: str) -> None:
    """127.0.0.0/8 admits 127.0.0.0/8 and its mapped form, not every IPv6 that embeds it."""
    policy = DestinationPolicy.of(["127.0.0.0/8"])
    reason = policy.refusal_for(text)
    assert reason is not None
    assert reason.startswith("loopback, as ")
    assert DestinationPolicy.of(["0.0.0.0/0"]).refusal_for(text) == reason


@pytest.mark.parametrize("text", LOOPBACK_IN_IPV6_FORMS)
def test_an_ipv6_allow_entry_for_the_form_itself_admits_it(text: str) -> None:
    """The operator can still allow such a form, by listing it as IPv6."""
    assert DestinationPolicy.of([f"{text}/128"]).refusal_for(text) is None
    assert DestinationPolicy.of(["::/0"]).refusal_for(text) is None


def test_an_ipv6_allow_entry_admits_exactly_its_addresses() -> None:
    """`::1/128` admits `::1` and nothing that merely embeds or maps to something else."""
    policy = DestinationPolicy.of(["::1/128"])
    assert policy.refusal_for("::1") is None
    for text in ("::2", "127.0.0.1", "::ffff:127.0.0.1", "::7f00:1", "fe80::1"):
        assert policy.refusal_for(text) is not None, text


def test_mapped_forms_are_matched_as_ipv4_on_both_sides() -> None:
    """`::ffff:a.b.c.d` is an IPv4 socket address, whichever way the entry or address is written."""
    written_mapped = DestinationPolicy.of(["::ffff:127.0.0.0/104"])
    assert written_mapped.refusal_for("127.0.0.1") is None
    assert written_mapped.refusal_for("::ffff:127.0.0.1") is None
    assert written_mapped.refusal_for("::ffff:0:7f00:1") is not None
    assert DestinationPolicy.of(["::/0"]).refusal_for("::ffff:127.0.0.1") is not None
    assert DestinationPolicy.of(["::/0"]).refusal_for("::ffff:10.0.0.1") is not None


@pytest.mark.parametrize(("text", "reason"), [
    ("64:ff9b::a9fe:a9fe", "a cloud metadata service, as NAT64 169.254.169.254"),
    ("2002:a00:1::", "private (RFC 1918), as 6to4 10.0.0.1"),
    ("2002:a9fe:a9fe::1", "a cloud metadata service, as 6to4 169.254.169.254"),
])
def test_embedded_ipv4_is_refused_as_what_it_embeds_even_when_the_ipv6_looks_global(
        text: str, reason: str) -> None:
    """6to4 addresses are inside 2000::/3; what they reach is the embedded IPv4 host."""
    address = ipaddress.ip_address(text)
    assert classify(address) == reason
    assert DestinationPolicy.of(["0.0.0.0/0", "169.254.169.254/32"]).refusal(address) == reason


def test_embedded_metadata_needs_an_entry_for_the_single_ipv6_host() -> None:
    """Allowing a whole NAT64 or 6to4 prefix does not hand out cloud credentials either."""
    broad = DestinationPolicy.of(["64:ff9b::/96", "2002::/16"])
    assert broad.refusal_for("64:ff9b::a00:1") is None
    assert broad.refusal_for("64:ff9b::a9fe:a9fe") is not None
    assert broad.refusal_for("2002:a9fe:a9fe::") is not None
    assert DestinationPolicy.of(["64:ff9b::a9fe:a9fe/128"]).refusal_for(
        "64:ff9b::a9fe:a9fe") is None


def test_metadata_needs_an_entry_for_the_single_host() -> None:
    """Allowing link-local or CGNAT space does not hand out cloud credentials."""
    broad = DestinationPolicy.of(["169.254.0.0/16", "100.64.0.0/10", "fd00::/8", "0.0.0.0/0"])
    for text in ("169.254.169.254", "100.100.100.200", "fd00:ec2::254", "::ffff:169.254.169.254"):
        assert broad.refusal_for(text) == classify(ipaddress.ip_address(text))
    assert broad.refusal_for("169.254.1.1") is None
    exact = DestinationPolicy.of(["169.254.169.254/32"])
    assert exact.refusal_for("169.254.169.254") is None
    assert exact.refusal_for("::ffff:169.254.169.254") is None


def test_metadata_addresses_are_all_classified_as_metadata() -> None:
    """Every listed metadata address is named as such in the error."""
    for address in METADATA_ADDRESSES:
        assert classify(address) == "a cloud metadata service"


def test_refusal_error_says_what_and_how_to_allow_it() -> None:
    """The error names the host, each refused address and the config key to change."""
    error = DestinationRefused("hooks.example", [("10.0.0.1", "private (RFC 1918)"),
                                                 ("::1", "loopback")])
    text = str(error)
    assert text.startswith("refused destination: hooks.example resolves to 10.0.0.1")
    assert "::1 (loopback)" in text
    assert "delivery.allow_networks" in text
    assert isinstance(error, RelayError)
    assert str(DestinationRefused("127.0.0.1", [("127.0.0.1", "loopback")])).startswith(
        "refused destination: 127.0.0.1 is loopback;")


# -- properties ------------------------------------------------------------------------

ipv4s = st.integers(min_value=0, max_value=2**32 - 1).map(IPv4)
ipv6s = st.integers(min_value=0, max_value=2**128 - 1).map(IPv6)


def _embeddings(v4: IPv4) -> list[IPv6]:
    n = int(v4)
    return [
        IPv6((0xFFFF << 32) | n),                  # ::ffff:a.b.c.d
        IPv6((0xFFFF << 48) | n),                  # ::ffff:0:a.b.c.d
        IPv6((0x0064FF9B << 96) | n),              # 64:ff9b::a.b.c.d
        IPv6((0x2002 << 112) | (n << 80) | 1),     # 2002:aabb:ccdd::1
    ]


@given(ipv4s)
def test_an_ipv4_address_inside_ipv6_is_judged_like_the_ipv4_address(v4: IPv4) -> None:
    """Mapped, translated, NAT64 and 6to4 forms cannot smuggle a forbidden IPv4 address."""
    forbidden = classify(v4) is not None
    for v6 in _embeddings(v4):
        assert (classify(v6) is not None) == forbidden, v6


@given(ipv4s)
def test_an_ipv4_allow_list_admits_only_ipv4_and_its_mapped_form(v4: IPv4) -> None:
    """Whatever an IPv4 allow list holds, of the IPv6 forms only `::ffff:a.b.c.d` follows it."""
    policy = DestinationPolicy.of(["0.0.0.0/0"])
    mapped, *others = _embeddings(v4)
    assert policy.refusal(mapped) == policy.refusal(v4)
    for v6 in others:
        assert policy.refusal(v6) == classify(v6), v6


@given(ipv4s)
def test_ipv4_compatible_forms_are_never_public(v4: IPv4) -> None:
    """The deprecated `::a.b.c.d` form is refused whatever it carries."""
    assert classify(IPv6(int(v4))) is not None


@given(st.one_of(ipv4s, ipv6s))
def test_allowing_everything_allows_all_but_metadata(address: IPv4 | IPv6) -> None:
    """`0.0.0.0/0` and `::/0` turn the guard off, except for the metadata hosts."""
    policy = DestinationPolicy.of(["0.0.0.0/0", "::/0"])
    refusal = policy.refusal(address)
    assert refusal is None or "metadata" in refusal


@given(st.one_of(ipv4s, ipv6s))
def test_the_default_policy_refuses_exactly_what_classify_names(address: IPv4 | IPv6) -> None:
    """With no allow list, refusal and classification agree for every address."""
    assert DestinationPolicy().refusal(address) == classify(address)


@given(st.sampled_from(["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8",
                        "169.254.0.0/16", "100.64.0.0/10", "fc00::/7", "fe80::/10"]),
       st.integers(min_value=0))
def test_every_address_of_a_special_network_is_refused(cidr: str, offset: int) -> None:
    """Not just the famous addresses: any address in these networks."""
    network = ipaddress.ip_network(cidr)
    address = network.network_address + offset % network.num_addresses
    assert classify(address) is not None
    assert DestinationPolicy.of([cidr]).refusal(address) is None or (
        address in METADATA_ADDRESSES)
