"""PostgreSQL going away or read-only: ingest answers 503, never 202, and recovers after."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import endpoint_yaml
from tests.postgres.pg import PG_URL, PgClient, schema_url
from tests.postgres.proxy import TcpProxy
from tests.postgres.receiver import FastReceiver
from tests.support import TEST_SECRETS_KEY, RelayThread, free_port, wait_until

pytestmark = pytest.mark.postgres


def start_relay(tmp_path: Path, storage: str, receiver: FastReceiver) -> RelayThread:
    """A relay whose leases run out one second after a 1 s attempt timeout."""
    port = free_port()
    config = tmp_path / "relay.yaml"
    config.write_text(
        f"listen: 127.0.0.1:{port}\nstorage: {storage}\nsecrets_key: {TEST_SECRETS_KEY}\n"
        "logging: {level: warning, format: json}\n"
        "delivery: {timeout: 1s, lease_margin: 1s, retry_schedule: [100ms], jitter: 0, "
        "allow_networks: [127.0.0.0/8], shutdown_grace: 2s}\n"
        f"endpoints:\n{endpoint_yaml('sink', receiver.url + '/sink')}")
    return RelayThread(config, port, tmp_path / "unused.db").start()


def assert_unavailable(relay: RelayThread, body: bytes) -> httpx.Response:
    response = relay.post(body)
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"
    assert response.json()["type"] == "urn:relay:problem:storage-unavailable"
    return response


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    server = TcpProxy().start()
    yield server
    server.stop()


def test_database_outage_answers_503_and_the_relay_recovers(
    tmp_path: Path, proxy: TcpProxy, schema: str, fast_receiver: FastReceiver, pg: PgClient,
) -> None:
    """Connections cut and refused: 503 with Retry-After and /readyz 503; back: 202 and sent."""
    url = schema_url(schema, timeout="2s").replace(":5432/", f":{proxy.port}/")
    relay = start_relay(tmp_path, url, fast_receiver)
    try:
        assert relay.post(b'{"type": "a.b", "n": 1}').status_code == 202
        wait_until(lambda: relay.state.storage.listening, message="LISTEN to be up")
        proxy.cut()
        assert_unavailable(relay, b'{"type": "a.b", "n": 2}')
        assert_unavailable(relay, b'{"type": "a.b", "n": 3}')
        assert httpx.get(relay.url + "/readyz", timeout=10).status_code == 503
        proxy.restore()
        wait_until(lambda: relay.post(b'{"type": "a.b", "n": 4}').status_code == 202,
                   timeout=15, interval=0.2, message="ingest to work again")
        assert httpx.get(relay.url + "/readyz", timeout=10).status_code == 200
        wait_until(lambda: relay.state.storage.listening, timeout=15,
                   message="the LISTEN connection to come back")
        # A claim whose answer was lost in the cut is leased; it is sent after expiry.
        wait_until(lambda: len(set(fast_receiver.log("/sink").ids)) >= 2, timeout=15,
                   message="both stored events delivered")
    finally:
        relay.stop()
    assert pg.fetch("SELECT count(*) FROM events", schema=schema) == [(2,)]


def test_read_only_database_answers_503(
    tmp_path: Path, pg: PgClient, fast_receiver: FastReceiver,
) -> None:
    """A database switched to read-only (a standby after failover) gets 503, not 202."""
    database = f"relay_ro_{uuid.uuid4().hex[:12]}"
    pg.fetch(f"CREATE DATABASE {database}")
    kick = ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{database}'")
    try:
        relay = start_relay(tmp_path, PG_URL.rsplit("/", 1)[0] + f"/{database}",
                            fast_receiver)
        try:
            assert relay.post(b'{"type": "a.b", "n": 1}').status_code == 202
            pg.fetch(f"ALTER DATABASE {database} SET default_transaction_read_only = on")
            pg.fetch(kick)  # sessions pick the setting up when they reconnect
            wait_until(lambda: relay.post(b'{"type": "a.b"}').status_code == 503, timeout=10,
                       message="503 from the read-only database")
            detail = assert_unavailable(relay, b'{"type": "a.b", "n": 2}').json()["detail"]
            assert "read-only" in detail
            pg.fetch(f"ALTER DATABASE {database} RESET default_transaction_read_only")
            pg.fetch(kick)
            wait_until(lambda: relay.post(b'{"type": "a.b", "n": 3}').status_code == 202,
                       timeout=15, interval=0.2, message="ingest to work again")
        finally:
            relay.stop()
    finally:
        pg.fetch(f"DROP DATABASE {database} WITH (FORCE)")
