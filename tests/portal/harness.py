"""A relay for the portal tests: an event catalog, a relay.yaml endpoint, and tenants' browsers.

A `Browser` is an httpx client with its own cookie jar that submits forms the
way a browser does: with the CSRF token of the page it is on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.dashboard.harness import TOKEN, Dash, start_dash
from tests.html_tree import Node, form_fields, parse

__all__ = ["ADMIN", "CATALOG", "Browser", "make_relay", "portal_link"]

ADMIN = {"Authorization": f"Bearer {TOKEN}"}
# The Babel Licensing Service's event types (shared/seeds/000).
CATALOG = ["license.created", "license.updated", "license.expired", "license.deleted"]
PORTAL_YAML = (f"events: {json.dumps(CATALOG)}\n"
               "ingest: {tenant_field: data.customer}\n"
               "portal: {title: Acme Licensing webhooks, accent_color: '#0F7B6C', "
               "frame_ancestors: ['https://app.acme.example'], allow_http: true}\n")


def make_relay(tmp: Path, extra: str = PORTAL_YAML) -> Dash:
    """A relay with the catalog, events' tenants read from `data.customer`, and `declared`."""
    return start_dash(tmp, {"declared": {}}, TOKEN, extra)


def portal_link(dash: Dash, tenant: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{dash.url}/v1/tenants/{tenant}/portal-sessions", json=body or None,
                      headers=ADMIN, timeout=30)


class Jar:
    """The portal's cookies, kept by hand: framed, they are `Secure`, and httpx's jar keeps
    those for https only (a browser keeps them for a loopback address too)."""

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}

    def on_request(self, request: httpx.Request) -> None:
        if self.cookies:
            request.headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def on_response(self, response: httpx.Response) -> None:
        for header in response.headers.get_list("set-cookie"):
            pair, _, attributes = header.partition(";")
            name, _, value = pair.strip().partition("=")
            if "max-age=0" in attributes.lower().replace(" ", "") or not value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value


@dataclass
class Browser:
    """One customer's browser, signed in to the portal by a link."""

    http: httpx.Client
    jar: Jar

    @classmethod
    def open(cls, dash: Dash, tenant: str) -> Browser:
        response = portal_link(dash, tenant)
        assert response.status_code == 201, response.text
        jar = Jar()
        http = httpx.Client(base_url=dash.url, follow_redirects=False, timeout=30,
                            event_hooks={"request": [jar.on_request],
                                         "response": [jar.on_response]})
        started = http.get(response.json()["url"])
        assert started.status_code == 303 and started.headers["location"] == "/portal"
        assert "relay_portal" in jar.cookies
        return cls(http, jar)

    @property
    def cookie(self) -> str:
        return self.jar.cookies["relay_portal"]

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def page(self, path: str) -> Node:
        response = self.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return parse(response.text)

    def csrf(self, path: str = "/portal") -> str:
        return self.page(path).find_all("input", name="csrf")[0].attrs["value"]

    def post(self, path: str, data: dict[str, Any] | None = None,
             page: str = "/portal", **headers: str) -> httpx.Response:
        return self.http.post(path, data={"csrf": self.csrf(page), **(data or {})},
                              headers=headers)

    def submit(self, page: str, action: str, **changes: Any) -> httpx.Response:
        """Fill the form of `page` that posts to `action` and send it."""
        form = self.page(page).one("form", action=action)
        fields = form_fields(form)
        fields.update({key: value if isinstance(value, list) else [value]
                       for key, value in changes.items()})
        return self.http.post(action, data=fields)

    def flash(self, path: str = "/portal") -> str:
        node = self.page(path).find(cls="flash")
        return node.text if node else ""

    def close(self) -> None:
        self.http.close()
