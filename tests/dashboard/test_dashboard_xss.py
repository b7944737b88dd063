"""Markup in payloads, responses and event ids is shown as text, never run or rendered."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from urllib.parse import quote

import httpx
from playwright.sync_api import expect

from tests.dashboard.harness import TOKEN, Dash, Switch, Tab

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
