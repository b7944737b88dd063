"""Payloads, responses and event ids are shown as text: never run, never a failed page."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from html import unescape
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
from playwright.sync_api import expect

from relay.http.dashboard.render import environment
from tests.dashboard.harness import TOKEN, Dash, Switch, Tab, start_dash
from tests.support import db_execute

PAYLOAD_MARKUP = '<script>window.__xss = "payload"</script><img src=x onerror="window.__xss=2">'
RESPONSE_MARKUP = (b'<script>window.__xss = "response"</script>'
                   b'<img src=x onerror="window.__xss=4"><b>bold?</b>')
# Idempotency-Key takes any printable ASCII without spaces, so the event id can be markup
EVENT_ID = '"><svg/onload=window.__xss=5><script>window.__xss=6</script>'


def _hostile(make_dash: Callable[..., Dash]) -> Dash:
    dash = make_dash({"crm-sync": {"switch": Switch(500, RESPONSE_MARKUP, "text/html")}})
    body = json.dumps({"type": "license.created", "data": {"note": PAYLOAD_MARKUP}})
    response = dash.relay.post(body, headers={"Idempotency-Key": EVENT_ID})
    assert response.status_code == 202, response.text
    dash.events.append(EVENT_ID)
    dash.wait_counts("crm-sync", failed=1)
    return dash


def test_markup_is_escaped_in_the_html(make_dash: Callable[..., Dash]) -> None:
    """The served HTML holds the markup only as entities (checked without a browser)."""
    dash = _hostile(make_dash)
    with httpx.Client(base_url=dash.url, follow_redirects=False, timeout=30) as client:
        form = client.get("/ui/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form)
        assert csrf
        client.post("/ui/login", data={"csrf": csrf.group(1), "token": TOKEN})
        pages = [client.get("/ui/deliveries/dlv_1"), client.get("/ui/deliveries"),
                 client.get("/ui/events/" + quote(EVENT_ID, safe=""))]
    for page in pages:
        assert page.status_code == 200, page.url
        assert "<script>window" not in page.text
        assert "<img src=x" not in page.text
        assert "<svg/onload" not in page.text
        assert "&lt;svg/onload=window.__xss=5&gt;" in page.text
    assert "&lt;script&gt;window.__xss = &#34;response&#34;&lt;/script&gt;" in pages[0].text


def test_markup_is_inert_in_the_browser(make_dash: Callable[..., Dash], tab: Tab) -> None:
    """In Chromium: nothing runs, no element is made from the markup, the text is readable."""
    dash = _hostile(make_dash)
    page = tab.page
    tab.login(dash, "/ui/endpoints/crm-sync")
    row = page.locator("details[data-delivery]").first
    row.locator("summary").click()
    response = row.locator("[data-response]").first
    expect(response).to_contain_text('<script>window.__xss = "response"</script>')
    expect(response).to_contain_text('<img src=x onerror="window.__xss=4"><b>bold?</b>')
    assert row.locator("[data-response] *").count() == 0  # text only, no elements
    assert page.evaluate("window.__xss") is None

    row.get_by_role("link", name=EVENT_ID).click()
    expect(page.locator("[data-payload]")).to_contain_text(PAYLOAD_MARKUP.replace('"', '\\"'))
    assert page.locator("[data-payload] *").count() == 0
    expect(page.locator("h1 + .sub, .page-head .sub").first).to_have_text(EVENT_ID)
    assert page.locator("svg[onload], img[onerror], main script").count() == 0
    assert page.evaluate("window.__xss") is None
    tab.shot("xss-event")


# -- bodies that do not survive a round trip through JSON ---------------------------------

def nested(depth: int) -> bytes:
    return b'{"type": "a.b", "v": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


# A receiver answers anything; the relay keeps the first 4 KiB, decoded with replacement.
HOSTILE_RESPONSES = {
    "nested-990": (b"[" * 990 + b"]" * 990, "[" * 990 + "]" * 990),
    "nested-5000": (b"[" * 5000 + b"]" * 5000, "[" * 4000),
    "surrogate": (b'{"a":"\\ud800"}', '{"a":"\\ud800"}'),
    "huge-number": (b'{"v": 1e400}', '{"v": 1e400}'),
    "bad-utf8": (b'{"v": "\xff\xfe"}\xc3', '{"v": "\ufffd\ufffd"}\ufffd'),
    "nul-bytes": (b"ok\x00\x00done", "ok\x00\x00done"),
    "one-line": (b'{"v": "' + b"x" * 100_000 + b'"}', '{"v": "' + "x" * 4000),
}
# Accepted at ingest: the page shows them as their text, since they do not parse back.
HOSTILE_EVENTS = {
    "ev-huge-number": (b'{"type": "a.b", "v": 1e400}', "1e400"),
    "ev-surrogate": (b'{"type": "a.b", "v": "\\ud800"}', '"\\ud800"'),
}
# Accepted and parsed: indented as usual.
EDGE_EVENTS = {
    "ev-deepest": (nested(128), "[\n" + "  " * 127 + "[]"),
    "ev-nul-escape": (b'{"type": "a.b", "v": "\\u0000"}', '"v": "\\u0000"'),
    "ev-long-line": (b'{"type": "a.b", "v": "' + b"y" * 500_000 + b'"}', "y" * 500_000),
}
# What a store may hold from before the nesting limit, or from outside the relay.
STORED_EVENTS = {
    "ev-deep-1000": nested(1000),
    "ev-deep-5000": nested(5000),
    "ev-bad-utf8": b'{"type": "a.b", "v": "\xff"}',
    "ev-nul-bytes": b'{"type": "a.b", "v": "\x00"}\x00',
    "ev-not-json": b"type=a.b&v=1",
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dash]:
    """One endpoint per hostile answer (each delivered once) and the hostile events stored."""
    endpoints: dict[str, dict[str, Any]] = {
        name: {"events": ["probe.answer"], "switch": Switch(200, body, "application/json")}
        for name, (body, _) in HOSTILE_RESPONSES.items()}
    dash = start_dash(tmp_path_factory.mktemp("hostile"), endpoints)
    try:
        assert dash.relay.post(b'{"type": "probe.answer"}').status_code == 202
        for name in HOSTILE_RESPONSES:
            dash.wait_counts(name, delivered=1)
        for name, (body, _) in {**HOSTILE_EVENTS, **EDGE_EVENTS}.items():
            answer = dash.relay.post(body, headers={"Idempotency-Key": name})
            assert answer.status_code == 202, (name, answer.text)
        for name, body in STORED_EVENTS.items():
            answer = dash.relay.post(b'{"type": "a.b"}', headers={"Idempotency-Key": name})
            assert answer.status_code == 202, answer.text
            db_execute(dash.relay.db, "UPDATE events SET body = ? WHERE id = ?", (body, name))
        yield dash
    finally:
        dash.close()


@pytest.fixture(scope="module")
def signed_in(hostile: Dash) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hostile.url, follow_redirects=False, timeout=30) as client:
        form = client.get("/ui/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form)
        assert csrf
        client.post("/ui/login", data={"csrf": csrf.group(1), "token": TOKEN})
        yield client


def shown(page: httpx.Response, marker: str) -> list[str]:
    """The text of each `<pre data-...>` block, as a browser shows it."""
    return [unescape(text) for text in
            re.findall(rf"<pre [^>]*{marker}>(.*?)</pre>", page.text, re.DOTALL)]


def admin_get(client: httpx.Client, path: str) -> httpx.Response:
    response = client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, (path, response.text)
    orjson.loads(response.content)  # strict JSON: no NaN or Infinity, no lone surrogate
    return response


@pytest.mark.parametrize("name", HOSTILE_RESPONSES)
def test_any_receiver_answer_renders(signed_in: httpx.Client, name: str) -> None:
    """Deep nesting, lone surrogates, 1e400, bad UTF-8, NULs, one long line: page 200, as text."""
    listing = admin_get(signed_in, f"/v1/deliveries?endpoint={name}").json()["data"]
    delivery_id = listing[0]["id"]
    admin_get(signed_in, f"/v1/deliveries/{delivery_id}")
    page = signed_in.get(f"/ui/deliveries/{delivery_id}")
    assert page.status_code == 200, page.text[-2000:]
    [response] = shown(page, "data-response")
    assert response.startswith(HOSTILE_RESPONSES[name][1]), response[:200]
    endpoint_page = signed_in.get(f"/ui/endpoints/{name}")
    assert endpoint_page.status_code == 200


@pytest.mark.parametrize("name", [*HOSTILE_EVENTS, *EDGE_EVENTS, *STORED_EVENTS])
def test_any_stored_event_renders(signed_in: httpx.Client, name: str) -> None:
    """Every stored event answers 200 in the API and on its page, parsed or as its text."""
    event = admin_get(signed_in, f"/v1/events/{name}").json()
    page = signed_in.get(f"/ui/events/{name}")
    assert page.status_code == 200, page.text[-2000:]
    [payload] = shown(page, "data-payload")
    if name in EDGE_EVENTS:
        assert event["payload_text"] is None
        assert EDGE_EVENTS[name][1] in payload
        return
    assert event["payload"] is None
    if name in HOSTILE_EVENTS:
        body, words = HOSTILE_EVENTS[name]
        assert event["payload_text"] == body.decode() == payload
        assert words in payload
    else:
        text = STORED_EVENTS[name].decode("utf-8", errors="replace")
        assert event["payload_text"] == text == payload
    assert "does not read back as JSON" in page.text


def test_a_lone_surrogate_anywhere_in_a_page_is_written_escaped() -> None:
    """Whatever a template prints is sendable as UTF-8; markup stays escaped."""
    template = environment().from_string("<p>{{ text }}</p>{{ body | pretty_body }}")
    html = template.render(text="<b>\ud800</b>", body='["\\udfff", 1]')
    assert html.encode("utf-8") == b'<p>&lt;b&gt;\\ud800&lt;/b&gt;</p>[&#34;\\udfff&#34;, 1]'
