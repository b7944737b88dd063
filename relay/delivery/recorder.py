"""Stores finished attempts in batches, off the attempts' own tasks.

Once an attempt's HTTP exchange is over, its slot goes to the next delivery
and its outcome is handed here. Everything handed over during one turn of the
event loop goes to the store in one `Storage.record()` call, one transaction
on either backend. The attempt's task ends at once instead of waiting for the
commit: at thousands of deliveries a second, a future, a wake-up and a
coroutine per attempt are a visible share of the relay's CPU.

Until its outcome is stored, a delivery stays `delivering` under its lease, so
no lane can claim it again. If the store fails, the batch is retried with
backoff for as long as each delivery's lease lasts; after that the lease
reaper makes it due again (the attempt is repeated, which at-least-once
allows). While more than `limit` outcomes wait to be stored, lanes stop
claiming (`room()`): a store that accepts claims but not results cannot make
the relay pile up outcomes in memory.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import structlog

from relay.exceptions import StorageError
from relay.models import AttemptResult, ClaimedDelivery
from relay.storage.base import Storage

__all__ = ["Recorder"]

log = structlog.get_logger("relay.delivery")

Finished = tuple[AttemptResult, ClaimedDelivery]
# Called once per stored batch with its attempts and the endpoints that the
# batch disabled (name -> reason).
StoredCallback = Callable[[Sequence[Finished], dict[str, str]], None]

FIRST_RETRY_DELAY_S = 0.2
MAX_RETRY_DELAY_S = 5.0


class Recorder:
    """Batches attempt outcomes into `Storage.record()` calls."""

    def __init__(self, storage: Storage, on_stored: StoredCallback,
                 clock: Callable[[], float] = time.time, *, limit: int = 1024) -> None:
        self._storage = storage
        self._on_stored = on_stored
        self._clock = clock
        self.limit = limit
        self.unstored = 0  # outcomes handed over and not yet stored or given up
        self._room = asyncio.Event()
        self._stopped = False
        self._pending: list[Finished] = []
        self._flush_scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def room(self) -> None:
        """Wait while more than `limit` outcomes wait to be stored (until `stop_waiting`)."""
        while self.unstored > self.limit and not self._stopped:
            self._room.clear()
            await self._room.wait()

    def stop_waiting(self) -> None:
        """Shutdown: lanes waiting in `room()` go on (to see that they must stop)."""
        self._stopped = True
        self._room.set()

    def add(self, result: AttemptResult, claimed: ClaimedDelivery) -> None:
        """Queue an outcome; it is sent to the store at the end of this loop turn."""
        self.unstored += 1
        self._pending.append((result, claimed))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._store(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _store(self, batch: list[Finished]) -> None:
        handed = len(batch)
        try:
            delay = FIRST_RETRY_DELAY_S
            while True:
                try:
                    disabled = await self._storage.record([result for result, _ in batch])
                    break
                except StorageError as exc:
                    batch = self._still_leased(batch, delay, str(exc))
                    if not batch:
                        return
                    log.warning("attempt_record_retry", count=len(batch), error=str(exc))
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, MAX_RETRY_DELAY_S)
            self._on_stored(batch, disabled)
        finally:
            self.unstored -= handed
            if self.unstored <= self.limit:
                self._room.set()

    def _still_leased(self, batch: list[Finished], delay: float, error: str) -> list[Finished]:
        """The outcomes worth another try: those whose lease outlives the next one."""
        now = self._clock()
        kept = []
        for result, claimed in batch:
            if now + delay < claimed.lease_until:
                kept.append((result, claimed))
            else:  # the lease reaper will make the delivery due again
                log.error("attempt_not_recorded", event_id=claimed.event_id,
                          delivery_id=claimed.id, endpoint=result.endpoint,
                          attempt=result.attempt, error=error)
        return kept

    async def drain(self, timeout_s: float) -> None:
        """Store what is queued; give up after `timeout_s` (leases cover the rest)."""
        self._flush()
        if not self._tasks:
            return
        _, unfinished = await asyncio.wait(set(self._tasks), timeout=timeout_s)
        for task in unfinished:
            task.cancel()
        if unfinished:
            await asyncio.wait(unfinished, timeout=1.0)
