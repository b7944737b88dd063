"""The concurrency pool: greedy while nobody waits, max-min fair once lanes wait."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from relay.delivery.limits import Slots


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


def test_without_waiters_a_holder_takes_what_is_free_at_once() -> None:
    """Up to `wanted`, at least one, no queue: the common case."""
    async def scenario() -> None:
        slots = Slots(8)
        assert await slots.acquire("a", 5) == 5
        assert await slots.acquire("b", 5) == 3
        assert slots.held == {"a": 5, "b": 3} and slots.used == 8
        slots.release("a", 5)
        assert slots.held == {"b": 3} and slots.available == 5

    run(scenario)


def test_a_freed_slot_goes_to_the_waiter_holding_the_fewest() -> None:
    """The lane that holds most (its attempts hang) waited first, yet gets nothing."""
    async def scenario() -> None:
        slots = Slots(4)
        await slots.acquire("hang", 3)
        await slots.acquire("ok", 1)
        greedy = asyncio.ensure_future(slots.acquire("hang", 1))
        await settle()
        healthy = asyncio.ensure_future(slots.acquire("ok", 1))
        await settle()
        slots.release("ok")
        assert await healthy == 1
        assert not greedy.done()
        slots.release("ok")
        assert await greedy == 1

    run(scenario)


def test_free_slots_are_shared_so_that_waiters_end_up_even() -> None:
    """Six slots freed at once, waiters holding 3, 0 and 1: they end at 4, 3 and 3."""
    async def scenario() -> None:
        slots = Slots(10)
        for holder, count in (("a", 3), ("b", 6), ("c", 1)):
            slots.take(holder, count)
        waits = {holder: asyncio.ensure_future(slots.acquire(holder, 8))
                 for holder in ("a", "d", "c")}
        await settle()
        slots.release("b", 6)
        granted = {holder: await wait for holder, wait in waits.items()}
        assert granted == {"a": 1, "d": 3, "c": 2}
        assert {h: slots.held[h] for h in ("a", "c", "d")} == {"a": 4, "c": 3, "d": 3}

    run(scenario)


def test_the_queue_notifies_once_a_holder_waits_and_a_resize_serves_it() -> None:
    """`on_wait` is how the dispatcher learns the pool is taken; growing it grants."""
    async def scenario() -> None:
        slots = Slots(1)
        calls: list[int] = []
        slots.on_wait = lambda: calls.append(slots.waiting)
        await slots.acquire("a", 1)
        assert calls == []
        wait = asyncio.ensure_future(slots.acquire("b", 2))
        await settle()
        assert calls == [1]
        slots.resize(3)
        assert await wait == 2

    run(scenario)


def test_interrupt_ends_every_wait_with_nothing() -> None:
    """At shutdown, lanes waiting for a slot return 0 and take none."""
    async def scenario() -> None:
        slots = Slots(1)
        await slots.acquire("a", 1)
        waits = [asyncio.ensure_future(slots.acquire(h, 1)) for h in ("b", "c")]
        await settle()
        slots.interrupt()
        assert [await w for w in waits] == [0, 0]
        assert slots.used == 1 and slots.waiting == 0

    run(scenario)


def test_a_cancelled_waiter_leaves_nothing_taken() -> None:
    """Cancelled while waiting, or granted just before: the slots stay with the pool."""
    async def scenario() -> None:
        slots = Slots(1)
        await slots.acquire("a", 1)
        waiting = asyncio.ensure_future(slots.acquire("b", 1))
        await settle()
        waiting.cancel()
        slots.release("a")  # the waiter's future is cancelled: not granted
        await asyncio.gather(waiting, return_exceptions=True)
        assert slots.used == 0 and slots.waiting == 0
        await slots.acquire("a", 1)
        granted = asyncio.ensure_future(slots.acquire("b", 1))
        await settle()
        slots.release("a")  # granted to b, whose task is cancelled before it runs
        granted.cancel()
        await asyncio.gather(granted, return_exceptions=True)
        assert slots.used == 0 and slots.held == {}

    run(scenario)


def test_take_counts_past_the_size() -> None:
    """What the dispatcher moves out of the pool is counted in `slow` even when it is full."""
    async def scenario() -> None:
        slots = Slots(2)
        slots.take("hang", 3)
        assert slots.used == 3 and slots.available == 0
        wait = asyncio.ensure_future(slots.acquire("other", 1))
        slots.release("hang", 2)
        assert await wait == 1

    run(scenario)
