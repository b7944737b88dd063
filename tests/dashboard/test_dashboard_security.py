"""The dashboard's doors, tried with a plain HTTP client: login, sessions, CSRF, headers."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import httpx
import pytest

from tests.conftest import SECRET
from tests.dashboard.harness import TOKEN, Dash, start_dash

PAGES = ["/ui", "/ui/deliveries", "/ui/endpoints/billing", "/ui/deliveries/dlv_1", "/ui/events"]
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self'; connect-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dash]:
    """One relay for the module: an admin token and an endpoint that has a delivery."""
    dash = start_dash(tmp_path_factory.mktemp("security"), {
        "billing": {"headers": {"Authorization": "Bearer sekrit-downstream"}},
    })
    try:
        dash.send(licenseKey="ABCD-1234")
        dash.wait_counts("billing", delivered=1)
        yield dash
    finally:
        dash.close()


@pytest.fixture
def dash(shared: Dash) -> Iterator[Dash]:
    """The shared relay, with `billing` resumed after each test that paused it."""
    yield shared
    response = httpx.post(f"{shared.url}/v1/endpoints/billing/resume", timeout=10,
                          headers={"Authorization": f"Bearer {shared.token}"})
    assert response.status_code == 200, response.text


@pytest.fixture
def client(dash: Dash) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=dash.url, follow_redirects=False, timeout=30) as http:
        yield http


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


def login(client: httpx.Client, token: str = TOKEN, **headers: str) -> httpx.Response:
    form = client.get("/ui/login")
    return client.post("/ui/login", data={"csrf": csrf_of(form.text), "token": token,
                                          "next": "/ui"}, headers=headers)


def set_cookie(response: httpx.Response, name: str = "relay_session") -> str:
    return next(v for v in response.headers.get_list("set-cookie") if v.startswith(name))


def is_paused(dash: Dash, name: str = "billing") -> bool:
    response = httpx.get(f"{dash.url}/v1/endpoints/{name}",
                         headers={"Authorization": f"Bearer {dash.token}"}, timeout=10)
    paused: bool = response.json()["paused"]
    return paused


def test_pages_redirect_to_login_without_a_session(client: httpx.Client) -> None:
    """Every page sends a visitor without a session to the login form, and back after."""
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/ui/login?" + urlencode({"next": path})
    assert client.get("/ui/login").status_code == 200


def test_background_refresh_without_a_session_is_401(client: httpx.Client) -> None:
    """The page script gets a 401 (not a login page to paste into the list)."""
    response = client.get("/ui", headers={"X-Relay-Refresh": "1"})
    assert response.status_code == 401


def test_login_sets_a_strict_httponly_cookie_that_is_not_the_token(
        client: httpx.Client) -> None:
    """The session cookie is HttpOnly, SameSite=Strict, scoped to /ui; it never holds the token."""
    response = login(client)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui"
    header = set_cookie(response)
    morsel = SimpleCookie(header)["relay_session"]
    assert morsel["httponly"] is True
    assert morsel["samesite"].lower() == "strict"
    assert morsel["path"] == "/ui"
    assert not morsel["secure"]  # plain http here; see the next test
    assert TOKEN not in header
    assert client.get("/ui").status_code == 200


def test_cookie_is_secure_when_the_request_came_over_https(client: httpx.Client) -> None:
    """Behind a TLS proxy (X-Forwarded-Proto from a trusted address) the cookie is Secure."""
    response = login(client, **{"X-Forwarded-Proto": "https"})
    assert response.status_code == 303
    assert SimpleCookie(set_cookie(response))["relay_session"]["secure"] is True


def test_wrong_token_is_refused(client: httpx.Client) -> None:
    """A wrong token gets the form again with a 401, and no session that opens pages."""
    response = login(client, token="not-the-token")
    assert response.status_code == 401
    assert "That is not the admin token." in response.text
    assert client.get("/ui").status_code == 303


def test_login_form_needs_its_csrf_token(client: httpx.Client) -> None:
    """Login CSRF: another site cannot sign a browser into a session of its choosing."""
    client.get("/ui/login")
    response = client.post("/ui/login", data={"token": TOKEN, "next": "/ui"})
    assert response.status_code == 403
    assert client.get("/ui").status_code == 303


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/ui",
                                    "/uix", "/ui\\@evil.example", "javascript:alert(1)"])
def test_login_never_redirects_off_the_dashboard(client: httpx.Client, target: str) -> None:
    """`next` only ever names a dashboard page."""
    form = client.get("/ui/login")
    response = client.post("/ui/login", data={"csrf": csrf_of(form.text), "token": TOKEN,
                                              "next": target})
    assert response.headers["location"] == "/ui"


def test_actions_without_a_valid_csrf_token_are_refused(dash: Dash,
                                                        client: httpx.Client) -> None:
    """A POST with no token, a wrong token or another session's token changes nothing (403)."""
    login(client)
    page = client.get("/ui/endpoints/billing")
    token = csrf_of(page.text)
    for data in ({}, {"csrf": ""}, {"csrf": token[:-2] + "xx"}):
        response = client.post("/ui/endpoints/billing/pause", data=data)
        assert response.status_code == 403, data
        assert "CSRF token" in response.text
    with httpx.Client(base_url=dash.url, follow_redirects=False, timeout=30) as other:
        login(other)
        other_token = csrf_of(other.get("/ui/endpoints/billing").text)
    response = client.post("/ui/endpoints/billing/pause", data={"csrf": other_token})
    assert response.status_code == 403
    assert not is_paused(dash)


