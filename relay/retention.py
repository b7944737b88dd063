"""Retention: forget delivered and failed work older than `retention` (default 30 days).

A background task, started and stopped by the app's lifespan, wakes every
`interval_s` and walks the deliveries oldest first in batches of `batch_size`
rows. Each batch is one small job on the store's committer, and the task
yields between batches, so an ingest waits at most one batch (a few
milliseconds), never a whole purge. Only deliveries in a final state whose
last change is older than the cutoff go, with their attempts and then their
event once no delivery of it is left; pending, scheduled, in-flight and held
deliveries are never purged, however old, and neither are their events.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from relay.exceptions import StorageError
from relay.storage.base import Storage

__all__ = ["PurgeTotals", "Retention"]

log = structlog.get_logger("relay.retention")

FIRST_RUN_DELAY_S = 30.0  # let startup and crash recovery finish first
INTERVAL_S = 600.0
BATCH_SIZE = 500
PAUSE_BETWEEN_BATCHES_S = 0.01


@dataclass
class PurgeTotals:
    """What one pass removed."""

    deliveries: int = 0
    attempts: int = 0
    events: int = 0
    batches: int = 0


class Retention:
    """Purges old finished work in small batches; `run` is the background loop."""

    def __init__(
        self,
        storage: Storage,
        retention_s: Callable[[], float],
        *,
        clock: Callable[[], float] = time.time,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        # `retention_s` is read on every pass so a config reload applies to the next one.
        self.storage = storage
        self.retention_s = retention_s
        self.clock = clock
        self.batch_size = batch_size
        self._stop = asyncio.Event()

    async def purge(self) -> PurgeTotals:
        """One full pass: everything old enough goes, batch by batch."""
        cutoff = self.clock() - self.retention_s()
        totals = PurgeTotals()
        after_id = 0
        while not self._stop.is_set():
            batch = await self.storage.purge_finished(cutoff, after_id, self.batch_size)
            totals.batches += 1
            totals.deliveries += batch.deliveries
            totals.attempts += batch.attempts
            totals.events += batch.events
            after_id = batch.last_id
            if batch.done:
                break
            await asyncio.sleep(PAUSE_BETWEEN_BATCHES_S)
        while not self._stop.is_set():
            removed = await self.storage.purge_unrouted_events(cutoff, self.batch_size)
            totals.batches += 1
            totals.events += removed
            if removed < self.batch_size:
                break
            await asyncio.sleep(PAUSE_BETWEEN_BATCHES_S)
        return totals

    async def run(self, first_delay_s: float | None = None,
                  interval_s: float | None = None) -> None:
        """Purge every `interval_s` until `stop()`; a failed pass is retried next time."""
        delay = FIRST_RUN_DELAY_S if first_delay_s is None else first_delay_s
        interval = INTERVAL_S if interval_s is None else interval_s
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stop.wait()
            if self._stop.is_set():
                return
            delay = interval
            started = time.monotonic()
            try:
                totals = await self.purge()
            except StorageError as exc:
                log.warning("retention_failed", error=str(exc))
                continue
            except Exception:  # a bug must not end retention for the life of the process
                log.exception("retention_crashed")
                continue
            if totals.deliveries or totals.events:
                log.info("retention_purged", deliveries=totals.deliveries,
                         attempts=totals.attempts, events=totals.events,
                         batches=totals.batches,
                         duration_s=round(time.monotonic() - started, 3))

    def stop(self) -> None:
        """Ask `run` (and a pass in progress, between batches) to return."""
        self._stop.set()
