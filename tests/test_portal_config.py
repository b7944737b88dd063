"""relay.yaml's `portal:` section: each value checked whole, since it lands in CSS and a header."""

from __future__ import annotations

import pytest

from relay.config import parse_config
from relay.exceptions import ConfigError


def portal(text: str) -> str:
    return f"portal: {text}\nendpoints: []\n"


def test_the_section_as_written() -> None:
    config = parse_config(portal("{title: Acme Licensing webhooks, accent_color: '#0F7B6C', "
                                 "frame_ancestors: [https://app.acme.example, "
                                 "'https://*.acme.example:8443', \"'self'\"], "
                                 "link_ttl: 10m, session_ttl: 8h, "
                                 "public_url: 'https://relay.acme.example/'}"))
    p = config.portal
    assert (p.title, p.accent_color) == ("Acme Licensing webhooks", "#0f7b6c")
    assert p.frame_ancestors == ("https://app.acme.example", "https://*.acme.example:8443",
                                 "'self'")
    assert (p.link_ttl_s, p.session_ttl_s) == (600.0, 8 * 3600.0)
    assert p.public_url == "https://relay.acme.example"
    defaults = parse_config("endpoints: []\n").portal
    assert (defaults.title, defaults.accent_color, defaults.frame_ancestors) == (
        "Webhooks", None, ())
    assert (defaults.link_ttl_s, defaults.session_ttl_s, defaults.allow_http) == (
        300.0, 3600.0, False)


@pytest.mark.parametrize(("text", "message"), [
    ("{accent_color: 'red'}", "portal.accent_color: expected a colour as #rrggbb or #rgb"),
    ("{accent_color: '#0f7b6c; } body { display: none'}", "portal.accent_color: expected"),
    ("{accent_color: \"#0f7b6c\\n\"}", "portal.accent_color: expected"),
    ("{frame_ancestors: ['https://a.example; script-src *']}",
     "portal.frame_ancestors: item 0: expected 'self' or an origin"),
    ("{frame_ancestors: ['*']}", "portal.frame_ancestors: item 0"),
    ("{frame_ancestors: ['https://a.example/path']}", "portal.frame_ancestors: item 0"),
    ("{frame_ancestors: [\"'none'\"]}", "portal.frame_ancestors: item 0"),
    ("{link_ttl: 2h}", "portal.link_ttl: expected a duration above zero and at most 1h"),
    ("{session_ttl: 0s}", "portal.session_ttl: expected a duration above zero"),
    ("{title: ''}", "portal.title: expected 1 to 80 characters"),
    ("{public_url: 'https://relay.example/?x=1'}", "portal.public_url: expected a base URL"),
    ("{public_url: 'ftp://relay.example'}", "portal.public_url: expected an http://"),
    ("{titel: Acme}", "portal.titel: unknown key"),
])
def test_bad_values_name_their_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(portal(text))
    assert any(error.startswith(message) for error in raised.value.errors), raised.value.errors
