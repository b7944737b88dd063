"""The main pages on a relay with every kind of endpoint, photographed for the docs.

Also a check that each page renders for every endpoint state at laptop and
phone widths, in light and dark mode, without console errors (CSP included).
Run with RELAY_UPDATE_SCREENSHOTS=1 to refresh docs/screenshots/.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
from playwright.sync_api import expect

from tests.dashboard.harness import PHONE, Dash, Switch, Tab

HTML_503 = (b"<html><head><title>503 Service Unavailable</title></head><body>"
            b"<h1>Service Unavailable</h1><p>upstream connect error</p></body></html>")


def _busy_relay(make_dash: Callable[..., Dash]) -> Dash:
    """Six endpoints: healthy, retrying, failed, paused, gone (410) and a quiet one."""
    dash = make_dash({
        "billing": {"events": ["order.*"]},
        "crm-sync": {"events": ["license.*", "order.created"], "path": "/hooks/license",
                     "retry_schedule": ["5m", "30m", "2h"],
                     "switch": Switch(500, b'{"error": "column \\"license_key\\" does not '
                                           b'exist", "request_id": "req_8f2c1a"}')},
        "analytics": {"events": ["*"], "signature": "x-webhook", "path": "/ingest/webhooks"},
        "slack-alerts": {"events": ["license.expired", "license.expiring"],
                         "switch": Switch(503, HTML_503, "text/html")},
        "audit-log": {"events": ["*"], "path": "/audit"},
        "legacy-erp": {"events": ["order.*"], "switch": Switch(410, b"gone")},
    })
    headers = {"Authorization": f"Bearer {dash.token}"}
    assert httpx.post(f"{dash.url}/v1/endpoints/audit-log/pause", headers=headers,
                      timeout=10).status_code == 200
    dash.send(body={"Id": 42, "LicenseId": "LIC-0042", "EventType": "license.created",
                    "Licensee": "Northwind Traders", "LicensingMode": 1,
                    "ExpireDate": "2026-01-31T00:00:00Z", "Timestamp": "2025-01-03T14:25:30Z"})
    dash.send(body={"event": "order.created", "timestamp": "2025-01-03T14:26:02Z",
                    "data": {"orderNumber": "SO-10293", "customerId": 311, "total": 1490.0}})
    dash.send(body={"event_type": "license.expiring", "timestamp": "2025-01-03T14:27:10Z",
                    "payload": {"license_id": 123, "license_code": "LIC-ABC-123",
                                "customer_id": "CUST-001", "days_until_expiry": 7}})
    dash.send(body={"type": "license.expired", "data": {"licenseKey": "ABCD-1234",
                                                        "expiredAt": "2025-01-03T00:00:00Z"}})
    dash.send(body={"event": "order.created", "data": {"orderNumber": "SO-10294"}})
    dash.wait_counts("billing", delivered=2)
    dash.wait_counts("crm-sync", scheduled=5)
    dash.wait_counts("slack-alerts", failed=2)
    dash.wait_counts("audit-log", held=5)
    dash.wait_counts("analytics", delivered=5)
    dash.wait_counts("legacy-erp", failed=1, held=1)
    return dash


def test_main_pages_for_the_docs(make_dash: Callable[..., Dash],
                                 make_tab: Callable[..., Tab]) -> None:
    """Endpoints, an endpoint with an expanded delivery, an event, phone width, dark mode."""
    dash = _busy_relay(make_dash)
    tab = make_tab()
    page = tab.page
    tab.login(dash)
    expect(page.locator("tr[data-endpoint]")).to_have_count(6)
    for name, status in [("billing", "ok"), ("crm-sync", "error"), ("analytics", "ok"),
                         ("slack-alerts", "error"), ("audit-log", "paused"),
                         ("legacy-erp", "disabled")]:
        expect(page.locator(f"tr[data-endpoint='{name}'] .badge")).to_have_text(status)
    expect(page.locator("tr[data-endpoint='crm-sync']")).to_contain_text("in 4m")
    tab.shot("endpoints", docs=True)

    page.goto(dash.url + "/ui/endpoints/crm-sync")
    row = page.locator("details[data-delivery]").nth(1)
    row.locator("summary").click()
    expect(row.locator("[data-response]")).to_contain_text("req_8f2c1a")
    page.set_viewport_size({"width": 1360, "height": 1180})
    tab.shot("endpoint", docs=True)

    page.goto(dash.url + "/ui/endpoints/slack-alerts")
    row = page.locator("details[data-delivery]").first
    row.locator("summary").click()
    expect(row.locator("[data-response]").first).to_contain_text("<h1>Service Unavailable</h1>")
    tab.shot("endpoint-html-response")

    page.goto(dash.url + "/ui/deliveries")
    expect(page.locator("details[data-delivery]")).to_have_count(21)
    tab.shot("deliveries")
    page.get_by_label("Endpoint").select_option("legacy-erp")
    expect(page.locator("details[data-delivery]")).to_have_count(2)
    row = page.locator("details[data-delivery]").nth(1)
    row.locator("summary").click()
    row.get_by_role("link", name="Open", exact=True).click()
    expect(page.locator("#attempts")).to_contain_text("endpoint answered 410 Gone")
    tab.shot("delivery")

    page.goto(dash.url + "/ui/events/" + dash.events[0])
    expect(page.locator("[data-payload]")).to_contain_text('"LicenseId": "LIC-0042"')
    page.set_viewport_size({"width": 1360, "height": 900})
    tab.shot("event", docs=True)

    phone = make_tab(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    phone.login(dash)
    expect(phone.page.locator("tr[data-endpoint='crm-sync'] .badge")).to_be_visible()
    assert phone.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    phone.shot("phone", docs=True)
    phone.page.goto(dash.url + "/ui/endpoints/crm-sync")
    phone.page.locator("details[data-delivery] summary").first.click()
    expect(phone.page.locator("[data-response]").first).to_be_visible()
    assert phone.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    phone.shot("phone-endpoint")

    dark = make_tab(color_scheme="dark")
    dark.login(dash, "/ui/endpoints/crm-sync")
    dark.page.locator("details[data-delivery] summary").first.click()
    expect(dark.page.locator("[data-response]").first).to_be_visible()
    background = dark.page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(13, 17, 23)"
    dark.shot("dark", docs=True)
    dark.page.goto(dash.url + "/ui")
    dark.shot("dark-endpoints")

    # Leave the live page first: a refresh it sent between the cookies going and
    # the next page would be answered 401, and the console would say so.
    page.goto("about:blank")
    page.context.clear_cookies()
    page.goto(dash.url + "/ui")
    page.set_viewport_size({"width": 1360, "height": 700})
    tab.shot("login")
