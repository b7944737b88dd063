"""Capacity limits for delivery: the global concurrency pool and per-endpoint rate.

Both are plain in-process counters, awaited by an endpoint's lane before it
claims work; a slot an attempt frees goes straight to its lane's next claimed
delivery only while no other lane waits for one (`Slots.waiting`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["Slots", "TokenBucket"]


class Slots:
    """A counting pool that can hand out several slots at once without waiting.

    `asyncio.Semaphore` cannot say "give me up to n, at least one", which a lane
    needs to claim a batch of deliveries in one query.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.used = 0
        self.waiting = 0  # lanes waiting in acquire(): a freed slot is theirs
        self._freed = asyncio.Event()

    @property
    def available(self) -> int:
        return max(self.size - self.used, 0)

    async def acquire(self, wanted: int) -> int:
        """Take between 1 and `wanted` slots, waiting only while none is free."""
        if self.available == 0:
            self.waiting += 1
            try:
                while self.available == 0:
                    self._freed.clear()
                    await self._freed.wait()
            finally:
                self.waiting -= 1
        taken = min(wanted, self.available)
        self.used += taken
        return taken

    def release(self, count: int = 1) -> None:
        self.used -= count
        self._freed.set()

    def resize(self, size: int) -> None:
        self.size = size
        self._freed.set()


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
