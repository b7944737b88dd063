"""A lane against a fake `LaneContext`: what it claims, starts and gives back, without a store."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from relay.config import parse_config
from relay.delivery.lane import Lane
from relay.delivery.limits import Slots
from relay.delivery.runtime import EndpointRuntime
from relay.models import ClaimedDelivery
from tests.conftest import endpoint_yaml

NOW = 1_700_000_000.0


class FakeContext:
    """The dispatcher's side of a lane: real pools, a list for a store, attempts never run."""

    def __init__(self, due: int, pool_size: int = 4) -> None:
        self.slots = Slots(pool_size)
        self.slow = Slots(pool_size)
        self.stopping = False
        self.lease_margin_s = 60.0
        self.leases_count_as_in_flight = False
        self.behind_on_outcomes = False
        self.due = [ClaimedDelivery(i, f"evt_{i}", "license.created", "crm", b"{}", 1, 0.0)
                    for i in range(1, due + 1)]
        self.claims: list[int] = []  # how many each claim asked for
        self.released: list[tuple[list[int], bool]] = []  # (delivery ids, hold)
        self.started: list[tuple[Lane, ClaimedDelivery, bool]] = []

    def clock(self) -> float:
        return NOW

    async def room_for_outcomes(self) -> None:
        raise AssertionError("the recorder is never behind here")

    async def claim(self, endpoint: str, count: int, now: float, lease_s: float, *,
                    fifo: bool, max_in_flight: int,
                    rate_per_s: float | None) -> list[ClaimedDelivery]:
        self.claims.append(count)
        taken, self.due = self.due[:count], self.due[count:]
        for claimed in taken:
            claimed.lease_until = now + lease_s
        return taken

    async def release(self, claims: Sequence[tuple[int, float]], now: float, *,
                      hold: bool) -> None:
        self.released.append(([delivery_id for delivery_id, _ in claims], hold))

    async def next_due_at(self, endpoint: str, *, fifo: bool) -> float | None:
        return NOW if self.due else None

    def spawn(self, lane: Lane, claimed: ClaimedDelivery, pooled: bool) -> None:
        self.started.append((lane, claimed, pooled))

    def finish(self, lane: Lane) -> None:
        """End the oldest attempt in flight, as the dispatcher does (`LaneContext.spawn`)."""
        self.started.pop(0)
        lane.in_flight -= 1
        if not lane.hand_over():
            self.slots.release(lane.name)
        lane.wake()


def make_lane(context: FakeContext, max_in_flight: int = 2,
              held_reason: str | None = None) -> Lane:
    config = parse_config("endpoints:\n" + endpoint_yaml("crm", "https://crm.test/hook",
                                                         max_in_flight=max_in_flight), env={})
    return Lane(context, EndpointRuntime.build(config.endpoints[0], held_reason))


async def settle() -> None:
    """Let the lane run until it sleeps (the fake context never suspends)."""
    for _ in range(10):
        await asyncio.sleep(0)


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


async def stop(context: FakeContext, lane: Lane, task: asyncio.Task[None]) -> None:
    context.stopping = True
    context.slots.interrupt()  # as the dispatcher stops: lanes waiting for a slot stop waiting
    lane.wake()
    await asyncio.wait_for(task, 5)


def test_a_fast_lane_claims_successors_for_its_attempts_in_flight() -> None:
    """Two attempts in flight, answering fast: two successors claimed, one starts per end."""
    async def scenario() -> None:
        context = FakeContext(due=10)
        lane = make_lane(context)
        lane.observe(5.0)
        task = asyncio.create_task(lane.run())
        await settle()
        assert context.claims == [2, 2] and len(lane.ready) == 2
        assert [claimed.id for _, claimed, pooled in context.started] == [1, 2]
        context.finish(lane)  # its slot goes straight to a successor
        await settle()
        assert [claimed.id for _, claimed, _ in context.started] == [2, 3]
        assert context.slots.held == {"crm": 2}
        await stop(context, lane, task)
        assert context.released[-1] == ([4, 5], False)  # stopping: successors go back

    run(scenario)


def test_a_held_lane_claims_nothing_and_gives_back_what_it_claimed_ahead() -> None:
    """Paused with successors claimed: they go back held; no slot is taken, nothing claimed."""
    async def scenario() -> None:
        context = FakeContext(due=10)
        lane = make_lane(context)
        lane.observe(5.0)
        task = asyncio.create_task(lane.run())
        await settle()
        assert [c.id for c in lane.ready] == [3, 4]
        lane.runtime.held_reason = "paused"
        lane.wake()
        await settle()
        assert context.released == [([3, 4], True)] and not lane.ready
        for _ in range(2):
            context.finish(lane)  # its attempts in flight end; nothing new starts
            await settle()
        assert context.started == [] and context.slots.used == 0
        assert context.claims == [2, 2]
        await stop(context, lane, task)

    run(scenario)


def test_a_lane_held_from_the_start_takes_no_slot() -> None:
    """Disabled at start with work due: no claim, no slot, no attempt."""
    async def scenario() -> None:
        context = FakeContext(due=3)
        lane = make_lane(context, held_reason="disabled: endpoint answered 410 Gone")
        task = asyncio.create_task(lane.run())
        await settle()
        lane.wake()  # e.g. new deliveries from ingest
        await settle()
        assert (context.claims, context.started, context.slots.used) == ([], [], 0)
        await stop(context, lane, task)

    run(scenario)


def test_claiming_ahead_stops_while_another_lane_waits_for_a_slot() -> None:
    """The pool is full and a lane waits: no successor is claimed, a freed slot goes to it."""
    async def scenario() -> None:
        context = FakeContext(due=10, pool_size=4)
        context.slots.take("other", 2)
        lane = make_lane(context)
        task = asyncio.create_task(lane.run())  # no duration known yet: claims only its 2
        await settle()
        assert context.claims == [2] and context.slots.available == 0
        waiting = asyncio.ensure_future(context.slots.acquire("other", 1))
        await settle()
        assert context.slots.waiting == 1
        lane.observe(5.0)  # now known to answer fast
        lane.wake()
        await settle()
        assert context.claims == [2] and not lane.ready
        context.finish(lane)
        assert await asyncio.wait_for(waiting, 1) == 1  # the other lane's turn, not a successor
        await settle()
        assert [c.id for _, c, _ in context.started] == [2]
        assert context.slots.held == {"other": 3, "crm": 1}
        await stop(context, lane, task)

    run(scenario)


def test_a_lane_holding_successors_yields_a_freed_slot_to_a_waiting_lane() -> None:
    """Another lane waits: an ended attempt's slot is its, and the successors go back."""
    async def scenario() -> None:
        context = FakeContext(due=10, pool_size=4)
        context.slots.take("other", 2)
        lane = make_lane(context)
        lane.observe(5.0)
        task = asyncio.create_task(lane.run())
        await settle()
        assert [c.id for c in lane.ready] == [3, 4] and context.slots.available == 0
        waiting = asyncio.ensure_future(context.slots.acquire("other", 1))
        await settle()
        context.finish(lane)
        assert await asyncio.wait_for(waiting, 1) == 1
        await settle()
        assert [c.id for _, c, _ in context.started] == [2]
        assert context.released == [([3, 4], False)] and not lane.ready
        assert context.slots.held == {"other": 3, "crm": 1}
        await stop(context, lane, task)

    run(scenario)
