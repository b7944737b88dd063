"""The README's demo, end to end: relay process -> the example FastAPI receiver process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import endpoint_yaml
from tests.support import ROOT, RelayProcess, base_config, free_port, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.both_backends]


@pytest.fixture
def example_receiver(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = open(tmp_path / "receiver.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "examples/fastapi_receiver.py", "--port", str(port),
         "--db", str(tmp_path / "receiver.db")],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            assert proc.poll() is None, (tmp_path / "receiver.log").read_text()
            return False

    wait_until(up, timeout=20, message="the example receiver")
    yield url
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


def test_relay_delivers_to_the_example_receiver(example_receiver: str, tmp_path: Path) -> None:
    """Events sent to the relay are verified and processed once by the receiver kit."""
    port = free_port()
    config = tmp_path / "relay.yaml"
    config.write_text(base_config(port, tmp_path / "relay.db",
                                  endpoint_yaml("demo", example_receiver + "/webhooks")))
    relay = RelayProcess(config, port, tmp_path / "relay.log").start()
    try:
        shapes = [
            {"type": "license.created", "data": {"licenseKey": "ABCD-1234", "seats": 5}},
            {"event": "license.validated", "timestamp": "2025-01-03T14:25:30Z", "data": {}},
            {"event_type": "license.expiring", "payload": {"license_id": 123}},
            {"Id": 42, "LicenseId": "LIC-0001", "EventType": "license.created"},
        ]
        ids = [relay.post(shape).json()["id"] for shape in shapes]
        received = wait_until(
            lambda: (r := httpx.get(example_receiver + "/received").json()) and len(r) >= 4 and r,
            timeout=20, message="four events at the receiver")
        assert [r["id"] for r in received] == ids
        assert [r["type"] for r in received] == ["license.created", "license.validated",
                                                 "license.expiring", "license.created"]
        assert relay.terminate() == 0
    finally:
        if relay.proc is not None and relay.proc.poll() is None:
            relay.proc.kill()
