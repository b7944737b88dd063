"""Fixtures shared by the relay's tests: real receivers and real relays on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import Receiver, RelayThread, base_config, free_port

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def endpoint_yaml(name: str, url: str, **options: Any) -> str:
    """One endpoint as YAML; options are relay.yaml keys (JSON is valid YAML)."""
    fields = {"name": name, "url": url, "allow_http": True, "events": ["*"],
              "secret": SECRET, **options}
    return "  - " + json.dumps(fields) + "\n"


@pytest.fixture(scope="session", autouse=True)
def _postgres_schemas() -> Iterator[None]:
    """Drop the PostgreSQL schemas the session's relays used (RELAY_TEST_STORAGE=postgres)."""
    yield
    from tests.postgres.pg import close_client

    close_client()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def make_receiver() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def make(responder: Any = None) -> Receiver:
        server = Receiver(responder).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def make_relay(tmp_path: Path) -> Iterator[Callable[..., RelayThread]]:
    started: list[RelayThread] = []

    def make(endpoints: str, extra: str = "", db: Path | None = None) -> RelayThread:
        index = len(started)
        port = free_port()
        db_path = db or tmp_path / f"relay-{index}.db"
        config = tmp_path / f"relay-{index}.yaml"
        config.write_text(base_config(port, db_path, endpoints, extra))
        relay = RelayThread(config, port, db_path).start()
        started.append(relay)
        return relay

    yield make
    for relay in started:
        relay.stop()
