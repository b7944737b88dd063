"""The dashboard's pure parts: session signing, time and body formatting."""

from __future__ import annotations

import pytest

from relay.http.dashboard.render import absolute, pretty_body, query_url, relative
from relay.http.dashboard.security import Sessions

NOW = 1_735_914_330.0  # 2025-01-03 14:25:30Z


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_session_round_trip_and_what_breaks_it() -> None:
    """A cookie decodes under its token only, until it expires or is revoked."""
    clock = Clock()
    sessions = Sessions(clock=clock, ttl_s=60)
    session = sessions.issue(authenticated=True)
    cookie = sessions.encode(session, "token-a")
    assert "token-a" not in cookie
    assert sessions.decode(cookie, "token-a") == session
    assert sessions.decode(cookie, "token-b") is None  # admin.token changed: signed out
    assert sessions.decode(cookie, None) is None
    assert Sessions(clock=clock).decode(cookie, "token-a") is None  # another process's key
    clock.now += 61
    assert sessions.decode(cookie, "token-a") is None
    clock.now = NOW
    sessions.revoke(session)
    assert sessions.decode(cookie, "token-a") is None


@pytest.mark.parametrize("cookie", ["", "v1", "v1.a.b.c.d", "v2.a.1.1.x", "v1.a.1.2.x",
                                    "v1..99999999999.1."])
def test_malformed_cookies_are_no_session(cookie: str) -> None:
    assert Sessions().decode(cookie, "t") is None


def test_csrf_token_belongs_to_its_session() -> None:
    """The CSRF token is per session and checked in constant time; none without a session."""
    sessions = Sessions()
    one, two = sessions.issue(authenticated=True), sessions.issue(authenticated=True)
    assert sessions.check_csrf(one, sessions.csrf_token(one))
    assert not sessions.check_csrf(one, sessions.csrf_token(two))
    assert not sessions.check_csrf(None, sessions.csrf_token(one))
    assert not sessions.check_csrf(one, "")


def test_flash_is_signed_and_short_lived() -> None:
    clock = Clock()
    sessions = Sessions(clock=clock)
    value = sessions.encode_flash({"kind": "success", "text": "Paused billing"})
    assert sessions.decode_flash(value) == {"kind": "success", "text": "Paused billing",
                                            "exp": NOW + 120}
    body, mac = value.rsplit(".", 1)
    tampered = mac[:-1] + ("B" if mac.endswith("A") else "A")  # never the mac itself
    assert sessions.decode_flash(body + "." + tampered) is None
    assert Sessions(clock=clock).decode_flash(value) is None
    clock.now += 121
    assert sessions.decode_flash(value) is None


@pytest.mark.parametrize(("offset", "due", "text"), [
    (0, False, "now"), (-12, False, "12s ago"), (240, False, "in 4m"), (299, False, "in 4m"),
    (-3 * 3600 - 120, False, "3h 2m ago"), (12 * 3600, False, "in 12h"),
    (-2 * 86400, False, "2d ago"), (-5, True, "due now"), (5, True, "in 5s"),
    (0.4, True, "in 1s"), (0.4, False, "in 1s"), (-0.4, False, "now"),
    (-40 * 86400, False, "2024-11-24"),
])
def test_relative(offset: float, due: bool, text: str) -> None:
    assert relative(NOW + offset, NOW, due=due) == text


def test_times_from_the_api_and_none() -> None:
    assert relative("2025-01-03T14:25:00.000Z", NOW) == "30s ago"
    assert absolute("2025-01-03T14:25:30.000Z") == "2025-01-03 14:25:30Z"
    assert relative(None, NOW) == absolute(None) == "—"


def test_pretty_body_indents_json_and_keeps_anything_else() -> None:
    assert pretty_body('{"a":[1,2]}') == '{\n  "a": [\n    1,\n    2\n  ]\n}'
    assert pretty_body("<h1>oops</h1>") == "<h1>oops</h1>"
    assert pretty_body('{"cut": "off') == '{"cut": "off'  # a 4 KiB excerpt ending mid-JSON
    assert pretty_body(None) == ""


def test_query_url_drops_empty_values() -> None:
    assert query_url("/ui", {"q": "", "status": None}) == "/ui"
    assert query_url("/ui", {"q": "a b", "status": "ok"}) == "/ui?q=a+b&status=ok"
