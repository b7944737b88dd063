"""Endpoint management and the tenant portal in headless Chromium.

An operator creates an endpoint, copies its secret with the button, and a
receiver built with the kit verifies with it; after a rotation it keeps
verifying during the overlap. A tenant opens a portal link, adds an endpoint,
tests it, watches it fail and recover, at laptop and phone width, with the
keyboard only where it matters.
"""

from __future__ import annotations

import http.server
import json
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.dashboard.harness import PHONE, TOKEN, Dash, Tab, start_dash
from tests.dashboard.kit_receiver import KitReceiver
from tests.support import Receiver, wait_until

ADMIN = {"Authorization": f"Bearer {TOKEN}"}
CATALOG = ["license.created", "license.updated", "license.expired", "license.deleted"]
CRM_ERROR = b'{"error": "column \\"license_key\\" does not exist"}'
PORTAL_YAML = (f"events: {json.dumps(CATALOG)}\n"
               "ingest: {tenant_field: data.customer}\n"
               "portal: {title: Acme Licensing webhooks, accent_color: '#0f7b6c', "
               "allow_http: true}\n")
CLIPBOARD = {"permissions": ["clipboard-read", "clipboard-write"]}


@pytest.fixture
def kit() -> Iterator[tuple[KitReceiver, Receiver]]:
    behaviour = KitReceiver()
    receiver = Receiver(behaviour).start()
    try:
        yield behaviour, receiver
    finally:
        receiver.stop()


@pytest.fixture
def dash(tmp_path: Path) -> Iterator[Dash]:
    dash = start_dash(tmp_path, {"declared": {}}, TOKEN, PORTAL_YAML)
    try:
        yield dash
    finally:
        dash.close()


def copied_secret(page: Page, keyboard: bool = False) -> str:
    """Press Copy (with the mouse, or Tab and Enter) and read what the clipboard got."""
    if keyboard:
        tab_to(page, "button[data-copy]")
        page.keyboard.press("Enter")
    else:
        page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    secret: str = page.evaluate("navigator.clipboard.readText()")
    assert secret == page.locator("#secret-value").input_value()
    return secret


def test_operator_creates_copies_verifies_rotates_and_keeps_verifying(
        dash: Dash, make_tab: Callable[..., Tab], kit: tuple[KitReceiver, Receiver]) -> None:
    behaviour, receiver = kit
    tab = make_tab(**CLIPBOARD)
    page = tab.page
    tab.login(dash)
    page.get_by_role("link", name="+ New endpoint").click()
    page.get_by_label("Name", exact=True).fill("crm-sync")
    page.get_by_label("URL").fill("ftp://crm.example")
    page.get_by_role("button", name="Create endpoint").click()
    expect(page.locator("#url-error")).to_contain_text("expected an http:// or https:// URL")
    tab.errors.clear()  # Chromium logs the 422 that answers a refused form
    tab.shot("manage-form-error", docs=True)
    page.get_by_label("URL").fill(receiver.url + "/hooks")
    page.get_by_label("Allow plain http://").check()
    page.get_by_label("Events").fill("license.*")
    page.get_by_role("button", name="Create endpoint").click()
    expect(page.locator("h1")).to_have_text("Endpoint created: crm-sync")
    expect(page.locator(".callout-warn")).to_contain_text("will not be shown again")
    tab.shot("manage-secret-once", docs=True)
    behaviour.secret = copied_secret(page)

    dash.send("license.created", licenseKey="K-1")
    wait_until(lambda: behaviour.verified == ["license.created"], 10,
               message="the kit verifying the first delivery")

    page.get_by_role("link", name="Done").click()
    expect(page).to_have_url(re.compile(r"/ui/endpoints/crm-sync$"))
    tab_to(page, "#expire_previous_in")  # the rotation form, by keyboard
    page.keyboard.press("Control+a")
    page.keyboard.type("1h")
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("New secret: crm-sync")
    expect(page.locator(".secret-card")).to_contain_text("keeps signing beside it")
    rotated = copied_secret(page, keyboard=True)
    assert rotated != behaviour.secret
    dash.send("license.expired", licenseKey="K-1")  # the receiver still has the old one
    wait_until(lambda: behaviour.verified == ["license.created", "license.expired"], 10,
               message="the old secret verifying during the overlap")
    behaviour.secret = rotated
    dash.send("license.updated", licenseKey="K-1")
    wait_until(lambda: len(behaviour.verified) == 3, 10, message="the new secret verifying")

    page.get_by_role("link", name="Done").click()
    page.get_by_role("link", name="Delete endpoint…").click()
    expect(page.locator(".confirm-card")).to_contain_text("No delivery is waiting for it")
    page.get_by_role("button", name="Delete endpoint").click()
    expect(page.locator(".flash-success")).to_contain_text("Deleted crm-sync")
    expect(page.locator("tr[data-endpoint='declared'] .source-tag")).to_have_text(
        "from relay.yaml")


