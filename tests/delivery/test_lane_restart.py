"""A lane that dies of an unexpected error starts again: its endpoint is never left undelivered.

A lane crashing for good was how a database restart once stalled delivery (an
asyncpg protocol error that was not a StorageError); whatever the next such
surprise is, the dispatcher restarts the lane a second later.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.conftest import endpoint_yaml
from tests.support import Receiver, RelayThread, wait_until


def test_a_crashed_lane_is_restarted_and_delivers(
        make_relay: Callable[..., RelayThread], receiver: Receiver) -> None:
    relay = make_relay(endpoint_yaml("crm", receiver.url + "/hooks"))
    storage = relay.state.storage
    next_due_at = storage.next_due_at
    failures: list[str] = []

    async def failing_once(*args: Any, **kwargs: Any) -> Any:
        if not failures:
            failures.append("raised")
            raise RuntimeError("a driver error nobody foresaw")
        return await next_due_at(*args, **kwargs)

    storage.next_due_at = failing_once  # an error the lane does not handle, once
    try:
        # The lane sends the first event, finds nothing more, asks when the next is
        # due and dies of the error; only a restarted lane can send the second.
        assert relay.post(b'{"type": "license.created", "n": 1}').status_code == 202
        wait_until(lambda: failures, message="the lane to meet the error")
        assert relay.post(b'{"type": "license.created", "n": 2}').status_code == 202
        assert [r.body for r in receiver.wait_for(2, timeout=10)] == [
            b'{"type": "license.created", "n": 1}', b'{"type": "license.created", "n": 2}']
        wait_until(lambda: relay.state.dispatcher.alive, message="every lane running again")
    finally:
        storage.next_due_at = next_due_at