def test_actions_from_another_site_are_refused(dash: Dash, client: httpx.Client) -> None:
    """Origin, Referer or Sec-Fetch-Site naming another site: refused even with the token."""
    login(client)
    token = csrf_of(client.get("/ui/endpoints/billing").text)
    for headers in ({"Origin": "https://evil.example"},
                    {"Referer": "https://evil.example/page"},
                    {"Sec-Fetch-Site": "cross-site"},
                    {"Sec-Fetch-Site": "same-site"}):
        response = client.post("/ui/endpoints/billing/pause", data={"csrf": token},
                               headers=headers)
        assert response.status_code == 403, headers
    assert not is_paused(dash)
    # what a browser sends from the page itself under Referrer-Policy: no-referrer
    response = client.post("/ui/endpoints/billing/pause", data={"csrf": token}, headers={
        "Origin": "null", "Sec-Fetch-Site": "same-origin"})
    assert response.status_code == 303
    assert is_paused(dash)


def test_actions_without_a_session_are_refused(dash: Dash, client: httpx.Client) -> None:
    """No session, no action: 403 before any form is read."""
    response = client.post("/ui/endpoints/billing/pause", data={"csrf": "x"})
    assert response.status_code == 403
    assert not is_paused(dash)


def test_actions_are_post_only(client: httpx.Client) -> None:
    """A link cannot pause an endpoint: GET on an action is 405."""
    login(client)
    response = client.get("/ui/endpoints/billing/pause")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_action_answers_with_a_redirect_and_a_flash(dash: Dash, client: httpx.Client) -> None:
    """POST, redirect, GET: the page after an action says what happened, once."""
    login(client)
    token = csrf_of(client.get("/ui/endpoints/billing").text)
    response = client.post("/ui/endpoints/billing/pause",
                           data={"csrf": token, "next": "/ui/endpoints/billing"})
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/endpoints/billing"
    page = client.get("/ui/endpoints/billing")
    assert "Paused billing: 0 waiting deliveries held." in page.text
    assert "Paused billing" not in client.get("/ui/endpoints/billing").text


def test_logout_ends_the_session(client: httpx.Client) -> None:
    """After signing out, the old cookie opens nothing, even if replayed."""
    login(client)
    cookie = client.cookies["relay_session"]
    token = csrf_of(client.get("/ui").text)
    response = client.post("/ui/logout", data={"csrf": token, "next": "/ui/login"})
    assert response.status_code == 303
    client.cookies.clear()
    client.cookies.set("relay_session", cookie, path="/ui")
    assert client.get("/ui").status_code == 303