def portal_url(dash: Dash, tenant: str) -> str:
    answer = httpx.post(f"{dash.url}/v1/tenants/{tenant}/portal-sessions", headers=ADMIN,
                        timeout=30)
    assert answer.status_code == 201, answer.text
    url: str = answer.json()["url"]
    return url


def tab_to(page: Page, selector: str, limit: int = 60) -> None:
    """Press Tab until `selector` has the focus, as a keyboard user does."""
    target = page.locator(selector)
    for _ in range(limit):
        if target.evaluate("el => el === document.activeElement"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{selector} never got the focus by Tab")


def test_tenant_adds_tests_sees_failure_fixes_retries(
        dash: Dash, make_tab: Callable[..., Tab], kit: tuple[KitReceiver, Receiver]) -> None:
    behaviour, receiver = kit
    tab = make_tab()
    page = tab.page
    page.goto(portal_url(dash, "acme"))
    expect(page).to_have_url(re.compile(r"/portal$"))
    expect(page.locator(".brand")).to_have_text("Acme Licensing webhooks")
    expect(page.get_by_role("columnheader")).to_have_text(
        ["Name", "URL", "Events", "Status", "Sent At", "Next Retry"])

    # The add form, with the keyboard only.
    page.get_by_role("link", name="+ Add endpoint").focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/portal/new$"))
    tab_to(page, "#f-description")
    page.keyboard.type("CRM sync")
    page.keyboard.press("Tab")
    page.keyboard.type(receiver.url + "/hooks")
    tab_to(page, "input[name=events][value='*']")
    page.keyboard.press("Space")  # untick "All events"
    tab_to(page, "input[name=events][value='license.created']")
    page.keyboard.press("Space")
    tab.shot("portal-add", docs=True)
    tab_to(page, "form.endpoint-form button[type=submit]")
    page.keyboard.press("Enter")
    expect(page.locator(".callout-warn")).to_contain_text("will not be shown again")
    behaviour.secret = page.locator("#secret-value").input_value()
    page.get_by_role("link", name="Done").click()

    page.get_by_role("button", name="Send test event").click()
    expect(page.locator(".flash-success")).to_contain_text("Test event delivered")
    expect(page.locator("tr[data-delivery-row] .badge").first).to_have_text("delivered")
    assert behaviour.verified == ["webhook.test"]

    behaviour.broken = (500, CRM_ERROR)
    page.get_by_role("button", name="Send test event").click()
    expect(page.locator(".flash-error")).to_contain_text("failed")
    failed = page.locator("tr[data-delivery-row]").first
    expect(failed.locator(".badge")).to_have_text("failed", timeout=15_000)  # live refresh
    tab.shot("portal-failed", docs=True)
    failed.get_by_role("link", name="Details").click()
    expect(page.locator("[data-response]").first).to_contain_text(
        r'"error": "column \"license_key\" does not exist"')
    expect(page.locator("#delivery-meta")).to_contain_text("endpoint answered 500")
    tab.shot("portal-delivery", docs=True)

    behaviour.broken = None
    page.get_by_role("button", name="Retry").click()
    expect(page.locator(".flash-success")).to_contain_text("is due now (it was failed)")
    page.get_by_role("link", name="Endpoint", exact=True).click()
    expect(page.locator("tr[data-delivery-row] .badge").first).to_have_text("delivered")
    assert behaviour.verified == ["webhook.test", "webhook.test"]
    tab.shot("portal-endpoint", docs=True)


def test_the_portal_at_phone_width(dash: Dash, make_tab: Callable[..., Tab],
                                   kit: tuple[KitReceiver, Receiver]) -> None:
    behaviour, receiver = kit
    tab = make_tab(viewport=PHONE)
    page = tab.page
    page.goto(portal_url(dash, "acme"))
    page.get_by_role("link", name="+ Add endpoint").click()
    page.get_by_label("Name").fill("Phone CRM")
    page.get_by_label("URL").fill(receiver.url + "/hooks")
    page.get_by_role("button", name="Save").click()
    behaviour.secret = page.locator("#secret-value").input_value()
    page.get_by_role("link", name="Done").click()
    page.get_by_role("button", name="Send test event").click()
    expect(page.locator(".flash-success")).to_contain_text("Test event delivered")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways ({width}px)"
    expect(page.locator(".flash-success")).to_contain_text("Test event delivered to Phone CRM")
    expect(page.locator(".brand")).to_be_visible()
    page.evaluate("window.scrollTo(0, 0)")
    tab.shot("portal-phone", docs=True)


class PlatformSite:
    """The platform's own site on another origin (localhost, not 127.0.0.1), serving one
    page that frames a portal link, as a license platform's account page would."""

    def __init__(self) -> None:
        self.page = b""
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(site.page)))
                self.end_headers()
                self.wfile.write(site.page)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://localhost:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_framed_portal_works_inside_the_platform_s_page(
        tmp_path: Path, make_tab: Callable[..., Tab]) -> None:
    """The platform's page frames the link; the portal signs in and works inside it.

    Framed, the portal's cookie is `SameSite=None; Secure; Partitioned`, which
    Chromium keeps for a loopback address as for https.
    """
    site = PlatformSite()
    yaml = PORTAL_YAML.replace("allow_http: true}",
                               f"allow_http: true, frame_ancestors: ['{site.origin}']}}")
    dash = start_dash(tmp_path, {"declared": {}}, TOKEN, yaml)
    try:
        site.page = (f'<!doctype html><title>Acme account</title><h1>Your account</h1>'
                     f'<iframe src="{portal_url(dash, "acme")}" width="1100" height="640">'
                     "</iframe>").encode()
        tab = make_tab()
        page = tab.page
        page.goto(site.origin + "/account/webhooks")
        frame = page.frame_locator("iframe")
        expect(frame.locator(".brand")).to_have_text("Acme Licensing webhooks")
        frame.get_by_role("link", name="+ Add endpoint").click()
        frame.get_by_label("Name").fill("Framed CRM")
        frame.get_by_label("URL").fill("https://crm.acme.example/hooks")
        frame.get_by_role("button", name="Save").click()  # a form post inside the frame
        expect(frame.locator("h1")).to_contain_text("Endpoint created")
        tab.shot("portal-framed", docs=True)
        # The dashboard is never framed, whatever the portal allows.
        site.page = f'<iframe src="{dash.url}/ui/login"></iframe>'.encode()
        blocked: list[str] = []
        page.on("console", lambda m: blocked.append(m.text))
        page.goto(site.origin + "/other")
        wait_until(lambda: any("frame-ancestors" in text or "X-Frame-Options" in text
                               for text in blocked), 10, message="the dashboard refusing a frame")
        tab.errors.clear()  # that refusal is the console error this test wants
    finally:
        dash.close()
        site.close()


