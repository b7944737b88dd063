"""A lane's `Wakeup`: the one-waiter stand-in for `asyncio.Event` every lane has."""

from __future__ import annotations

import asyncio

from relay.delivery.lane import Wakeup


def test_a_set_wakeup_does_not_wait_and_clear_makes_it_wait_again() -> None:
    async def run() -> None:
        wakeup = Wakeup()
        wakeup.set()
        await asyncio.wait_for(wakeup.wait(), 1)  # returns at once
        wakeup.clear()
        assert not wakeup.is_set()
        waiting = asyncio.create_task(wakeup.wait())
        await asyncio.sleep(0)
        assert not waiting.done()
        wakeup.set()
        await asyncio.wait_for(waiting, 1)
        assert wakeup.waiter is None

    asyncio.run(run())


def test_a_wait_ended_by_a_timeout_leaves_no_waiter_behind() -> None:
    async def run() -> None:
        wakeup = Wakeup()
        try:
            async with asyncio.timeout(0.01):
                await wakeup.wait()
        except TimeoutError:
            pass
        assert wakeup.waiter is None
        wakeup.set()  # nobody waits: only the flag
        assert wakeup.is_set()

    asyncio.run(run())
