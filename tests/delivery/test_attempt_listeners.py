"""`Dispatcher.on_attempt`: a listener hears each stored attempt inside its block, none after."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

import httpx
import pytest

from relay.models import AttemptResult
from tests.conftest import endpoint_yaml
from tests.support import Receiver, RelayThread

pytestmark = pytest.mark.both_backends


class Heard:
    """A listener that notes delivery ids, called on the relay's loop thread."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.count = threading.Semaphore(0)

    def __call__(self, result: AttemptResult) -> None:
        self.ids.append(result.delivery_id)
        self.count.release()

    def wait(self) -> None:
        assert self.count.acquire(timeout=10), "an attempt was never heard"


def test_a_listener_hears_attempts_only_inside_its_block(
    make_relay: Callable[..., RelayThread], receiver: Receiver,
) -> None:
    """Inside the block the attempt is heard; after it, left by an exception, no longer."""
    relay = make_relay(endpoint_yaml("crm", receiver.url))
    dispatcher = relay.state.dispatcher
    inner, outer = Heard(), Heard()
    with dispatcher.on_attempt(outer):
        with contextlib.suppress(RuntimeError), dispatcher.on_attempt(inner):
            assert relay.post('{"type": "license.created"}').status_code == 202
            inner.wait()
            raise RuntimeError("leaves the block")
        assert relay.post('{"type": "license.created"}').status_code == 202
        outer.wait()
        outer.wait()
        # Served by the relay's loop, so the batch that `outer` heard is done with.
        assert httpx.get(relay.url + "/healthz", timeout=10).status_code == 200
    assert len(outer.ids) == 2
    assert inner.ids == [min(outer.ids)]
