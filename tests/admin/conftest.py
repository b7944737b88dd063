"""Fixtures for the operations tests: relays with real work in every delivery state.

`states_relay` is shared by a module's read-only tests: five endpoints, each
with a real receiver on 127.0.0.1, whose two deliveries end up delivered,
scheduled, failed, held and pending (one endpoint per state). Tests that
change things build their own relay with `make_ops`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.admin.harness import (
    ADMIN_TOKEN,
    ADMIN_YAML,
    Ops,
    always,
    receiver,
    start_ops,
    stop_receivers,
)
from tests.conftest import endpoint_yaml
from tests.support import Receiver


@pytest.fixture
def make_ops(tmp_path: Path) -> Iterator[Callable[..., Ops]]:
    """Start relays for one test; each is stopped (and its receivers) at the end."""
    started: list[Ops] = []

    def make(endpoints: str, receivers: dict[str, Receiver] | None = None,
             extra: str = ADMIN_YAML, db: Path | None = None,
             token: str | None = ADMIN_TOKEN) -> Ops:
        ops = start_ops(tmp_path, endpoints, receivers or {}, extra, db, token)
        started.append(ops)
        return ops

    yield make
    for ops in started:
        ops.close()
        ops.relay.stop()
    stop_receivers(r for ops in started for r in ops.receivers.values())


@pytest.fixture(scope="module")
def states_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ops]:
    """Two license.created events sent to five endpoints, one per resting delivery state."""
    tmp = tmp_path_factory.mktemp("states")
    receivers = {
        "good": receiver(),
        "flaky": receiver(always(503, b'{"error": "maintenance"}')),
        "broken": receiver(always(500, b'{"error": "database is down"}')),
        "paused": receiver(),
        "slow": receiver(),
    }
    endpoints = (
        endpoint_yaml("good", receivers["good"].url + "/hooks")
        + endpoint_yaml("flaky", receivers["flaky"].url + "/hooks", retry_schedule=["1h"])
        + endpoint_yaml("broken", receivers["broken"].url + "/hooks")
        + endpoint_yaml("paused", receivers["paused"].url + "/hooks")
        # one token an hour: the first delivery goes, the second stays pending
        + endpoint_yaml("slow", receivers["slow"].url + "/hooks", rate_limit="1/h")
    )
    ops = start_ops(tmp, endpoints, receivers)
    try:
        assert ops.post("/v1/endpoints/paused/pause").status_code == 200
        ops.send(n=1)
        ops.send("order.created", n=2)
        ops.wait_counts("good", delivered=2)
        ops.wait_counts("flaky", scheduled=2)
        ops.wait_counts("broken", failed=2)
        ops.wait_counts("paused", held=2)
        ops.wait_counts("slow", delivered=1, pending=1)
        yield ops
    finally:
        ops.close()
        ops.relay.stop()
        stop_receivers(receivers.values())
