"""Through the whole relay: a refused destination is one recorded attempt, never retried."""

from __future__ import annotations

from pathlib import Path

from pytest_httpserver import HTTPServer

from tests.delivery.helpers import NetworkFence
from tests.support import RelayThread, free_port


def test_a_refused_destination_fails_at_once_with_a_clear_error(
    tmp_path: Path, http_server: HTTPServer, network_fence: NetworkFence,
) -> None:
    """Loopback not in allow_networks: failed after attempt 1, receiver never contacted."""
    http_server.expect_request("/hook").respond_with_data("ok")
    port, db = free_port(), tmp_path / "relay.db"
    config = tmp_path / "relay.yaml"
    config.write_text(
        f"listen: 127.0.0.1:{port}\n"
        f"storage: sqlite:///{db}\n"
        "logging: {level: warning, format: json}\n"
        "delivery: {timeout: 2s, retry_schedule: [50ms, 50ms, 50ms], jitter: 0,\n"
        "           allow_networks: ['10.9.0.0/16'], shutdown_grace: 2s}\n"
        "endpoints:\n"
        f"  - {{name: local, url: 'http://localhost:{http_server.port}/hook',\n"
        "      allow_http: true, events: ['*'], signature: x-webhook}\n"
    )
    relay = RelayThread(config, port, db).start()
    try:
        assert relay.post('{"type": "license.created"}').status_code == 202
        relay.wait_statuses({"failed": 1})
        [(attempts, last_error)] = relay.rows("SELECT attempts, last_error FROM deliveries")
        assert attempts == 1
        assert last_error.startswith("refused destination: localhost resolves to 127.0.0.1")
        [(error, status)] = relay.rows("SELECT error, status_code FROM attempts")
        assert error == last_error
        assert status is None
    finally:
        relay.stop()
    assert http_server.log == []
    assert network_fence.attempts == []  # the relay's event loop dialled nothing
