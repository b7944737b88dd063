"""Managing API endpoints from /ui: the forms say what the API says, secrets show once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from receiver_kit import Verifier
from tests.dashboard.harness import TOKEN, Dash, start_dash
from tests.dashboard.test_dashboard_security import csrf_of, login
from tests.html_tree import Node, form_fields, parse
from tests.support import Receiver, wait_until

ADMIN = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def dash(tmp_path: Path) -> Iterator[Dash]:
    dash = start_dash(tmp_path, {"declared": {}})
    try:
        yield dash
    finally:
        dash.close()


@pytest.fixture
def target() -> Iterator[Receiver]:
    receiver = Receiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def ui(dash: Dash) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=dash.url, follow_redirects=False, timeout=30) as client:
        assert login(client).status_code == 303
        yield client


def post(ui: httpx.Client, path: str, data: dict[str, Any], page: str = "/ui") -> httpx.Response:
    """Submit a form as the browser does: the CSRF token of the page it is on."""
    return ui.post(path, data={"csrf": csrf_of(ui.get(page).text), **data})


def api(dash: Dash, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, dash.url + path, headers=ADMIN, timeout=30, **kwargs)


def errors_beside(page: Node) -> dict[str, list[str]]:
    """Each field's messages, read from the field the message sits in."""
    found: dict[str, list[str]] = {}
    for field in page.find_all(cls="has-error"):
        control = next(n for n in field.walk() if n.tag in ("input", "textarea", "select")
                       and n.attrs.get("type") != "hidden")
        found[control.attrs["name"]] = [e.text for e in field.find_all("p", cls="field-error")]
    return found


def create(ui: httpx.Client, **fields: str) -> tuple[str, str]:
    response = post(ui, "/ui/new", {"allow_http": "true", "enabled": "true", **fields},
                    page="/ui/new")
    assert response.status_code == 200, response.text
    page = parse(response.text)
    secret = page.one("input", id="secret-value").attrs["value"]
    name = page.one("h1").text.split(": ", 1)[1]
    return name, secret


def test_create_shows_the_secret_once_and_a_receiver_verifies_with_it(
        dash: Dash, ui: httpx.Client, target: Receiver) -> None:
    """The operator creates an endpoint, copies the secret, and the kit verifies with it."""
    name, secret = create(ui, url=target.url + "/hooks", events="license.*")
    assert name.startswith("ep_") and secret.startswith("whsec_")
    for path in ("/ui", f"/ui/endpoints/{name}", f"/ui/endpoints/{name}/edit"):
        assert secret not in ui.get(path).text
    copy = parse(ui.post("/ui/new", data={
        "csrf": csrf_of(ui.get("/ui/new").text), "url": target.url + "/x",
        "allow_http": "true"}).text)
    button = copy.one("button", data_copy="secret-value")
    assert button.text == "Copy"
    assert "will not be shown again" in copy.one(cls="callout-warn").text

    dash.send("license.created", licenseKey="K-1")
    wait_until(lambda: len(target.requests) >= 1, 10, message="a delivery to the new endpoint")
    request = next(r for r in target.requests if r.path == "/hooks")
    event = Verifier(secret=secret).verify(request.body, request.headers)
    assert event.type == "license.created"


def test_the_form_shows_the_api_s_messages_beside_each_field(
        dash: Dash, ui: httpx.Client) -> None:
    """A refused form reads, field by field, what `POST /v1/endpoints` answers; nothing made."""
    body = {"url": "ftp://x", "max_in_flight": "0", "timeout": "soon", "signature": "standard"}
    flags = {"enabled": ["false", "true"], "allow_http": "false",  # as a browser sends them
             "retry_client_errors": "false"}
    response = post(ui, "/ui/new", {**body, **flags}, page="/ui/new")
    assert response.status_code == 422
    beside = errors_beside(parse(response.text))
    answer = api(dash, "POST", "/v1/endpoints", json=body)
    assert answer.status_code == 422
    expected: dict[str, list[str]] = {}
    for error in answer.json()["errors"]:
        expected.setdefault(error["field"], []).append(error["message"])
    assert beside == expected
    assert set(beside) == {"url", "max_in_flight", "timeout"}
    page = parse(response.text)
    assert page.one("input", name="url").attrs["value"] == "ftp://x"  # what was typed stays
    assert page.one("input", name="url").attrs["aria-invalid"] == "true"
    boxes = {n.attrs["name"]: "checked" in n.attrs for n in page.find_all("input", type="checkbox")}
    assert boxes == {"enabled": True, "retry_client_errors": False, "allow_http": False}
    listed = api(dash, "GET", "/v1/endpoints").json()["data"]
    assert [e["name"] for e in listed] == ["declared"]


