"""The dashboard in headless Chromium: what an operator does when a receiver breaks."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.dashboard.harness import Dash, Switch, Tab

CRM_ERROR = b'{"error": "column \\"license_key\\" does not exist"}'


@pytest.fixture
def failing(make_dash: Callable[..., Dash]) -> Dash:
    """`crm-sync` answers 500 to everything (three attempts, then failed); `billing` is fine."""
    dash = make_dash({
        "billing": {"events": ["license.*", "order.*"]},
        "crm-sync": {"events": ["license.*"], "switch": Switch(500, CRM_ERROR),
                     "path": "/hooks/license"},
    })
    dash.send("license.created", licenseKey="ABCD-1234")
    dash.send("license.expired", licenseKey="EFGH-5678")
    dash.wait_counts("crm-sync", failed=2)
    dash.wait_counts("billing", delivered=2)
    return dash


def test_find_failing_endpoint_read_response_retry_and_see_it_delivered(
        failing: Dash, tab: Tab) -> None:
    """Log in, spot the failing endpoint, read what it answered, fix it, retry, see it go."""
    page = tab.page
    tab.login(failing)

    row = page.locator("tr[data-endpoint='crm-sync']")
    expect(row.locator(".badge")).to_have_text("error")
    expect(row).to_contain_text("endpoint answered 500")
    expect(page.locator("tr[data-endpoint='billing'] .badge")).to_have_text("ok")
    tab.shot("endpoints-failing")

    row.get_by_role("link", name="crm-sync").click()
    expect(page).to_have_url(re.compile(r"/ui/endpoints/crm-sync$"))
    expect(page.locator(".callout-error")).to_contain_text("gave up after 3 attempts")
    newest = page.locator("details[data-delivery]").first
    expect(newest.locator(".badge")).to_have_text("failed")
    newest.locator("summary").click()
    response = newest.locator("[data-response]").first
    expect(response).to_contain_text(r'"error": "column \"license_key\" does not exist"')
    expect(newest.locator(".attempt")).to_have_count(3)
    expect(newest.locator(".attempt").first).to_contain_text("500")
    tab.shot("endpoint-expanded-failure")

    failing.switches["crm-sync"].set(200, b'{"received": true}')
    newest.get_by_role("button", name="Retry now").click()
    expect(page.locator(".flash-success")).to_contain_text("is due now (it was failed)")
    retried = page.locator("details[data-delivery][open]")
    expect(retried.locator(".badge")).to_have_text("delivered")  # live refresh, no reload
    expect(retried.locator(".attempt").first).to_contain_text("200")
    expect(retried.locator("[data-response]").first).to_contain_text('"received": true')
    tab.shot("endpoint-retried")


def test_send_test_event_shows_its_outcome(failing: Dash, tab: Tab) -> None:
    """The test button sends a signed webhook.test and says how the endpoint answered."""
    page = tab.page
    tab.login(failing, "/ui/endpoints/billing")
    page.get_by_role("button", name="Send test event").click()
    flash = page.locator(".flash-success")
    expect(flash).to_contain_text("Test event delivered to billing: 200 in")
    opened = page.locator("details[data-delivery][open]")
    expect(opened.locator(".c-type")).to_have_text("webhook.test")
    request = failing.receivers["billing"].requests[-1]
    assert b'{"type":"webhook.test",' in request.body  # as JSON.stringify writes it
    assert request.header("webhook-signature")

    page.goto(failing.url + "/ui/endpoints/crm-sync")
    page.get_by_role("button", name="Send test event").click()
    expect(page.locator(".flash-error")).to_contain_text("Test event to crm-sync failed")
    tab.shot("test-event-failed")


def test_pause_holds_deliveries_and_resume_sends_them(failing: Dash, tab: Tab) -> None:
    """Pause: the badge says paused and new deliveries wait as held; resume sends them."""
    page = tab.page
    tab.login(failing, "/ui/endpoints/billing")
    page.get_by_role("button", name="Pause").click()
    expect(page.locator(".flash-success")).to_contain_text("Paused billing")
    expect(page.locator("#endpoint-status .badge")).to_have_text("paused")
    expect(page.locator(".callout-paused")).to_be_visible()

    failing.send("order.created", orderId=7)
    held = page.locator("details[data-delivery]").first
    expect(held.locator(".badge")).to_have_text("held")  # appears by live refresh
    tab.shot("endpoint-paused")

    page.get_by_role("button", name="Resume").click()
    expect(page.locator(".flash-success")).to_contain_text("Resumed billing: 1 held delivery")
    expect(page.locator("#endpoint-status .badge")).to_have_text("ok")
    expect(page.locator("details[data-delivery]").first.locator(".badge")).to_have_text(
        "delivered")
    assert failing.counts("billing")["delivered"] == 3


def test_recover_requeues_what_failed(failing: Dash, tab: Tab) -> None:
    """After the receiver is fixed, recover since 1h sends both failed deliveries again."""
    page = tab.page
    tab.login(failing, "/ui/endpoints/crm-sync")
    failing.switches["crm-sync"].set(204, b"")
    page.get_by_label("Failed since").fill("1h")
    page.get_by_role("button", name="Recover").click()
    expect(page.locator(".flash-success")).to_contain_text(
        "Requeued 2 failed deliveries of crm-sync")
    expect(page.locator("details[data-delivery] .badge")).to_have_text(
        ["delivered", "delivered"])
    expect(page.locator("#endpoint-status .badge")).to_have_text("ok")

    page.get_by_label("Failed since").fill("yesterday-ish")
    page.get_by_role("button", name="Recover").click()
    expect(page.locator(".flash-error")).to_contain_text("neither an ISO 8601 time")


def test_search_and_status_filter(failing: Dash, tab: Tab) -> None:
    """The endpoints list narrows by name or URL and by status."""
    page = tab.page
    tab.login(failing)
    page.get_by_label("Search endpoints by name or URL").fill("hooks/license")
    page.keyboard.press("Enter")
    expect(page.locator("tr[data-endpoint]")).to_have_count(1)
    expect(page.locator("tr[data-endpoint]")).to_have_attribute("data-endpoint", "crm-sync")
    page.get_by_role("link", name=re.compile(r"^OK")).click()  # the search is kept
    expect(page.locator(".empty-row")).to_contain_text("No endpoint matches")
    page.get_by_label("Search endpoints by name or URL").fill("")
    page.keyboard.press("Enter")  # the status filter is kept
    expect(page.locator("tr[data-endpoint]")).to_have_count(1)
    expect(page.locator("tr[data-endpoint]")).to_have_attribute("data-endpoint", "billing")
    page.get_by_role("link", name=re.compile(r"^All")).click()
    expect(page.locator("tr[data-endpoint]")).to_have_count(2)


def test_delivery_filters_and_event_page(failing: Dash, tab: Tab) -> None:
    """Filter deliveries by type; the event page shows the payload and masked headers."""
    page = tab.page
    tab.login(failing, "/ui/deliveries")
    expect(page.locator("details[data-delivery]")).to_have_count(4)
    page.get_by_label("Event type").fill("license.expired")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("details[data-delivery]")).to_have_count(2)
    page.get_by_label("Status").select_option("failed")  # submits on change
    expect(page).to_have_url(re.compile(r"status=failed"))
    expect(page.locator("details[data-delivery]")).to_have_count(1)

    page.locator("details[data-delivery] summary").first.click()
    page.locator("details[data-delivery][open]").get_by_role("link", name=re.compile(
        r"^evt_")).click()
    expect(page.locator("[data-payload]")).to_contain_text('"licenseKey": "EFGH-5678"')
    headers = page.locator(".headers-card")
    expect(headers).to_have_count(2)
    expect(headers.first).to_contain_text("webhook-id")
    signature = headers.first.locator("tr", has_text="webhook-signature").locator("td")
    expect(signature).to_have_text("v1,…")
    tab.shot("event")
