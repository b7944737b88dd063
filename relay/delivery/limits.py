"""Capacity limits for delivery: the concurrency pools and per-endpoint rate.

All are plain in-process counters, awaited by an endpoint's lane before it
claims work. A pool (`Slots`) is shared fairly once lanes wait for it: a
freed slot goes to the waiting lane that holds the fewest, so a lane holding
many (its attempts hang) gains nothing more while another waits with fewer.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Slots", "TokenBucket"]


@dataclass(eq=False)
class _Waiter:
    holder: str
    wanted: int
    granted: asyncio.Future[int]
    seq: int  # arrival order: ties between equal holdings go to the earliest
    count: int = 0  # slots granted so far, handed over when the grant round ends
    version: int = 0  # which heap entry of this waiter is current


class Slots:
    """A counting pool that hands out several slots at once, fairly among holders.

    `asyncio.Semaphore` cannot say "give me up to n, at least one", which a lane
    needs to claim a batch of deliveries in one query, nor serve the waiter
    that holds the fewest first. While nobody waits, `acquire` takes what is
    free at once; the queue and its max-min order cost only when it is used.

    Waiters sit in a heap keyed by (slots held, arrival), entries re-pushed
    when a waiter's holding changes and stale ones skipped: a freed slot costs
    O(log waiters), so ten thousand lanes waiting on one pool stay cheap.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.used = 0
        self.held: dict[str, int] = {}  # slots in use per holder (a lane's name)
        self._live: dict[str, _Waiter] = {}  # the waiter of each holder waiting now
        self._heap: list[tuple[int, int, int, _Waiter]] = []
        self._seq = 0
        # Called when a holder starts waiting: the pool is taken, whoever frees some.
        self.on_wait: Callable[[], None] | None = None

    @property
    def available(self) -> int:
        return max(self.size - self.used, 0)

    @property
    def waiting(self) -> int:
        """Holders waiting in `acquire()`: a freed slot is theirs."""
        return len(self._live)

    async def acquire(self, holder: str, wanted: int) -> int:
        """Take between 1 and `wanted` slots, waiting while none is free.

        Returns 0 only if `interrupt()` ended the wait (shutdown).
        """
        if not self._live and self.used < self.size:
            taken = min(wanted, self.size - self.used)
            self.take(holder, taken)
            return taken
        self._seq += 1
        waiter = _Waiter(holder, wanted, asyncio.get_running_loop().create_future(), self._seq)
        self._live[holder] = waiter
        self._push(waiter)
        if self.on_wait is not None:
            self.on_wait()
        self._grant()
        try:
            return await waiter.granted
        except asyncio.CancelledError:
            if self._live.get(holder) is waiter:
                del self._live[holder]
                if waiter.count:  # granted meanwhile, not yet handed over
                    self.release(holder, waiter.count)
            elif not waiter.granted.cancelled() and waiter.granted.result():
                self.release(holder, waiter.granted.result())  # granted to a lane now gone
            raise

    def _push(self, waiter: _Waiter) -> None:
        waiter.version += 1
        heapq.heappush(self._heap, (self.held.get(waiter.holder, 0), waiter.seq,
                                    waiter.version, waiter))

    def _rekey(self, holder: str) -> None:
        waiter = self._live.get(holder)
        if waiter is not None:
            self._push(waiter)

    def take(self, holder: str, count: int) -> None:
        """Count `count` slots as `holder`'s without waiting, past the size if need be."""
        self.used += count
        self.held[holder] = self.held.get(holder, 0) + count
        if self._live:
            self._rekey(holder)

    def release(self, holder: str, count: int = 1) -> None:
        self.used -= count
        left = self.held[holder] - count
        if left:
            self.held[holder] = left
        else:
            del self.held[holder]
        if self._live:
            self._rekey(holder)
            self._grant()

    def resize(self, size: int) -> None:
        self.size = size
        self._grant()

    def interrupt(self) -> None:
        """End every wait with 0 slots (the relay is stopping)."""
        waiters, self._live, self._heap = list(self._live.values()), {}, []
        for waiter in waiters:
            if waiter.count:
                self.release(waiter.holder, waiter.count)
            if not waiter.granted.done():
                waiter.granted.set_result(0)

    def _grant(self) -> None:
        """Share the free slots among waiters, one at a time to whoever holds the fewest."""
        free = self.size - self.used
        touched: list[_Waiter] = []
        heap = self._heap
        while free > 0 and heap:
            _, _, version, waiter = heap[0]
            if (version != waiter.version or waiter.granted.done()
                    or self._live.get(waiter.holder) is not waiter):
                heapq.heappop(heap)  # stale: re-keyed since, or gone
                continue
            heapq.heappop(heap)
            if not waiter.count:
                touched.append(waiter)
            waiter.count += 1
            free -= 1
            self.used += 1
            self.held[waiter.holder] = self.held.get(waiter.holder, 0) + 1
            if waiter.count < waiter.wanted:
                self._push(waiter)
        for waiter in touched:
            del self._live[waiter.holder]
            waiter.version += 1  # its heap entries are stale now
            waiter.granted.set_result(waiter.count)
        if not self._live:
            heap.clear()  # only stale entries are left


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
