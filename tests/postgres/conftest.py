"""Fixtures for the scale-out tests: a schema of their own and several real relay processes.

Every test here needs the PostgreSQL server (127.0.0.1:5432 unless
RELAY_TEST_POSTGRES says otherwise): it is skipped when the server is down,
and fails instead when CI=true, so CI can never pass without running them.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.postgres.pg import PgClient, client, schema_url
from tests.postgres.receiver import FastReceiver
from tests.support import RelayProcess, base_config, free_port


@pytest.fixture(autouse=True)
def _postgres_server(request: pytest.FixtureRequest) -> None:
    """Tests marked `postgres` need the server: skip them (or fail on CI) without it."""
    if request.node.get_closest_marker("postgres") is not None:
        client()


@pytest.fixture
def pg() -> PgClient:
    return client()


@pytest.fixture
def schema(pg: PgClient) -> Iterator[str]:
    """A fresh, empty schema for one test, dropped afterwards."""
    name = f"rt_{uuid.uuid4().hex[:20]}"
    pg.create_schema(name)
    yield name
    pg.drop_schema(name)


@pytest.fixture
def fast_receiver() -> Iterator[FastReceiver]:
    server = FastReceiver().start()
    yield server
    server.stop()


Cluster = list[RelayProcess]


@pytest.fixture
def make_cluster(tmp_path: Path, schema: str) -> Iterator[Callable[..., Cluster]]:
    """Start `n` relay processes (`python -m relay run`) on the test's schema, side by side."""
    started: list[RelayProcess] = []

    def make(n: int, endpoints: str, extra: str = "", options: str = "",
             log_level: str = "warning") -> Cluster:
        url = schema_url(schema) + (f"&{options}" if options else "")
        relays = []
        for index in range(len(started), len(started) + n):
            port = free_port()
            config = tmp_path / f"relay-{index}.yaml"
            config.write_text(base_config(port, tmp_path / "unused.db", endpoints, extra,
                                          log_level=log_level, storage=url))
            relays.append(RelayProcess(config, port, tmp_path / f"relay-{index}.log"))
        started.extend(relays)
        with ThreadPoolExecutor(n) as pool:  # at once: migrations race on purpose
            list(pool.map(lambda relay: relay.start(timeout=30), relays))
        return relays

    yield make
    running = [r for r in started if r.proc is not None and r.proc.poll() is None]
    for relay in running:  # side by side: each takes a moment to stop gracefully
        assert relay.proc is not None
        relay.proc.send_signal(signal.SIGTERM)
    for relay in running:
        assert relay.proc is not None
        relay.proc.wait(timeout=30)
