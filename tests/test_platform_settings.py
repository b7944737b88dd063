"""README's platform table: each row passes a receiver that verifies as that platform's docs do.

The table is read from README.md, so what a user copies is what was tested.
Each receiver follows its platform's own example code (the seeds): an HMAC
over the raw body keyed with the secret string as it is, and LicenseChain's
over `JSON.stringify(req.body)`, run by node.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import endpoint_yaml
from tests.node import NodeReceiver
from tests.seeds import SEED_PAYLOADS
from tests.support import ROOT, Received, Receiver, RelayThread, base_config, free_port, wait_until

# Each platform: the secret it hands out or is given, the header its receivers read,
# and its example event (tests/seeds.py, in the seeds' order there).
PLATFORMS: dict[str, tuple[str, str, str]] = {
    "License Validator": ("whsec_def456QWxhZGRpbg", "X-Webhook-Signature", SEED_PAYLOADS[0]),
    "LicenseChain": ("optional-custom-secret", "X-Webhook-Signature", SEED_PAYLOADS[1]),
    "License Manager": ("your-webhook-secret", "X-Webhook-Signature", SEED_PAYLOADS[2]),
    "Babel Licensing Service": ("babel-secret-7Hq", "X-Babel-Signature", SEED_PAYLOADS[3]),
    "License Management Platform": ("whsec_MfKQ9r8GKYqrTwjU", "X-Webhook-Signature",
                                    SEED_PAYLOADS[4]),
}


def readme_rows() -> dict[str, dict[str, Any]]:
    """The table's rows: platform -> its endpoint settings, parsed as the YAML they are."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### Which settings fit your platform", 1)[1].split("\n### ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.fullmatch(r"\| ([A-Za-z ]+) \| .* \| `(\{.*\})` \|", line)
        if match:
            rows[match.group(1)] = yaml.safe_load(match.group(2))
    return rows


def raw_hmac(secret: str, header: str, agents: list[str | None]) -> Callable[..., Any]:
    """`hash_hmac('sha256', $payload, $secret)` over php://input: the seeds' PHP and C#."""
    def answer(index: int, request: Received) -> tuple[int, dict[str, str], bytes]:
        agents.append(request.header("User-Agent"))
        expected = hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
        ok = hmac.compare_digest(expected, request.header(header) or "")
        return (200, {}, b"OK") if ok else (401, {}, b"Invalid signature")

    return answer


@pytest.fixture
def node_receiver(tmp_path: Path) -> Iterator[NodeReceiver]:
    receiver = NodeReceiver(PLATFORMS["LicenseChain"][0], tmp_path)
    yield receiver
    receiver.stop()


def test_every_row_of_the_readme_table_delivers_to_its_platforms_receiver(
        node_receiver: NodeReceiver, tmp_path: Path) -> None:
    rows = readme_rows()
    assert sorted(rows) == sorted(PLATFORMS)
    receivers: list[Receiver] = []
    agents: dict[str, list[str | None]] = {}
    yaml_text = ""
    for number, (platform, settings) in enumerate(rows.items()):
        secret, header, _ = PLATFORMS[platform]
        if platform == "LicenseChain":
            url = node_receiver.url
        else:
            agents[platform] = []
            receivers.append(Receiver(raw_hmac(secret, header, agents[platform])).start())
            url = receivers[-1].url + "/webhook"
        yaml_text += endpoint_yaml(f"p{number}", url, secret=secret,
                                   events=[f"seed.p{number}"], **settings)
    port = free_port()
    config = tmp_path / "relay.yaml"
    config.write_text(base_config(port, tmp_path / "relay.db", yaml_text))
    relay = RelayThread(config, port, tmp_path / "relay.db").start()
    try:
        for number, platform in enumerate(rows):
            sent = relay.post(PLATFORMS[platform][2], headers={"X-Event-Type": f"seed.p{number}"})
            event_id = sent.json()["id"]

            def delivered(event_id: str = event_id) -> bool:
                event = httpx.get(f"{relay.url}/v1/events/{event_id}", timeout=10).json()
                return [d["status"] for d in event["deliveries"]] == ["delivered"]

            wait_until(delivered, message=f"{platform}'s event to pass its receiver")
        assert node_receiver.next_request()["ok"] is True
        assert agents["License Manager"] == ["LicenseManager-Webhook/1.0"]
        assert (agents["Babel Licensing Service"][0] or "").startswith("relay/")
    finally:
        relay.stop()
        for receiver in receivers:
            receiver.stop()
