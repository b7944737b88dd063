"""`body: compact` against LicenseChain's own receiver, run by node: it verifies JSON.stringify.

The receiver checks the signature over `JSON.stringify(req.body)` as its
documentation shows. An indented event fails it byte-exact and passes it
compact; the relay's own events (`relay test`, `relay send`) pass it either way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from relay import __version__
from tests.admin.harness import run_cli
from tests.conftest import endpoint_yaml
from tests.node import NodeReceiver
from tests.seeds import SEED_PAYLOADS
from tests.support import RelayThread, base_config, free_port, wait_until

pytestmark = pytest.mark.both_backends

SECRET = "lc_9f2b7c4e1a"  # LicenseChain keys the HMAC with the secret string as it is


@pytest.fixture
def node_pair(tmp_path: Path) -> Iterator[dict[str, NodeReceiver]]:
    receivers: dict[str, NodeReceiver] = {}
    try:
        for name in ("compact", "exact"):
            folder = tmp_path / name
            folder.mkdir()
            receivers[name] = NodeReceiver(SECRET, folder)
        yield receivers
    finally:
        for receiver in receivers.values():
            receiver.stop()


def _final(relay: RelayThread, event_id: str) -> dict[str, Any]:
    def settled() -> dict[str, Any] | None:
        event = httpx.get(f"{relay.url}/v1/events/{event_id}", timeout=10).json()
        statuses = {d["endpoint"]: d["status"] for d in event["deliveries"]}
        return statuses if statuses and all(
            s in ("delivered", "failed") for s in statuses.values()) else None

    found: dict[str, Any] = wait_until(settled, message=f"{event_id}'s deliveries to settle")
    return found


def test_compact_endpoints_pass_a_receiver_that_verifies_json_stringify(
        node_pair: dict[str, NodeReceiver], tmp_path: Path) -> None:
    common = {"signature": "x-webhook", "secret": SECRET, "retry_client_errors": False,
              "events": ["license.*", "webhook.test"]}
    endpoints = (
        endpoint_yaml("js-compact", node_pair["compact"].url, body="compact",
                      headers={"User-Agent": "LicenseManager-Webhook/1.0"}, **common)
        + endpoint_yaml("js-exact", node_pair["exact"].url, **common))
    port = free_port()
    config = tmp_path / "relay.yaml"
    config.write_text(base_config(port, tmp_path / "relay.db", endpoints))
    relay = RelayThread(config, port, tmp_path / "relay.db").start()
    try:
        indented = SEED_PAYLOADS[1]  # LicenseChain's event, indented, non-ASCII, big ids
        event_id = relay.post(indented).json()["id"]
        assert _final(relay, event_id) == {"js-compact": "delivered", "js-exact": "failed"}
        compact, exact = node_pair["compact"].next_request(), node_pair["exact"].next_request()
        assert compact == {"ok": True, "agent": "LicenseManager-Webhook/1.0"}
        assert exact == {"ok": False, "agent": f"relay/{__version__}"}

        tested = run_cli("test", "js-exact", "-c", str(config))
        assert tested.code == 0, tested.out + tested.err
        assert tested.out.startswith("js-exact: test delivered, 200 in ")
        assert node_pair["exact"].next_request()["ok"] is True

        data = json.dumps(json.loads(indented)["data"], indent=2, ensure_ascii=True)
        sent = run_cli("send", "license.created", "--data", data, "-c", str(config))
        assert sent.code == 0, sent.err
        sent_id = sent.out.split()[0]
        assert _final(relay, sent_id) == {"js-compact": "delivered", "js-exact": "delivered"}
        assert node_pair["exact"].next_request()["ok"] is True
    finally:
        relay.stop()
