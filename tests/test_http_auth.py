"""relay.http.auth's browser rules: which Host names the relay, which request is another site's."""

from __future__ import annotations

import pytest

from relay.hosts import split_host
from relay.http.auth import HostRule, from_other_site, is_json_media_type


@pytest.mark.parametrize(("host", "allowed"), [
    ("127.0.0.1:8787", True), ("localhost:8787", True), ("localhost", True),
    ("LOCALHOST:8787", True), ("[::1]:8787", True), ("[::1]", True), ("127.0.0.2", True),
    ("127.0.0.1:08787", True), ("relay.local:8787", True),
    # A rebinding page sends its own name: refused, however it starts.
    ("evil.example:8787", False), ("localhost.evil.example", False),
    ("127.evil.example", False), ("127.0.0.1.evil.example:8787", False),
    ("127.1:8787", False), ("localhost.:8787", False), ("", False), ("[::2]:8787", False),
    # The loopback names on another port are not this listener.
    ("127.0.0.1:9999", False), ("localhost:80", False),
    # Malformed.
    ("[::1", False), ("::1", False), ("localhost:", False), ("localhost:87a", False),
    ("localhost:8787\n", False), ("[::1]x", False),
])
def test_host_rule_without_allowed_hosts(host: str, allowed: bool) -> None:
    """Loopback names and parsed loopback addresses, whole, on no port or the listener's."""
    assert HostRule("relay.local", 8787).allows(host) is allowed


def test_allowed_hosts_add_exact_names_and_host_ports() -> None:
    """An operator's names match whole; an entry with a port matches that port only."""
    rule = HostRule("127.0.0.1", 8787, ["relay.internal", "proxy.internal:443"])
    assert rule.allows("relay.internal")
    assert rule.allows("relay.internal:8787")
    assert not rule.allows("relay.internal:443")
    assert rule.allows("proxy.internal:443")
    assert not rule.allows("proxy.internal")
    assert not rule.allows("relay.internal.evil.example")
    assert not rule.allows("xrelay.internal")


def test_answers_are_cached_but_bounded() -> None:
    """A flood of distinct Host values cannot grow the cache without bound."""
    rule = HostRule("127.0.0.1", 8787)
    for n in range(1000):
        assert not rule.allows(f"h{n}.example")
    assert len(rule._cache) <= 256
    assert rule.allows("localhost:8787")


@pytest.mark.parametrize(("headers", "other"), [
    ({}, False),
    ({"sec-fetch-site": "same-origin"}, False),
    ({"sec-fetch-site": "none"}, False),
    ({"origin": "http://relay.local:8787"}, False),
    ({"origin": "https://relay.local:8787"}, False),  # a TLS proxy that hides the scheme
    ({"referer": "http://relay.local:8787/ui/endpoints/a"}, False),
    ({"sec-fetch-site": "cross-site"}, True),
    ({"sec-fetch-site": "same-site"}, True),
    ({"origin": "http://relay.local:9999"}, True),
    ({"origin": "http://evil.example"}, True),
    ({"origin": "http://127.evil.example"}, True),
    ({"referer": "http://evil.example/relay.local:8787"}, True),
    ({"origin": "null"}, True),
    ({"origin": "http://[::1"}, True),
])
def test_other_site_signals(headers: dict[str, str], other: bool) -> None:
    assert from_other_site({"host": "relay.local:8787", **headers}) is other


def test_null_origin_is_left_to_the_csrf_token_when_asked() -> None:
    """The dashboard's forms arrive with `Origin: null` under its referrer policy."""
    headers = {"host": "relay.local:8787", "origin": "null", "sec-fetch-site": "same-origin"}
    assert not from_other_site(headers, null_origin_is_other=False)
    assert from_other_site(headers)


@pytest.mark.parametrize(("value", "expected"), [
    ("localhost", ("localhost", None)), ("LocalHost:8787", ("localhost", "8787")),
    ("[::1]:80", ("::1", "80")), ("[::1]", ("::1", None)), ("::1", None), ("a:b", None),
    ("", None), (":80", None), ("host:123456", None), ("host:80\n", None),
])
def test_split_host(value: str, expected: tuple[str, str | None] | None) -> None:
    assert split_host(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("application/json", True), ("application/json; charset=utf-8", True),
    ("application/cloudevents+json", True), ("APPLICATION/JSON", True),
    ("text/plain", False), ("application/x-www-form-urlencoded", False),
    ("multipart/form-data; boundary=x", False), ("", False), ("application/jsonx", False),
])
def test_json_media_types(value: str, expected: bool) -> None:
    assert is_json_media_type(value) is expected
