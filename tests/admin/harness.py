"""Helpers for the operations tests: a relay with its receivers and admin/CLI clients.

CLI commands run as subprocesses (`python -m relay.cli ...`), as a user would
run them, which also keeps the relay threads' log lines out of their output.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support import (
    ROOT,
    Receiver,
    RelayThread,
    base_config,
    db_execute,
    free_port,
    wait_until,
)

ADMIN_TOKEN = "t0p-admin-token"
ADMIN_YAML = f"admin:\n  token: {ADMIN_TOKEN}\n"
DEAD_URL = "http://127.0.0.1:9/hooks"  # the discard port: nothing listens, connect is refused


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Ops:
    """A running relay, its receivers, and clients for its admin API and CLI."""

    relay: RelayThread
    config_path: Path
    receivers: dict[str, Receiver] = field(default_factory=dict)
    token: str | None = ADMIN_TOKEN
    events: list[str] = field(default_factory=list)  # ids of the events `send` sent

    def __post_init__(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self.http = httpx.Client(base_url=self.relay.url, headers=headers, timeout=30)

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(path, params=params)

    def post(self, path: str, body: Any = None) -> httpx.Response:
        return self.http.post(path, json=body)

    def send(self, event_type: str = "license.created", **data: Any) -> str:
        response = self.relay.post(json.dumps({"type": event_type, "data": data}))
        assert response.status_code == 202, response.text
        event_id: str = response.json()["id"]
        self.events.append(event_id)
        return event_id

    def send_batch(self, count: int, event_type: str = "license.created") -> None:
        for start in range(0, count, 500):
            items = [{"type": event_type, "data": {"n": n}}
                     for n in range(start, min(start + 500, count))]
            response = self.relay.post(json.dumps(items), path="/v1/events/batch")
            assert response.status_code == 202, response.text

    def counts(self, endpoint: str) -> dict[str, int]:
        response = self.get(f"/v1/endpoints/{endpoint}")
        assert response.status_code == 200, response.text
        counts: dict[str, int] = response.json()["counts"]
        return counts

    def wait_counts(self, endpoint: str, timeout: float = 10.0, **expected: int) -> None:
        def matches() -> bool:
            counts = self.counts(endpoint)
            return all(counts[state] == n for state, n in expected.items())

        wait_until(matches, timeout, interval=0.05,
                   message=f"{endpoint} counts {expected} (now {self.counts(endpoint)})")

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        """Write to the running relay's database, as a test that back-dates rows must."""
        db_execute(self.relay.db, sql, params)

    def cli(self, *args: str, config: Path | None = None, timeout: float = 60) -> CliResult:
        return run_cli(*args, "-c", str(config or self.config_path), timeout=timeout)

    def close(self) -> None:
        self.http.close()


def run_cli(*args: str, timeout: float = 60) -> CliResult:
    proc = subprocess.run([sys.executable, "-m", "relay.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=timeout, check=False)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


Reply = tuple[int, dict[str, str], bytes]


def always(status: int, body: bytes = b"") -> Callable[[int, Any], Reply]:
    return lambda index, request: (status, {}, body)


class Switch:
    """A receiver behaviour an operator can break and fix while the relay runs."""

    def __init__(self, status: int = 200, body: bytes = b"ok") -> None:
        self.status = status
        self.body = body

    def __call__(self, index: int, request: Any) -> Reply:
        return self.status, {"Content-Type": "application/json"}, self.body


def start_ops(tmp: Path, endpoints: str, receivers: dict[str, Receiver],
              extra: str = ADMIN_YAML, db: Path | None = None,
              token: str | None = ADMIN_TOKEN) -> Ops:
    port = free_port()
    db_path = db or tmp / "relay.db"
    config = tmp / f"relay-{port}.yaml"
    config.write_text(base_config(port, db_path, endpoints, extra))
    relay = RelayThread(config, port, db_path).start()
    return Ops(relay, config, receivers, token)


def receiver(responder: Any = None) -> Receiver:
    return Receiver(responder).start()


def stop_receivers(receivers: Iterable[Receiver]) -> None:
    """Stop them side by side: each `shutdown()` waits up to half a second for its poll."""
    threads = [threading.Thread(target=r.stop) for r in receivers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