def test_forged_session_cookie_is_refused(client: httpx.Client) -> None:
    """A cookie the relay did not sign (or signed as anonymous) opens nothing."""
    response = login(client)
    value = SimpleCookie(set_cookie(response))["relay_session"].value
    _, sid, expiry, _, mac = value.split(".")
    for forged in (f"v1.{sid}.{int(expiry) + 3600}.1.{mac}", f"v1.{sid}.{expiry}.1.x{mac[1:]}",
                   TOKEN, ""):
        client.cookies.clear()
        client.cookies.set("relay_session", forged, path="/ui")
        assert client.get("/ui").status_code == 303, forged


def test_security_headers_on_every_dashboard_response(client: httpx.Client) -> None:
    """CSP, no framing, no referrer, nosniff: on pages, redirects, errors and static files."""
    responses = [client.get("/ui"), client.get("/ui/login"),
                 client.get("/ui/static/dashboard.css"), client.get("/ui/static/dashboard.js")]
    login(client)
    responses += [client.get(path) for path in PAGES]
    responses += [client.get("/ui/nowhere"), client.get("/ui/endpoints/nope"),
                  client.post("/ui/endpoints/billing/pause", data={})]
    for response in responses:
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (response.url, name)
    assert responses[2].headers["content-type"].startswith("text/css")
    assert "no-store" in client.get("/ui").headers["cache-control"]
    assert client.get("/ui/nowhere").status_code == 404


def test_pages_never_show_secrets(dash: Dash, client: httpx.Client) -> None:
    """Neither the endpoint's secret nor a credential header it sends appears on any page."""
    login(client)
    event = dash.events[0]
    pages = [client.get(p).text for p in [*PAGES, f"/ui/events/{event}"]]
    assert "webhook-signature" in pages[-1]
    for text in pages:
        assert SECRET not in text
        assert SECRET.removeprefix("whsec_") not in text
        assert "sekrit-downstream" not in text
    assert "v1,…" in pages[-1]


def test_no_admin_token_means_open_but_csrf_protected(make_dash: Callable[..., Dash]) -> None:
    """A loopback relay without admin.token: pages open, actions still need the CSRF token."""
    dash = make_dash({"billing": {}}, token=None)
    with httpx.Client(base_url=dash.url, follow_redirects=False, timeout=30) as client:
        page = client.get("/ui/endpoints/billing")
        assert page.status_code == 200
        assert "relay_session" in client.cookies
        assert "Sign out" not in page.text
        assert client.get("/ui/login").headers["location"] == "/ui"
        refused = client.post("/ui/endpoints/billing/pause", data={"next": "/ui"})
        assert refused.status_code == 403
        assert not is_paused(dash)
        done = client.post("/ui/endpoints/billing/pause",
                           data={"csrf": csrf_of(page.text), "next": "/ui"})
        assert done.status_code == 303
        assert is_paused(dash)
    with httpx.Client(base_url=dash.url, follow_redirects=False, timeout=30) as stranger:
        response = stranger.post("/ui/endpoints/billing/resume", data={"csrf": "guess"})
        assert response.status_code == 403
    assert is_paused(dash)


def test_no_admin_token_answers_only_to_loopback_names(make_dash: Callable[..., Dash]) -> None:
    """DNS rebinding: a page served as evil.example that reaches 127.0.0.1 is refused."""
    dash = make_dash({"billing": {}}, token=None)
    with httpx.Client(base_url=dash.url, follow_redirects=False, timeout=30) as client:
        assert client.get("/ui", headers={"Host": "localhost"}).status_code == 200
        page = client.get("/ui/endpoints/billing", headers={"Host": "rebound.evil.example"})
        assert page.status_code == 403
        assert "csrf" not in page.text
        response = client.post("/ui/endpoints/billing/pause", data={"csrf": "x"},
                               headers={"Host": "rebound.evil.example"})
        assert response.status_code == 403
        assert "Host not allowed" in response.text