def test_relay_yaml_endpoints_are_badged_and_have_no_edit_controls(
        dash: Dash, ui: httpx.Client, target: Receiver) -> None:
    name, _ = create(ui, url=target.url + "/hooks")
    listing = parse(ui.get("/ui").text)
    row = listing.one("tr", data_endpoint="declared")
    assert row.one(cls="source-tag").text == "from relay.yaml"
    assert listing.one("tr", data_endpoint=name).find(cls="source-tag") is None
    declared = parse(ui.get("/ui/endpoints/declared").text)
    actions = {form.attrs["action"] for form in declared.find_all("form")}
    for verb in ("edit", "delete", "rotate-secret", "disable", "enable"):
        assert f"/ui/endpoints/declared/{verb}" not in actions
    assert not declared.find_all("a", href="/ui/endpoints/declared/edit")
    mine = parse(ui.get(f"/ui/endpoints/{name}").text)
    mine_actions = {form.attrs["action"] for form in mine.find_all("form")}
    assert {f"/ui/endpoints/{name}/rotate-secret", f"/ui/endpoints/{name}/disable"} <= mine_actions
    # A forged post is refused by the operation itself: 409 endpoint-provisioned.
    refused = post(ui, "/ui/endpoints/declared/delete", {"next": "/ui"})
    assert refused.status_code == 303
    flash = parse(ui.get("/ui").text).one(cls="flash")
    assert "declared in relay.yaml" in flash.text
    assert ui.get("/ui/endpoints/declared/edit").status_code == 409


def test_edit_keeps_what_was_inherited_and_disable_enable_switch_routing(
        dash: Dash, ui: httpx.Client, target: Receiver) -> None:
    name, _ = create(ui, url=target.url + "/hooks", events="license.*")
    form = parse(ui.get(f"/ui/endpoints/{name}/edit").text)
    assert form.one("textarea", name="events").text == "license.*"
    assert form.one("input", name="timeout").attrs["value"] == ""  # inherited, not pinned
    assert form.one("input", name="timeout").attrs["placeholder"] == "5s"
    values = form_fields(form.one("form", cls="endpoint-form"))
    assert values["allow_http"] == ["false", "true"]  # the hidden default, then the box
    values.update(events=["order.paid, license.expired"], description=["CRM"])
    saved = ui.post(f"/ui/endpoints/{name}/edit", data=values)
    assert saved.status_code == 303 and saved.headers["location"] == f"/ui/endpoints/{name}"
    answer = api(dash, "GET", f"/v1/endpoints/{name}").json()
    assert answer["events"] == ["order.paid", "license.expired"]
    assert answer["description"] == "CRM" and answer["timeout"] == "5s"

    off = post(ui, f"/ui/endpoints/{name}/disable", {"next": f"/ui/endpoints/{name}"})
    assert off.status_code == 303
    assert api(dash, "GET", f"/v1/endpoints/{name}").json()["enabled"] is False
    page = parse(ui.get(f"/ui/endpoints/{name}").text)
    assert page.one("form", action=f"/ui/endpoints/{name}/enable").text == "Enable"
    post(ui, f"/ui/endpoints/{name}/enable", {"next": f"/ui/endpoints/{name}"})
    assert api(dash, "GET", f"/v1/endpoints/{name}").json()["enabled"] is True


def test_the_form_sets_shows_and_checks_a_content_filter(dash: Dash, ui: httpx.Client,
                                                         target: Receiver) -> None:
    """An operator reads and writes an endpoint's filter where its other settings are."""
    wanted = 'data.productId == "prod_42" and data.seats >= 10'
    name, _ = create(ui, url=target.url + "/hooks", filter=wanted)
    assert api(dash, "GET", f"/v1/endpoints/{name}").json()["filter"] == wanted
    form = parse(ui.get(f"/ui/endpoints/{name}/edit").text)
    assert form.one("input", name="filter").attrs["value"] == wanted
    values = form_fields(form.one("form", cls="endpoint-form"))
    values.update(filter=["data.seats = 10"])
    refused = ui.post(f"/ui/endpoints/{name}/edit", data=values)
    assert refused.status_code == 422
    assert errors_beside(parse(refused.text)) == {
        "filter": ["unexpected '=' at character 12 (equality is `==`)"]}
    assert api(dash, "GET", f"/v1/endpoints/{name}").json()["filter"] == wanted
    values.update(filter=[""])  # emptied: every event again
    assert ui.post(f"/ui/endpoints/{name}/edit", data=values).status_code == 303
    assert api(dash, "GET", f"/v1/endpoints/{name}").json()["filter"] is None


