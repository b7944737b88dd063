"""The relay as a real process: kill -9 mid-delivery, SIGTERM, and the CLI against it."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from tests.conftest import SECRET, endpoint_yaml
from tests.support import ROOT, Receiver, RelayProcess, base_config, db_rows, free_port, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def make_process(tmp_path: Path) -> Iterator[Callable[[str], RelayProcess]]:
    made: list[RelayProcess] = []

    def make(endpoints: str) -> RelayProcess:
        port = free_port()
        config = tmp_path / "relay.yaml"
        config.write_text(base_config(port, tmp_path / "relay.db", endpoints))
        process = RelayProcess(config, port, tmp_path / "relay.log")
        made.append(process)
        return process

    yield make
    for process in made:
        if process.proc is not None and process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait()


def test_kill_9_mid_delivery_loses_nothing(
    make_process: Callable[[str], RelayProcess], make_receiver: Callable[..., Receiver],
    tmp_path: Path,
) -> None:
    """SIGKILL while a slow receiver holds attempts; after restart every acked event arrives."""
    slow = threading.Event()
    receiver = make_receiver(lambda i, r: ("hang", 30.0) if not slow.is_set() else (200, {}, b""))
    relay = make_process(endpoint_yaml("crm", receiver.url, max_in_flight=5))
    relay.start()
    acked = []
    for i in range(40):
        answer = relay.post({"type": "license.created", "data": {"n": i}})
        assert answer.status_code == 202
        acked.append(answer.json()["id"])
    receiver.wait_for(5)  # five attempts are hanging in the receiver now
    relay.kill()
    rows = db_rows(tmp_path / "relay.db", "SELECT status, count(*) FROM deliveries GROUP BY 1")
    assert dict(rows) == {"delivering": 5, "pending": 35}
    slow.set()
    relay.start()
    wait_until(lambda: db_rows(tmp_path / "relay.db",
                               "SELECT count(*) FROM deliveries WHERE status = 'delivered'"
                               )[0][0] == 40, timeout=30, message="all 40 delivered")
    delivered = {r.header("webhook-id") for r in receiver.requests[5:]}
    assert delivered == set(acked)
    for request in receiver.requests[5:]:
        Webhook(SECRET).verify(request.body, request.headers)
    interrupted = db_rows(tmp_path / "relay.db",
                          "SELECT count(*) FROM attempts WHERE error LIKE 'interrupted%'")
    assert interrupted == [(5,)]
    assert db_rows(tmp_path / "relay.db", "PRAGMA integrity_check") == [("ok",)]
    assert relay.terminate() == 0


def test_sigterm_finishes_in_flight_attempts_and_exits_0(
    make_process: Callable[[str], RelayProcess], make_receiver: Callable[..., Receiver],
    tmp_path: Path,
) -> None:
    """SIGTERM lets attempts in flight finish and record, leaves nothing delivering, exits 0."""
    receiver = make_receiver(lambda i, r: ("hang", 1.0))
    relay = make_process(endpoint_yaml("crm", receiver.url, max_in_flight=4))
    relay.start()
    for i in range(10):
        relay.post({"type": "order.created", "n": i})
    receiver.wait_for(4)
    started = time.monotonic()
    assert relay.terminate() == 0
    assert time.monotonic() - started < 5.0
    rows = dict(db_rows(tmp_path / "relay.db",
                        "SELECT status, count(*) FROM deliveries GROUP BY 1"))
    assert rows.get("delivering") is None
    assert rows["delivered"] >= 4
    assert sum(rows.values()) == 10


def test_second_relay_on_the_same_database_refuses_to_start(
    make_process: Callable[[str], RelayProcess], receiver: Receiver, tmp_path: Path
) -> None:
    """Two relays on one SQLite file would both own its deliveries: the second one exits."""
    relay = make_process(endpoint_yaml("crm", receiver.url))
    relay.start()
    second = subprocess.run(
        [sys.executable, "-m", "relay", "run", "-c", str(relay.config_path)],
        capture_output=True, text=True, timeout=30, cwd=ROOT,
    )
    assert second.returncode == 1
    assert "in use by another relay process" in second.stderr
    assert relay.terminate() == 0


def test_cli_send_against_a_running_relay(
    make_process: Callable[[str], RelayProcess], receiver: Receiver, tmp_path: Path
) -> None:
    """`relay send` posts an event that is delivered; `--key` makes a resend a no-op."""
    relay = make_process(endpoint_yaml("crm", receiver.url))
    relay.start()
    data = tmp_path / "data.json"
    data.write_text('{"licenseKey": "ABCD-1234"}')

    def send(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "relay", "send", *args, "-c", str(relay.config_path)],
            capture_output=True, text=True, timeout=30, cwd=ROOT,
        )

    first = send("license.created", "--data", f"@{data}", "--key", "lic-1")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "lic-1  license.created  -> 1 delivery"
    again = send("license.created", "--data", f"@{data}", "--key", "lic-1", "--json")
    assert json.loads(again.stdout)["duplicate"] is True
    [request] = receiver.wait_for(1)
    assert json.loads(request.body) == {"type": "license.created",
                                        "data": {"licenseKey": "ABCD-1234"}}
    bad = send("license.created", "--data", "{nope")
    assert bad.returncode == 2 and "--data: not valid JSON" in bad.stderr
    assert relay.terminate() == 0
    down = send("license.created")
    assert down.returncode == 1
    assert f"no relay is answering at http://127.0.0.1:{relay.port}" in down.stderr
