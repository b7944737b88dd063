"""Claiming ahead: a fast endpoint's lane keeps its slots busy, never past max_in_flight."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from relay.models import NewEvent, new_event_id
from tests.conftest import endpoint_yaml
from tests.support import ON_POSTGRES, Receiver, RelayThread, make_storage, wait_until

pytestmark = pytest.mark.both_backends


class Sampler:
    """Samples a running relay's lane every few ms: how many deliveries it holds ahead."""

    def __init__(self, relay: RelayThread, lane: str) -> None:
        self.relay = relay
        self.lane = lane
        self.ready: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            lane: Any = self.relay.state.dispatcher.lanes.get(self.lane)
            if lane is not None:
                self.ready.append(len(lane.ready))
            time.sleep(0.002)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def answering_in(seconds: float) -> Callable[[int, object], tuple[int, dict[str, str], bytes]]:
    """A receiver's responder: 200 after `seconds`."""
    def answer(index: int, request: object) -> tuple[int, dict[str, str], bytes]:
        time.sleep(seconds)
        return 200, {}, b"ok"

    return answer


def draining(make_relay: Callable[..., RelayThread], receiver: Receiver, count: int,
             max_in_flight: int) -> RelayThread:
    """A relay draining `count` events to `receiver`, once successors are claimed ahead."""
    relay = make_relay(endpoint_yaml("fast", receiver.url, max_in_flight=max_in_flight))
    post_many(relay, count)
    wait_until(lambda: len(relay.state.dispatcher.lanes["fast"].ready) > 0, timeout=20,
               message="successors claimed ahead")
    return relay


def action(relay: RelayThread, endpoint: str, verb: str) -> None:
    answer = httpx.post(f"{relay.url}/v1/endpoints/{endpoint}/{verb}", timeout=10)
    assert answer.status_code == 200, answer.text


def post_many(relay: RelayThread, count: int) -> None:
    for start in range(0, count, 100):
        size = min(100, count - start)
        body = "[" + ",".join(f'{{"type": "license.created", "n": {start + i}}}'
                              for i in range(size)) + "]"
        assert relay.post(body, path="/v1/events/batch").status_code == 202


# PostgreSQL counts leased deliveries against the max_in_flight that relays share
# (Storage.leases_count_as_in_flight): lanes there claim nothing ahead.
sqlite_store = pytest.mark.skipif(
    ON_POSTGRES, reason="PostgreSQL's shared max_in_flight counts leased successors")


@pytest.fixture
def fast_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    """Count this test's receiver as fast: in the relay's own process, sharing its
    interpreter, a 5 ms answer takes tens of ms, near the 50 ms bound."""
    monkeypatch.setattr("relay.delivery.lane.AHEAD_BELOW_MS", 1000.0)


@sqlite_store
@pytest.mark.usefixtures("fast_enough")
def test_a_fast_endpoint_claims_successors_but_sends_within_its_limit(
    make_relay: Callable[..., RelayThread], make_receiver: Callable[..., Receiver],
) -> None:
    """Answers fast: successors are claimed ahead, requests stay within max_in_flight."""
    receiver = make_receiver(answering_in(0.005))
    relay = make_relay(endpoint_yaml("fast", receiver.url, max_in_flight=4))
    action(relay, "fast", "pause")  # a backlog first, then one drain of it
    post_many(relay, 300)
    with Sampler(relay, "fast") as sampler:
        action(relay, "fast", "resume")
        relay.wait_statuses({"delivered": 300}, timeout=60)
    assert receiver.max_in_flight <= 4
    assert 0 < max(sampler.ready) <= 4, "one successor per attempt in flight, at most"
    assert len(receiver.requests) == 300  # each delivery sent once
    assert relay.rows("SELECT count(*) FROM attempts")[0][0] == 300