def test_rotate_shows_the_new_secret_once_and_both_verify_during_the_overlap(
        dash: Dash, ui: httpx.Client, target: Receiver) -> None:
    name, old = create(ui, url=target.url + "/hooks")
    rotated = post(ui, f"/ui/endpoints/{name}/rotate-secret", {"expire_previous_in": "1h"},
                   page=f"/ui/endpoints/{name}")
    assert rotated.status_code == 200
    assert rotated.headers["cache-control"] == "no-store"
    page = parse(rotated.text)
    new = page.one("input", id="secret-value").attrs["value"]
    assert new != old and "keeps signing beside it" in page.text
    dash.send("license.created", licenseKey="K-2")
    wait_until(lambda: len(target.requests) >= 1, 10, message="a delivery after rotation")
    request = target.requests[0]
    for secret in (new, old):  # the receiver not yet switched keeps verifying
        assert Verifier(secret=secret).verify(request.body, request.headers).type == \
            "license.created"


def test_delete_asks_first_and_says_waiting_deliveries_are_cancelled(
        dash: Dash, ui: httpx.Client, target: Receiver) -> None:
    name, _ = create(ui, url=target.url + "/hooks")
    assert api(dash, "POST", f"/v1/endpoints/{name}/pause").status_code == 200
    dash.send("license.created", licenseKey="K-3")
    dash.send("license.created", licenseKey="K-4")
    dash.wait_counts(name, held=2)
    confirm = parse(ui.get(f"/ui/endpoints/{name}/delete").text)
    assert "2 waiting deliveries" in confirm.text and "cancelled" in confirm.text
    form = confirm.one("form", action=f"/ui/endpoints/{name}/delete")
    assert form.one("button").text == "Delete endpoint"
    assert api(dash, "GET", f"/v1/endpoints/{name}").status_code == 200  # asking deletes nothing
    done = ui.post(f"/ui/endpoints/{name}/delete",
                   data={"csrf": form.one("input", name="csrf").attrs["value"], "next": "/ui"})
    assert done.status_code == 303 and done.headers["location"] == "/ui"
    flash = parse(ui.get("/ui").text).one(cls="flash")
    assert f"Deleted {name}: 2 waiting deliveries cancelled" in flash.text
    assert api(dash, "GET", f"/v1/endpoints/{name}").status_code == 404
    log = api(dash, "GET", "/v1/deliveries", params={"endpoint": name}).json()["data"]
    assert [d["status"] for d in log] == ["cancelled", "cancelled"]


def test_tenant_column_and_filter(dash: Dash, ui: httpx.Client, target: Receiver) -> None:
    acme, _ = create(ui, url=target.url + "/a", tenant="acme")
    globex, _ = create(ui, url=target.url + "/g", tenant="globex")
    page = parse(ui.get("/ui").text)
    cells = {row.attrs["data-endpoint"]: row.one("td", data_label="Tenant").text
             for row in page.find_all("tr") if "data-endpoint" in row.attrs}
    assert cells == {"declared": "—", acme: "acme", globex: "globex"}
    options = [o.attrs["value"] for o in page.one("select", name="tenant").find_all("option")]
    assert options == ["", "acme", "globex"]
    only = parse(ui.get("/ui", params={"tenant": "acme"}).text)
    assert [r.attrs["data-endpoint"] for r in only.find_all("tr")
            if "data-endpoint" in r.attrs] == [acme]


def test_management_actions_need_the_csrf_token_and_this_site(
        dash: Dash, ui: httpx.Client, target: Receiver) -> None:
    name, _ = create(ui, url=target.url + "/hooks")
    token = csrf_of(ui.get("/ui").text)
    cases = [
        ("/ui/new", {"url": target.url + "/x", "allow_http": "true"}, {}),
        (f"/ui/endpoints/{name}/delete", {"csrf": token}, {"Origin": "https://evil.example"}),
        (f"/ui/endpoints/{name}/rotate-secret", {"csrf": token},
         {"Sec-Fetch-Site": "cross-site"}),
        (f"/ui/endpoints/{name}/disable", {"csrf": "forged"}, {}),
        (f"/ui/endpoints/{name}/edit", {"csrf": token, "url": "https://x.example"},
         {"Host": "evil.example", "Origin": dash.url}),  # rebinding: Origin is not Host
    ]
    for path, data, headers in cases:
        response = ui.post(path, data=data, headers=headers)
        assert response.status_code == 403, (path, response.status_code)
    listed = api(dash, "GET", "/v1/endpoints").json()["data"]
    assert [e["name"] for e in listed] == ["declared", name]
    assert listed[1]["enabled"] is True and listed[1]["url"] == target.url + "/hooks"
