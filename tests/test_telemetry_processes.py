"""Tracing across a restart: `relay run` processes exporting to a real OTLP/HTTP receiver.

The event is taken by one process while its endpoint is paused, and sent by
the next one on the same SQLite file: the attempt's span is still a child of
the ingest span, read back from the database. (The same across two PostgreSQL
replicas: tests/postgres/test_trace_replicas.py.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import endpoint_yaml
from tests.otlp import OtlpReceiver, check_one_trace, telemetry_yaml
from tests.support import Receiver, RelayProcess, base_config, free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def otlp() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver().start()
    yield server
    server.stop()


def test_the_attempt_after_a_restart_is_a_child_of_the_ingest_span(
    tmp_path: Path, otlp: OtlpReceiver, receiver: Receiver
) -> None:
    """Ingest, restart the relay, deliver: one trace, the stored context its link."""
    db = tmp_path / "relay.db"
    endpoints = endpoint_yaml("crm", receiver.url)

    def relay(service: str) -> RelayProcess:
        port = free_port()
        config = tmp_path / f"{service}.yaml"
        config.write_text(base_config(port, db, endpoints, telemetry_yaml(otlp, service),
                                      storage=f"sqlite:///{db}"))
        return RelayProcess(config, port, tmp_path / f"{service}.log")

    first = relay("relay-a").start()
    second = relay("relay-b")
    try:
        # SQLite has one relay at a time: the second starts once the first has stopped.
        check_one_trace(otlp, receiver, first, second, side_by_side=False)
    finally:
        for process in (first, second):
            if process.proc is not None and process.proc.poll() is None:
                process.kill()
