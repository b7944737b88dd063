"""Helpers for the dashboard tests: receivers a test can break and fix, a browser tab.

Screenshots land in test-artifacts/dashboard/ (gitignored); with
RELAY_UPDATE_SCREENSHOTS=1 the ones the docs use are copied to docs/screenshots/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import endpoint_yaml
from tests.support import ROOT, Receiver, RelayThread, base_config, free_port, wait_until

CHROMIUM = Path(os.environ.get("RELAY_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
TOKEN = "dash-admin-token"
ADMIN_YAML = f"admin:\n  token: {TOKEN}\n"
LAPTOP = {"width": 1360, "height": 860}
PHONE = {"width": 390, "height": 844}


class Switch:
    """A receiver's answer that a test can change while the relay runs."""

    def __init__(self, status: int = 200, body: bytes = b'{"ok": true}',
                 content_type: str = "application/json") -> None:
        self.status = status
        self.body = body
        self.content_type = content_type

    def set(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.status, self.body, self.content_type = status, body, content_type

    def __call__(self, index: int, request: Any) -> tuple[int, dict[str, str], bytes]:
        return self.status, {"Content-Type": self.content_type}, self.body


@dataclass
class Dash:
    """A running relay with named receivers, and what a test does to it from outside."""

    relay: RelayThread
    switches: dict[str, Switch]
    receivers: dict[str, Receiver]
    token: str | None
    events: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.relay.url

    def send(self, event_type: str = "license.created", body: dict[str, Any] | None = None,
             **data: Any) -> str:
        payload = body if body is not None else {"type": event_type, "data": data}
        response = self.relay.post(json.dumps(payload))
        assert response.status_code == 202, response.text
        event_id: str = response.json()["id"]
        self.events.append(event_id)
        return event_id

    def counts(self, endpoint: str) -> dict[str, int]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = httpx.get(f"{self.url}/v1/endpoints/{endpoint}", headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        counts: dict[str, int] = response.json()["counts"]
        return counts

    def wait_counts(self, endpoint: str, timeout: float = 10.0, **expected: int) -> None:
        wait_until(lambda: all(self.counts(endpoint)[k] == v for k, v in expected.items()),
                   timeout, interval=0.05,
                   message=f"{endpoint} counts {expected} (now {self.counts(endpoint)})")

    def close(self) -> None:
        """Stop the relay, then the receivers side by side (each takes half a second)."""
        self.relay.stop()
        threads = [threading.Thread(target=r.stop) for r in self.receivers.values()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def start_dash(tmp: Path, endpoints: dict[str, dict[str, Any]], token: str | None = TOKEN,
               extra: str = "") -> Dash:
    """A relay whose endpoints each have a receiver answering as its `Switch` says.

    An endpoint's options are relay.yaml keys, plus `switch` (the receiver's
    answer, 200 by default) and `path` (appended to the receiver's URL).
    """
    switches: dict[str, Switch] = {}
    receivers: dict[str, Receiver] = {}
    yaml = ""
    for name, given in endpoints.items():
        options = dict(given)
        switch = options.pop("switch", None) or Switch()
        path = options.pop("path", "/hooks")
        receivers[name] = Receiver(switch).start()
        switches[name] = switch
        yaml += endpoint_yaml(name, receivers[name].url + path, **options)
    admin = f"admin:\n  token: {token}\n" if token else ""
    port = free_port()
    config = tmp / f"relay-{port}.yaml"
    config.write_text(base_config(port, tmp / f"relay-{port}.db", yaml, admin + extra))
    relay = RelayThread(config, port, tmp / f"relay-{port}.db").start()
    return Dash(relay, switches, receivers, token)


def chromium_or_skip() -> None:
    if CHROMIUM.exists():
        return
    reason = (f"{CHROMIUM} is missing: run scripts/install-browser (Debian's chromium) "
              "to run the dashboard's browser tests")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + " (CI=true: the browser tests must run)", pytrace=False)
    pytest.skip(reason)


@dataclass
class Tab:
    """A page in its own browser context, with what went wrong in its console."""

    page: Any
    errors: list[str]

    def shot(self, name: str, *, full_page: bool = False, docs: bool = False) -> Path:
        """Save a screenshot as a test artifact; with `docs`, also for docs/screenshots.

        The docs copies are only written when RELAY_UPDATE_SCREENSHOTS=1, so a
        test run does not rewrite tracked files.
        """
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        if docs and os.environ.get("RELAY_UPDATE_SCREENSHOTS") == "1":
            DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOCS_SCREENSHOTS / f"{name}.png")
        return path

    def login(self, dash: Dash, path: str = "/ui") -> None:
        self.page.goto(dash.url + path)
        assert "/ui/login" in self.page.url
        self.page.get_by_label("Admin token").fill(dash.token or "")
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(re.compile(re.escape(dash.url + path) + r"(\?.*)?$"))
