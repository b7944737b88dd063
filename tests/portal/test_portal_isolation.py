"""One tenant's portal session, trying every URL and form field of another tenant's.

Tenant A's browser gets 404 for B's endpoint names, delivery ids and event ids,
for relay.yaml's endpoint and its deliveries, whatever the method; nothing of
B's changes; and what A creates is A's whatever the form says.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dashboard.harness import Dash
from tests.portal.harness import ADMIN, Browser, make_relay
from tests.support import Receiver

pytestmark = pytest.mark.both_backends


@dataclass
class World:
    dash: Dash
    a: Browser
    b: Browser
    a_endpoint: str
    b_endpoint: str
    b_delivery: str
    b_event: str
    declared_delivery: str


def admin(dash: Dash, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, dash.url + path, headers=ADMIN, timeout=30, **kwargs)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    dash = make_relay(tmp_path)
    receiver = Receiver().start()
    a = Browser.open(dash, "acme")
    b = Browser.open(dash, "globex")
    try:
        made = {}
        for tenant in ("acme", "globex"):
            answer = admin(dash, "POST", "/v1/endpoints", json={
                "url": f"{receiver.url}/{tenant}", "tenant": tenant, "allow_http": True})
            assert answer.status_code == 201, answer.text
            made[tenant] = answer.json()["name"]
        b_event = dash.send("license.created", customer="globex", licenseKey="B-1")
        dash.wait_counts(made["globex"], delivered=1)
        dash.wait_counts("declared", delivered=1)
        deliveries = admin(dash, "GET", "/v1/deliveries").json()["data"]
        b_delivery = next(d["id"] for d in deliveries if d["endpoint"] == made["globex"])
        declared = next(d["id"] for d in deliveries if d["endpoint"] == "declared")
        yield World(dash, a, b, made["acme"], made["globex"], b_delivery, b_event, declared)
    finally:
        a.close()
        b.close()
        receiver.stop()
        dash.close()


def test_a_sees_only_its_own_endpoints(world: World) -> None:
    rows = [r.attrs["data-endpoint"] for r in world.a.page("/portal").find_all("tr")
            if "data-endpoint" in r.attrs]
    assert rows == [world.a_endpoint]
    text = world.a.get("/portal").text
    assert world.b_endpoint not in text and "declared" not in text


def test_every_url_of_another_tenant_answers_404(world: World) -> None:
    a, foreign = world.a, [world.b_endpoint, "declared", "no-such-endpoint"]
    for name in foreign:
        for path in (f"/portal/endpoints/{name}", f"/portal/endpoints/{name}/edit",
                     f"/portal/endpoints/{name}/delete"):
            assert a.get(path).status_code == 404, path
        for verb in ("edit", "delete", "enable", "disable", "test", "rotate-secret"):
            path = f"/portal/endpoints/{name}/{verb}"
            answer = a.post(path, {"url": "https://evil.example", "next": "/portal"})
            assert answer.status_code == 404, path
    for delivery in (world.b_delivery, world.declared_delivery, "dlv_999999"):
        assert a.get(f"/portal/deliveries/{delivery}").status_code == 404
        assert a.post(f"/portal/deliveries/{delivery}/retry", {"next": "/portal"}
                      ).status_code == 404
    assert a.get(f"/portal/events/{world.b_event}").status_code == 404
    # The same 404 for another tenant's endpoint as for one that does not exist.
    mine = a.get(f"/portal/endpoints/{world.b_endpoint}").text.replace(world.b_endpoint, "X")
    none = a.get("/portal/endpoints/no-such-endpoint").text.replace("no-such-endpoint", "X")
    assert mine == none


def test_nothing_of_another_tenant_changed(world: World) -> None:
    before = admin(world.dash, "GET", f"/v1/endpoints/{world.b_endpoint}").json()
    test_every_url_of_another_tenant_answers_404(world)
    after = admin(world.dash, "GET", f"/v1/endpoints/{world.b_endpoint}").json()
    assert after["url"] == before["url"] and after["enabled"] is True
    assert after["counts"]["delivered"] == 1 and sum(after["counts"].values()) == 1
    delivery = admin(world.dash, "GET", f"/v1/deliveries/{world.b_delivery}").json()
    assert delivery["attempt_count"] == 1
    assert [d["id"] for d in admin(world.dash, "GET", "/v1/deliveries",
                                   params={"endpoint": "declared"}).json()["data"]] == [
        world.declared_delivery]


def test_what_a_creates_is_a_s_whatever_the_form_says(world: World) -> None:
    made = world.a.submit("/portal/new", "/portal/new", url="https://crm.example/hooks",
                          tenant="globex", name=world.b_endpoint, headers="X-Evil: 1",
                          max_in_flight="1000")
    assert made.status_code == 200, made.text
    listed = admin(world.dash, "GET", "/v1/endpoints", params={"tenant": "acme"}).json()
    assert len(listed["data"]) == 2
    new = next(e for e in listed["data"] if e["name"] != world.a_endpoint)
    assert new["tenant"] == "acme" and new["headers"] == {} and new["max_in_flight"] == 10
    assert new["name"] != world.b_endpoint


def test_one_tenant_s_csrf_token_does_not_work_with_another_s_session(world: World) -> None:
    token = world.a.csrf()
    answer = world.b.http.post(f"/portal/endpoints/{world.b_endpoint}/disable",
                               data={"csrf": token, "next": "/portal"})
    assert answer.status_code == 403
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        refused = world.b.post(f"/portal/endpoints/{world.b_endpoint}/disable",
                               {"next": "/portal"}, **headers)
        assert refused.status_code == 403
    assert world.b.http.post(f"/portal/endpoints/{world.b_endpoint}/disable",
                             data={"next": "/portal"}).status_code == 403
    assert admin(world.dash, "GET", f"/v1/endpoints/{world.b_endpoint}").json()["enabled"]


def test_a_name_reused_for_another_tenant_does_not_show_the_old_owner_s_log(
        world: World) -> None:
    """The operator deletes globex's endpoint and gives its name to acme: globex's
    deliveries under that name stay hidden from acme."""
    dash, name = world.dash, world.b_endpoint
    assert admin(dash, "DELETE", f"/v1/endpoints/{name}").status_code == 204
    again = admin(dash, "POST", "/v1/endpoints", json={
        "name": name, "url": "https://crm.acme.example/hooks", "tenant": "acme"})
    assert again.status_code == 201, again.text
    page = world.a.page(f"/portal/endpoints/{name}")
    assert not [r for r in page.find_all("tr") if "data-delivery-row" in r.attrs]
    assert world.a.get(f"/portal/deliveries/{world.b_delivery}").status_code == 404
