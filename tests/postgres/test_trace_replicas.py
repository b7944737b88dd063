"""Tracing across two PostgreSQL replicas: ingest on one, the attempt on the other.

The trace context is stored with the event, and `relay_claim` hands it to
whichever replica claims the delivery, so the attempt's span (service
relay-b) is a child of the ingest span (relay-a) in one trace.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import endpoint_yaml
from tests.otlp import OtlpReceiver, check_one_trace, telemetry_yaml
from tests.postgres.pg import schema_url
from tests.support import Receiver, RelayProcess, base_config, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def otlp() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver().start()
    yield server
    server.stop()


def test_the_attempt_on_another_replica_is_a_child_of_the_ingest_span(
    tmp_path: Path, schema: str, otlp: OtlpReceiver, receiver: Receiver
) -> None:
    """Replica a takes the event while paused and stops; replica b resumes and sends it."""
    url = schema_url(schema)
    endpoints = endpoint_yaml("crm", receiver.url)

    def replica(service: str) -> RelayProcess:
        port = free_port()
        config = tmp_path / f"{service}.yaml"
        config.write_text(base_config(port, tmp_path / "unused.db", endpoints,
                                      telemetry_yaml(otlp, service), storage=url))
        return RelayProcess(config, port, tmp_path / f"{service}.log")

    first = replica("relay-a").start(timeout=30)
    second = replica("relay-b")
    try:
        check_one_trace(otlp, receiver, first, second, side_by_side=True)
    finally:
        for process in (first, second):
            if process.proc is not None and process.proc.poll() is None:
                process.kill()
