"""The pages' content over plain HTTP: pagination, filters, errors, the shared admin data."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html import unescape

import httpx
import pytest

from tests.dashboard.harness import TOKEN, Dash, Switch, start_dash


@pytest.fixture(scope="module")
def dash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dash]:
    """30 events to `billing` (delivered) and `crm-sync` (answers 500, retry in an hour)."""
    dash = start_dash(tmp_path_factory.mktemp("pages"), {
        "billing": {},
        "crm-sync": {"retry_schedule": ["1h"], "switch": Switch(500, b'{"error": "down"}')},
    })
    try:
        events = [{"type": "license.created" if n % 3 else "order.created", "data": {"n": n}}
                  for n in range(30)]
        response = dash.relay.post(json.dumps(events), path="/v1/events/batch")
        assert response.status_code == 202, response.text
        dash.wait_counts("billing", delivered=30)
        dash.wait_counts("crm-sync", scheduled=30)
        yield dash
    finally:
        dash.close()


@pytest.fixture(scope="module")
def client(dash: Dash) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=dash.url, follow_redirects=False, timeout=30) as http:
        form = http.get("/ui/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form)
        assert csrf
        answer = http.post("/ui/login", data={"csrf": csrf.group(1), "token": TOKEN})
        assert answer.status_code == 303
        yield http


def ids(html: str) -> list[str]:
    return re.findall(r'<details class="drow[^"]*" id="(dlv_\d+)"', html)


def link(html: str, text: str) -> str | None:
    match = re.search(r'href="([^"]+)"[^>]*>' + re.escape(text), html)
    return unescape(match.group(1)) if match else None


def test_pages_follow_the_admin_api_keyset(dash: Dash, client: httpx.Client) -> None:
    """25 a page, newest first, the same rows and cursor as GET /v1/deliveries."""
    first = client.get("/ui/endpoints/billing").text
    api = httpx.get(f"{dash.url}/v1/deliveries", params={"endpoint": "billing", "limit": 25},
                    headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).json()
    assert ids(first) == [d["id"] for d in api["data"]]
    older = link(first, "Older »")
    assert older == f"/ui/endpoints/billing?cursor={api['next_cursor']}"
    assert link(first, "« Newest") is None
    second = client.get(older).text
    assert len(ids(second)) == 5
    assert not set(ids(first)) & set(ids(second))
    assert link(second, "Older »") is None
    assert link(second, "« Newest") == "/ui/endpoints/billing"


def test_filters_keep_to_pages(client: httpx.Client) -> None:
    """Status and type filters narrow the list, and the next page keeps them."""
    page = client.get("/ui/deliveries", params={"type": "order.created",
                                                "endpoint": "crm-sync"}).text
    assert len(ids(page)) == 10
    assert "license.created" not in re.sub(r"<datalist.*?</datalist>", "", page, flags=re.S)
    page = client.get("/ui/deliveries", params={"status": "scheduled"}).text
    older = link(page, "Older »")
    assert older is not None and "status=scheduled" in older and "cursor=" in older
    assert "delivered</span>" not in client.get(older).text


def event_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-event="([^"]+)"', html)


def test_the_events_page_is_the_event_lists_pages(dash: Dash, client: httpx.Client) -> None:
    """25 events a page, newest first, as GET /v1/events; filters narrow it and stay."""
    first = client.get("/ui/events").text
    api = httpx.get(f"{dash.url}/v1/events", params={"limit": 25},
                    headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).json()
    assert event_ids(first) == [e["id"] for e in api["data"]]
    assert f'href="/ui/events/{api["data"][0]["id"]}"' in first
    older = link(first, "Older »")
    assert older == f"/ui/events?cursor={api['next_cursor']}"
    assert len(event_ids(client.get(older).text)) == 5
    orders = client.get("/ui/events", params={"type": "order.created"}).text
    assert len(event_ids(orders)) == 10
    assert client.get("/ui/events", params={"source": "default", "type": "order.created"}
                      ).text.count("<tr data-event=") == 10
    assert "No events match." in client.get("/ui/events", params={"tenant": "acme"}).text


def test_counts_and_next_retry_on_the_endpoint_page(client: httpx.Client) -> None:
    """The endpoint page shows its counts by state and when the next retry is due."""
    page = client.get("/ui/endpoints/crm-sync").text
    assert re.search(r'state-scheduled[^"]*">\s*<span class="state-n">30</span>', page)
    assert re.search(r"<time [^>]*data-due>in 59m</time>", page)
    assert 'class="badge badge-error"' in page


@pytest.mark.parametrize(("path", "status", "text"), [
    ("/ui/deliveries?status=lost", 400, "status: &#39;lost&#39; is not a delivery state"),
    ("/ui/deliveries?cursor=nonsense", 400, "not a cursor this relay issued"),
    ("/ui/endpoints/nobody", 404, "no endpoint named &#39;nobody&#39;"),
    ("/ui/deliveries/dlv_999999", 404, "no delivery dlv_999999"),
    ("/ui/deliveries/42x", 404, "is not a delivery id"),
    ("/ui/events/evt_missing", 404, "no event &#39;evt_missing&#39;"),
    ("/ui/events?cursor=nonsense", 400, "not a cursor this relay issued"),
    ("/ui/elsewhere", 404, "There is no dashboard page at /ui/elsewhere."),
])
def test_errors_are_pages_that_say_what_is_wrong(client: httpx.Client, path: str, status: int,
                                                 text: str) -> None:
    response = client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert text in response.text


def test_retry_of_a_held_endpoint_says_why_not(dash: Dash, client: httpx.Client) -> None:
    """An action the admin API refuses comes back as an error message, nothing changed."""
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/ui/endpoints/crm-sync").text)
    assert csrf
    token = csrf.group(1)
    client.post("/ui/endpoints/crm-sync/pause", data={"csrf": token})
    try:
        response = client.post("/ui/deliveries/dlv_2/retry",
                               data={"csrf": token, "next": "/ui/endpoints/crm-sync"})
        assert response.headers["location"] == "/ui/endpoints/crm-sync"
        page = client.get("/ui/endpoints/crm-sync").text
        assert "flash-error" in page
        assert "endpoint &#39;crm-sync&#39; is paused, so nothing would be sent" in page
    finally:
        client.post("/ui/endpoints/crm-sync/resume", data={"csrf": token})
