"""A relay.yaml the relay refused to reload is said on every dashboard page, until one takes."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.dashboard.harness import Dash


def test_every_page_says_config_rejected_until_a_reload_takes(
        make_dash: Callable[..., Dash]) -> None:
    dash = make_dash({"billing": {}}, token=None)
    path = dash.relay.config_path
    good = path.read_text()
    assert "config rejected" not in httpx.get(dash.url + "/ui", timeout=10).text
    path.write_text(good.replace("delivery:\n", "delivery:\n  concurrency: zero\n", 1))
    assert httpx.post(dash.url + "/v1/reload", timeout=10).json()["applied"] is False
    for page in ("/ui", "/ui/deliveries", "/ui/endpoints/billing"):
        html = httpx.get(dash.url + page, timeout=10).text
        assert "config rejected: relay.yaml was not reloaded" in html, page
        assert "<code>delivery.concurrency: expected a whole number" in html, page
    ready = httpx.get(dash.url + "/readyz", timeout=10).json()
    assert ready["config"]["detail"].startswith("config rejected: delivery.concurrency; ")
    path.write_text(good)
    assert httpx.post(dash.url + "/v1/reload", timeout=10).json()["applied"] is True
    assert "config rejected" not in httpx.get(dash.url + "/ui", timeout=10).text
    assert "detail" not in httpx.get(dash.url + "/readyz", timeout=10).json()["config"]
