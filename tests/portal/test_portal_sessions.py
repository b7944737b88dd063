"""Portal links and sessions: single use, bounded, ended by sign-out and by revocation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from relay.http import schemas
from tests.dashboard.harness import Dash
from tests.html_tree import parse
from tests.portal.harness import ADMIN, Browser, make_relay, portal_link
from tests.support import wait_until

pytestmark = pytest.mark.both_backends


@pytest.fixture
def dash(tmp_path: Path) -> Iterator[Dash]:
    dash = make_relay(tmp_path)
    try:
        yield dash
    finally:
        dash.close()


def test_a_link_signs_in_once_and_cannot_be_replayed(dash: Dash) -> None:
    answer = portal_link(dash, "acme", ttl="2m")
    assert answer.status_code == 201
    link = answer.json()
    assert link["url"].startswith(f"{dash.url}/portal/start?token=")
    assert link["tenant"] == "acme" and link["expires_at"].endswith("Z")
    schemas.PortalSessionOut.model_validate(link)
    assert link["session_ttl"] == "1h"
    with httpx.Client(follow_redirects=False, timeout=30) as first:
        opened = first.get(link["url"])
        assert opened.status_code == 303 and opened.headers["location"] == "/portal"
        cookie = next(v for v in opened.headers.get_list("set-cookie")
                      if v.startswith("relay_portal="))
        assert "HttpOnly" in cookie and "Path=/portal" in cookie
        assert "SameSite=none" in cookie and "Secure" in cookie and "Partitioned" in cookie
    with httpx.Client(follow_redirects=False, timeout=30) as second:
        replayed = second.get(link["url"])
        assert replayed.status_code == 403
        assert "work once" in parse(replayed.text).one("main").text
        assert "relay_portal=" not in replayed.headers.get("set-cookie", "")
        assert second.get(link["url"].replace("token=", "token=x")).status_code == 403
        assert second.get("/portal".join([dash.url, ""])).status_code == 401


def test_the_admin_route_needs_the_token_and_checks_its_body(dash: Dash) -> None:
    url = f"{dash.url}/v1/tenants/acme/portal-sessions"
    assert httpx.post(url, timeout=30).status_code == 401
    refused = httpx.post(url, json={"ttl": "2h"}, headers=ADMIN, timeout=30)
    assert refused.status_code == 422
    assert refused.json()["errors"] == [{"field": "ttl", "message": "expected a duration "
                                         "above zero and at most 1h, got '2h'"}]
    unknown = httpx.post(url, json={"tenant": "globex"}, headers=ADMIN, timeout=30)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "tenant"
    assert httpx.post(url, content=b"ttl=1m", headers={
        **ADMIN, "Content-Type": "application/x-www-form-urlencoded"}, timeout=30
    ).status_code == 415
    other_site = httpx.post(url, json={}, headers={**ADMIN, "Origin": "https://evil.example"},
                            timeout=30)
    assert other_site.status_code == 403
    odd = portal_link(dash, "acme@example.com")  # tenant ids are what platforms have
    assert odd.status_code == 201 and odd.json()["tenant"] == "acme@example.com"


def test_sign_out_and_revocation_end_sessions_everywhere(dash: Dash) -> None:
    a1, a2, b = (Browser.open(dash, t) for t in ("acme", "acme", "globex"))
    unused = portal_link(dash, "acme").json()["url"]
    try:
        for browser in (a1, a2, b):
            assert browser.get("/portal").status_code == 200
        signed_out = a1.post("/portal/logout")
        assert signed_out.status_code == 200 and "signed out" in signed_out.text
        assert a1.get("/portal").status_code == 401
        assert a2.get("/portal").status_code == 200  # another browser of acme stays in
        token = a2.csrf()
        ended = httpx.delete(f"{dash.url}/v1/tenants/acme/portal-sessions", headers=ADMIN,
                             timeout=30)
        assert ended.status_code == 200 and ended.json() == {"tenant": "acme", "ended": 2}
        schemas.PortalSessionsEndedOut.model_validate(ended.json())
        assert a2.get("/portal").status_code == 401
        assert a2.get("/portal", headers={"X-Relay-Refresh": "1"}).status_code == 401
        assert httpx.get(unused, timeout=30, follow_redirects=False).status_code == 403
        assert b.get("/portal").status_code == 200  # globex is not touched
        late = a2.http.post("/portal/new", data={"csrf": token, "url": "https://x.example"})
        assert late.status_code == 401
        assert httpx.get(f"{dash.url}/v1/endpoints", headers=ADMIN,
                         timeout=30).json()["data"][1:] == []
    finally:
        for browser in (a1, a2, b):
            browser.close()


def test_a_portal_session_is_not_a_dashboard_or_admin_session(dash: Dash) -> None:
    browser = Browser.open(dash, "acme")
    try:
        assert browser.get("/ui").status_code == 303  # to the dashboard's login
        assert browser.get("/ui").headers["location"].startswith("/ui/login")
        assert browser.get("/v1/endpoints").status_code == 401
        assert browser.http.post("/v1/tenants/acme/portal-sessions",
                                 json={}).status_code == 401
    finally:
        browser.close()


def test_only_the_portal_may_be_framed_and_by_the_configured_origins(dash: Dash) -> None:
    browser = Browser.open(dash, "acme")
    try:
        portal = browser.get("/portal")
        policy = portal.headers["content-security-policy"]
        assert "frame-ancestors https://app.acme.example;" in policy
        assert "x-frame-options" not in portal.headers
        assert "script-src 'self'" in policy and "default-src 'none'" in policy
        for path in ("/ui/login", "/docs"):
            other = httpx.get(dash.url + path, timeout=30)
            assert "frame-ancestors 'none'" in other.headers["content-security-policy"], path
            assert other.headers["x-frame-options"] == "DENY"
        theme = browser.get("/portal/theme.css")
        assert theme.headers["content-type"].startswith("text/css")
        assert "--accent: #0f7b6c;" in theme.text
        page = parse(portal.text)
        assert page.one("title").text == "Endpoints · Acme Licensing webhooks"
        for node in page.walk():  # nothing from the internet
            for attr in ("src", "href"):
                value = node.attrs.get(attr, "")
                assert not value.startswith(("http:", "https:", "//")), value
    finally:
        browser.close()


def test_without_frame_ancestors_the_portal_is_not_framed_and_its_cookie_is_lax(
        tmp_path: Path) -> None:
    dash = make_relay(tmp_path, "portal: {}\n")
    try:
        link = portal_link(dash, "acme").json()["url"]
        with httpx.Client(follow_redirects=False, timeout=30) as http:
            opened = http.get(link)
            cookie = opened.headers["set-cookie"]
            assert "SameSite=lax" in cookie and "Partitioned" not in cookie
            page = http.get(f"{dash.url}/portal")
            assert page.status_code == 200
            assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
            assert page.headers["x-frame-options"] == "DENY"
            assert parse(page.text).one("title").text == "Endpoints · Webhooks"
            assert http.get(f"{dash.url}/portal/theme.css").text == ""
    finally:
        dash.close()


def test_links_name_the_public_url_and_sessions_end_at_their_expiry(tmp_path: Path) -> None:
    dash = make_relay(tmp_path, "portal: {public_url: 'https://relay.acme.example/', "
                                "session_ttl: 5s}\n")
    try:
        link = portal_link(dash, "acme").json()
        assert link["url"].startswith("https://relay.acme.example/portal/start?token=")
        assert link["session_ttl"] == "5s"
        local = link["url"].replace("https://relay.acme.example", dash.url)
        with httpx.Client(base_url=dash.url, follow_redirects=False, timeout=30) as http:
            assert http.get(local).status_code == 303
            assert http.get("/portal").status_code == 200
            wait_until(lambda: http.get("/portal").status_code == 401, 15,
                       message="the five-second session ending")
    finally:
        dash.close()
