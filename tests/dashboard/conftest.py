"""Fixtures for the dashboard tests: a relay with real receivers, and headless Chromium.

The browser is Debian's `chromium` (scripts/install-browser), driven by
Playwright's sync API; Playwright's own browser download is never used. Without
/usr/bin/chromium the browser tests skip, unless CI=true, where they fail.
Screenshots land in test-artifacts/dashboard/.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dashboard.harness import (
    CHROMIUM,
    CHROMIUM_ARGS,
    LAPTOP,
    TOKEN,
    Dash,
    Tab,
    chromium_or_skip,
    start_dash,
)


@pytest.fixture
def make_dash(tmp_path: Path) -> Iterator[Callable[..., Dash]]:
    """Start relays with scriptable receivers (see `start_dash`); all stopped at the end."""
    started: list[Dash] = []

    def make(endpoints: dict[str, dict[str, Any]], token: str | None = TOKEN,
             extra: str = "") -> Dash:
        dash = start_dash(tmp_path, endpoints, token, extra)
        started.append(dash)
        return dash

    yield make
    for dash in started:
        dash.close()


# -- the browser ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per test module (starting it costs about a second)."""
    chromium_or_skip()
    sync_api = pytest.importorskip("playwright.sync_api")
    sync_api.expect.set_options(timeout=10_000)  # live refresh + a loaded CI machine
    playwright = sync_api.sync_playwright().start()
    try:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                              args=CHROMIUM_ARGS, headless=True)
        try:
            yield instance
        finally:
            instance.close()
    finally:
        playwright.stop()


@pytest.fixture
def make_tab(browser: Any) -> Iterator[Callable[..., Tab]]:
    """New browser contexts (own cookies) with lists refreshing every second."""
    contexts: list[Any] = []
    tabs: list[Tab] = []

    def make(viewport: dict[str, int] | None = None, color_scheme: str = "light",
             **options: Any) -> Tab:
        context = browser.new_context(viewport=viewport or LAPTOP, color_scheme=color_scheme,
                                      **options)
        context.add_init_script(  # a framed page of another site may have no storage
            "try { localStorage.setItem('relay.refreshSeconds', '1') } catch (e) {}")
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        tab = Tab(page, errors)
        tabs.append(tab)
        return tab

    yield make
    for context in contexts:
        context.close()
    problems = [e for tab in tabs for e in tab.errors]
    assert not problems, f"errors in the browser console: {problems}"


@pytest.fixture
def tab(make_tab: Callable[..., Tab]) -> Tab:
    return make_tab()
