"""Capacity limits for delivery: the concurrency pools and per-endpoint rate.

All are plain in-process counters, awaited by an endpoint's lane before it
claims work. A pool (`Slots`) is shared fairly once lanes wait for it: a
freed slot goes to the waiting lane that holds the fewest, so a lane holding
many (its attempts hang) gains nothing more while another waits with fewer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Slots", "TokenBucket"]


@dataclass(eq=False)
class _Waiter:
    holder: str
    wanted: int
    granted: asyncio.Future[int]


class Slots:
    """A counting pool that hands out several slots at once, fairly among holders.

    `asyncio.Semaphore` cannot say "give me up to n, at least one", which a lane
    needs to claim a batch of deliveries in one query, nor serve the waiter
    that holds the fewest first. While nobody waits, `acquire` takes what is
    free at once; the queue and its max-min order cost only when it is used.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.used = 0
        self.held: dict[str, int] = {}  # slots in use per holder (a lane's name)
        self._waiters: list[_Waiter] = []
        # Called when a holder starts waiting: the pool is taken, whoever frees some.
        self.on_wait: Callable[[], None] | None = None

    @property
    def available(self) -> int:
        return max(self.size - self.used, 0)

    @property
    def waiting(self) -> int:
        """Holders waiting in `acquire()`: a freed slot is theirs."""
        return len(self._waiters)

    async def acquire(self, holder: str, wanted: int) -> int:
        """Take between 1 and `wanted` slots, waiting while none is free.

        Returns 0 only if `interrupt()` ended the wait (shutdown).
        """
        if not self._waiters and self.used < self.size:
            taken = min(wanted, self.size - self.used)
            self.take(holder, taken)
            return taken
        waiter = _Waiter(holder, wanted, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        if self.on_wait is not None:
            self.on_wait()
        self._grant()
        try:
            return await waiter.granted
        except asyncio.CancelledError:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            elif not waiter.granted.cancelled() and waiter.granted.result():
                self.release(holder, waiter.granted.result())  # granted to a lane now gone
            raise

    def take(self, holder: str, count: int) -> None:
        """Count `count` slots as `holder`'s without waiting, past the size if need be."""
        self.used += count
        self.held[holder] = self.held.get(holder, 0) + count

    def release(self, holder: str, count: int = 1) -> None:
        self.used -= count
        left = self.held[holder] - count
        if left:
            self.held[holder] = left
        else:
            del self.held[holder]
        if self._waiters:
            self._grant()

    def resize(self, size: int) -> None:
        self.size = size
        self._grant()

    def interrupt(self) -> None:
        """End every wait with 0 slots (the relay is stopping)."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.granted.done():
                waiter.granted.set_result(0)

    def _grant(self) -> None:
        """Share the free slots among waiters, one at a time to whoever holds the fewest."""
        free = self.size - self.used
        if free <= 0 or not self._waiters:
            return
        # A waiter cancelled since (its lane is stopping) takes nothing.
        self._waiters = [w for w in self._waiters if not w.granted.done()]
        grants = dict.fromkeys(self._waiters, 0)
        while free > 0:
            open_ = [w for w in self._waiters if grants[w] < w.wanted]
            if not open_:
                break
            if len(open_) == 1:
                [waiter] = open_
                count = min(free, waiter.wanted - grants[waiter])
            else:  # ties go to the earliest waiter
                waiter = min(open_, key=lambda w: self.held.get(w.holder, 0) + grants[w])
                count = 1
            grants[waiter] += count
            free -= count
        for waiter, count in grants.items():
            if count:
                self._waiters.remove(waiter)
                self.take(waiter.holder, count)
                waiter.granted.set_result(count)


class TokenBucket:
    """A token bucket: `rate` tokens per second, bursts of up to `burst`."""

    def __init__(self, rate: float, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._clock = clock
        self._tokens = self.burst
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def take(self, wanted: int) -> int:
        """Take up to `wanted` whole tokens now; may return 0."""
        self._refill()
        taken = min(wanted, int(self._tokens))
        self._tokens -= taken
        return taken

    def give_back(self, count: int) -> None:
        self._tokens = min(self.burst, self._tokens + count)

    def wait_time(self) -> float:
        """Seconds until one whole token is available."""
        self._refill()
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate
