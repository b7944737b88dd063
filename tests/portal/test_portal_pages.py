"""A customer's webhooks page: add an endpoint, test it, see a failure, fix it, retry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from receiver_kit import Verifier
from tests.dashboard.harness import Dash, Switch
from tests.html_tree import Node, parse
from tests.portal.harness import ADMIN, CATALOG, Browser, make_relay
from tests.support import Receiver, wait_until

pytestmark = pytest.mark.both_backends

CRM_ERROR = b'{"error": "column \\"license_key\\" does not exist"}'


@pytest.fixture
def dash(tmp_path: Path) -> Iterator[Dash]:
    dash = make_relay(tmp_path)
    try:
        yield dash
    finally:
        dash.close()


@pytest.fixture
def switch() -> Switch:
    return Switch()


@pytest.fixture
def target(switch: Switch) -> Iterator[Receiver]:
    receiver = Receiver(switch).start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def acme(dash: Dash) -> Iterator[Browser]:
    browser = Browser.open(dash, "acme")
    try:
        yield browser
    finally:
        browser.close()


def add_endpoint(browser: Browser, url: str, **fields: object) -> tuple[str, str]:
    """Fill in the add form as a customer does; the name and the secret shown once."""
    response = browser.submit("/portal/new", "/portal/new", url=url, **fields)
    assert response.status_code == 200, response.text
    page = parse(response.text)
    name = page.one("a", cls="btn-primary").attrs["href"].rsplit("/", 1)[1]
    return name, page.one("input", id="secret-value").attrs["value"]


def rows(page: Node) -> list[Node]:
    return [r for r in page.find_all("tr") if "data-delivery-row" in r.attrs]


def test_the_add_form_offers_the_event_catalog_and_the_seeds_columns(
        acme: Browser) -> None:
    form = acme.page("/portal/new").one("form", action="/portal/new")
    boxes = [n.attrs["value"] for n in form.find_all("input", type="checkbox", name="events")]
    assert boxes == ["*", *CATALOG]
    labels = [n.text for n in form.find_all("label")]
    assert {"Name", "URL", "Active"} <= set(labels)
    for absent in ("tenant", "headers", "max_in_flight", "allow_http", "rate_limit", "secret"):
        assert form.find(name=absent) is None, absent  # the operator's fields stay theirs
    headings = [th.text for th in acme.page("/portal").find_all("th")]
    assert headings == ["Name", "URL", "Events", "Status", "Sent At", "Next Retry"]


def test_add_test_break_fix_retry(dash: Dash, acme: Browser, target: Receiver,
                                  switch: Switch) -> None:
    """The whole story of issue 18 over HTTP; the browser test tells it again in Chromium."""
    name, secret = add_endpoint(acme, target.url + "/hooks", description="CRM sync",
                                events=["license.created", "license.expired"])
    assert secret.startswith("whsec_")
    answer = httpx.get(f"{dash.url}/v1/endpoints/{name}", headers=ADMIN, timeout=30).json()
    assert answer["tenant"] == "acme" and answer["events"] == ["license.created",
                                                               "license.expired"]
    listing = acme.page("/portal")
    row = listing.one("tr", data_endpoint=name)
    assert row.one("td", data_label="Name").text == "CRM sync"
    assert row.one("td", data_label="URL").text == target.url + "/hooks"
    assert secret not in acme.get("/portal").text
    assert secret not in acme.get(f"/portal/endpoints/{name}").text

    page = f"/portal/endpoints/{name}"
    sent = acme.post(f"{page}/test", {"next": page}, page=page)
    assert sent.status_code == 303
    assert "Test event delivered" in acme.flash(page)
    [request] = target.requests
    assert Verifier(secret=secret).verify(request.body, request.headers).type == "webhook.test"

    switch.set(500, CRM_ERROR)
    acme.post(f"{page}/test", {"next": page}, page=page)
    assert "failed" in acme.flash(page)
    wait_until(lambda: "failed" in [r.one("td", data_label="Status").text
                                    for r in rows(acme.page(page))], 10,
               message="the failed test delivery")
    failed = next(r for r in rows(acme.page(page))
                  if r.one("td", data_label="Status").text == "failed")
    assert "500" in failed.one("td", data_label="Response").text
    delivery = failed.attrs["data-delivery-row"]
    detail = acme.page(f"/portal/deliveries/{delivery}")
    responses = [n.text for n in detail.find_all("pre", data_response="")]
    assert responses and all('"error": "column \\"license_key\\" does not exist"' in text
                             for text in responses)
    assert "endpoint answered 500" in detail.one(id="delivery-meta").text

    switch.set(200, b'{"received": true}')
    retried = acme.post(f"/portal/deliveries/{delivery}/retry", {"next": page}, page=page)
    assert retried.status_code == 303 and retried.headers["location"] == f"{page}#{delivery}"
    wait_until(lambda: acme.page(f"/portal/deliveries/{delivery}").one(
        id="delivery-status").text == "delivered", 10, message="the retried delivery")


def test_a_refused_form_shows_the_api_s_message_beside_the_field(
        dash: Dash, acme: Browser) -> None:
    response = acme.submit("/portal/new", "/portal/new", url="ftp://crm.example",
                           tenant="globex")
    assert response.status_code == 422
    page = parse(response.text)
    field = page.one(cls="has-error")
    api = httpx.post(f"{dash.url}/v1/endpoints", headers=ADMIN, timeout=30,
                     json={"url": "ftp://crm.example"}).json()
    assert [e.text for e in field.find_all("p", cls="field-error")] == [
        e["message"] for e in api["errors"] if e["field"] == "url"]
    assert field.one("input", name="url").attrs["value"] == "ftp://crm.example"


def test_edit_toggle_rotate_and_delete_own_endpoints(
        dash: Dash, acme: Browser, target: Receiver) -> None:
    name, old = add_endpoint(acme, target.url + "/hooks", description="CRM")
    page = f"/portal/endpoints/{name}"
    saved = acme.submit(f"{page}/edit", f"{page}/edit", description="CRM v2",
                        events=["license.deleted"], tenant="globex")
    assert saved.status_code == 303
    answer = httpx.get(f"{dash.url}/v1/endpoints/{name}", headers=ADMIN, timeout=30).json()
    assert answer["description"] == "CRM v2" and answer["events"] == ["license.deleted"]
    assert answer["tenant"] == "acme"  # a field the form does not have is not read

    acme.post(f"{page}/disable", {"next": page}, page=page)
    assert acme.page(page).one("form", action=f"{page}/enable").text == "Enable"
    assert acme.page("/portal").one("tr", data_endpoint=name).one(
        "td", data_label="Status").text == "disabled enabled: false"
    acme.post(f"{page}/enable", {"next": page}, page=page)

    rotated = acme.post(f"{page}/rotate-secret", {"next": page}, page=page)
    assert rotated.status_code == 200 and rotated.headers["cache-control"] == "no-store"
    new = parse(rotated.text).one("input", id="secret-value").attrs["value"]
    assert new not in (old, "") and new not in acme.get(page).text

    confirm = acme.page(f"{page}/delete")
    assert "No delivery is waiting for it" in confirm.text
    deleted = acme.post(f"{page}/delete", {"next": "/portal"}, page=f"{page}/delete")
    assert deleted.status_code == 303 and deleted.headers["location"] == "/portal"
    assert acme.get(page).status_code == 404


def test_saving_the_form_keeps_patterns_the_catalog_does_not_list(
        dash: Dash, acme: Browser) -> None:
    """An operator subscribed acme's endpoint to `license.*`; the tenant edits its URL."""
    made = httpx.post(f"{dash.url}/v1/endpoints", headers=ADMIN, timeout=30, json={
        "url": "https://crm.acme.example/a", "tenant": "acme", "events": ["license.*"]})
    name = made.json()["name"]
    page = f"/portal/endpoints/{name}"
    form = acme.page(f"{page}/edit").one("form", action=f"{page}/edit")
    ticked = [n.attrs["value"] for n in form.find_all("input", name="events")
              if "checked" in n.attrs]
    assert ticked == ["license.*"]
    assert acme.submit(f"{page}/edit", f"{page}/edit",
                       url="https://crm.acme.example/b").status_code == 303
    answer = httpx.get(f"{dash.url}/v1/endpoints/{name}", headers=ADMIN, timeout=30).json()
    assert answer["url"] == "https://crm.acme.example/b" and answer["events"] == ["license.*"]