def test_a_tenant_editing_urls_in_the_address_bar_finds_nothing_of_another(
        dash: Dash, make_tab: Callable[..., Tab]) -> None:
    """Tenant A types B's endpoint name and delivery id into the address bar: 404 pages."""
    made = httpx.post(f"{dash.url}/v1/endpoints", headers=ADMIN, timeout=30, json={
        "url": "https://crm.globex.example/hooks", "tenant": "globex",
        "description": "Globex CRM"}).json()["name"]
    dash.send("license.created", customer="globex", licenseKey="G-1")
    wait_until(lambda: httpx.get(f"{dash.url}/v1/deliveries", headers=ADMIN, timeout=30,
                                 params={"endpoint": made}).json()["data"], 10,
               message="globex's delivery")
    delivery = httpx.get(f"{dash.url}/v1/deliveries", headers=ADMIN, timeout=30,
                         params={"endpoint": made}).json()["data"][0]["id"]
    tab = make_tab()
    page = tab.page
    page.goto(portal_url(dash, "acme"))
    expect(page.locator("tr.empty-row")).to_contain_text("No endpoints yet")
    for path in (f"/portal/endpoints/{made}", f"/portal/endpoints/{made}/edit",
                 f"/portal/endpoints/{made}/delete", "/portal/endpoints/declared",
                 f"/portal/deliveries/{delivery}"):
        answer = page.goto(dash.url + path)
        assert answer is not None and answer.status == 404, path
        expect(page.locator("h1")).to_have_text("Not found")
        expect(page.locator("main")).not_to_contain_text("Globex CRM")
    page.goto(dash.url + "/ui")
    expect(page).to_have_url(re.compile(r"/ui/login"))  # the dashboard wants the admin token
    tab.errors.clear()  # Chromium logs each 404 it was sent to on purpose