def test_a_slow_endpoint_claims_only_what_it_sends(
    make_relay: Callable[..., RelayThread], make_receiver: Callable[..., Receiver],
) -> None:
    """Answers in 120 ms: nothing is claimed ahead of the requests it can send."""
    def slow(index: int, request: object) -> tuple[str, float]:
        return "hang", 0.12

    receiver = make_receiver(slow)
    relay = make_relay(endpoint_yaml("slow", receiver.url, max_in_flight=3))
    post_many(relay, 12)
    with Sampler(relay, "slow") as sampler:
        relay.wait_statuses({"delivered": 12}, timeout=30)
    assert max(sampler.ready) == 0
    assert receiver.max_in_flight <= 3


@sqlite_store
@pytest.mark.usefixtures("fast_enough")
def test_pausing_returns_the_successors_and_resuming_sends_each_once(
    make_relay: Callable[..., RelayThread], make_receiver: Callable[..., Receiver],
) -> None:
    """Paused mid-drain: claimed-ahead deliveries go back to held, none is lost or doubled."""
    receiver = make_receiver(answering_in(0.003))
    relay = draining(make_relay, receiver, 600, max_in_flight=8)
    action(relay, "fast", "pause")
    wait_until(lambda: relay.rows(
        "SELECT count(*) FROM deliveries WHERE status = 'delivering'")[0][0] == 0,
        timeout=20, message="nothing left delivering once paused")
    statuses = relay.statuses()
    assert set(statuses) == {"delivered", "held"}, statuses  # successors went back as held
    action(relay, "fast", "resume")
    relay.wait_statuses({"delivered": 600}, timeout=60)
    ids = [r.header("webhook-id") for r in receiver.requests]
    assert len(ids) == len(set(ids)) == 600


@sqlite_store
@pytest.mark.usefixtures("fast_enough")
def test_a_short_lease_margin_still_sends_each_successor_once(
    make_relay: Callable[..., RelayThread], make_receiver: Callable[..., Receiver],
) -> None:
    """lease_margin 1s: successors start within half of it; none is stranded or reaped."""
    receiver = make_receiver(lambda i, r: (200, {}, b"ok"))
    relay = make_relay(endpoint_yaml("fast", receiver.url, max_in_flight=4),
                       extra="  lease_margin: 1s\n")
    with capture_logs() as logs:
        post_many(relay, 300)
        relay.wait_statuses({"delivered": 300}, timeout=60)
    assert [e for e in logs if e["event"] == "claimed_ahead_given_back"] == []
    assert relay.rows("SELECT count(*) FROM attempts WHERE error IS NOT NULL") == [(0,)]
    ids = [r.header("webhook-id") for r in receiver.requests]
    assert len(ids) == len(set(ids)) == 300


@sqlite_store
@pytest.mark.usefixtures("fast_enough")
def test_a_clean_stop_mid_drain_leaves_nothing_leased(
    make_relay: Callable[..., RelayThread], make_receiver: Callable[..., Receiver],
) -> None:
    """Stopped while successors wait: they go back to the store, not to the reaper."""
    relay = draining(make_relay, make_receiver(answering_in(0.003)), 1000, max_in_flight=8)
    relay.stop()
    statuses = relay.statuses()
    assert "delivering" not in statuses, statuses
    assert statuses.get("pending", 0) > 0 and sum(statuses.values()) == 1000


def test_a_claim_given_back_late_does_not_undo_a_newer_one(tmp_path: Path) -> None:
    """release() matches the lease it was claimed with; hold=True gives it back held."""
    async def scenario() -> list[str]:
        storage = make_storage(tmp_path / "relay.db")
        await storage.open()
        try:
            now = time.time()
            await storage.ingest([NewEvent(new_event_id(now), "license.created", b"{}",
                                           ("a",), now, False)])
            [claimed] = await storage.claim("a", 1, now, 30.0, max_in_flight=10)
            seen = []
            # A successor that waited past its lease: someone may hold a newer claim.
            await storage.release([(claimed.id, claimed.lease_until - 1.0)], now)
            seen.append((await storage.get_delivery(claimed.id)).status.value)  # type: ignore[union-attr]
            await storage.release([(claimed.id, claimed.lease_until)], now, hold=True)
            seen.append((await storage.get_delivery(claimed.id)).status.value)  # type: ignore[union-attr]
            return seen
        finally:
            await storage.close()

    assert asyncio.run(scenario()) == ["delivering", "held"]
