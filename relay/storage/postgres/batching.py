"""Group commit for PostgreSQL: concurrent writes share transactions.

A commit waits for the WAL flush, which costs far more than the statements in
it, so ingests (and attempt results) queued at the same moment are written in
one transaction, as the SQLite committer does. Unlike SQLite, PostgreSQL takes
several writers at once, so up to `max_rounds` transactions run side by side:
under light load each write gets its own round at once (no added latency),
under heavy load the jobs that queue while the rounds are busy go together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from relay.exceptions import StorageUnavailable
from relay.models import AttemptResult, NewEvent

__all__ = ["GroupCommit", "IngestJob", "Job", "RecordJob"]

log = structlog.get_logger("relay.storage")

MAX_EVENTS_PER_ROUND = 5000


@dataclass
class Job:
    """One caller's write; its future gets the round's result for it."""

    future: asyncio.Future[Any] = field(repr=False)

    @property
    def size(self) -> int:
        return 1


@dataclass
class IngestJob(Job):
    events: Sequence[NewEvent] = ()

    @property
    def size(self) -> int:
        return len(self.events)


@dataclass
class RecordJob(Job):
    results: Sequence[AttemptResult] = ()

    @property
    def size(self) -> int:
        return len(self.results)


class GroupCommit:
    """Queues jobs of one kind and hands them to `run_round` in batches."""

    def __init__(self, run_round: Callable[[list[Job]], Awaitable[None]], max_rounds: int,
                 name: str) -> None:
        self._run_round = run_round  # must settle every job's future
        self._slots = asyncio.Semaphore(max_rounds)
        self._queue: list[Job] = []
        self._wakeup = asyncio.Event()
        self._rounds: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.name = name

    def start(self) -> None:
        self._closing = False
        self._task = asyncio.create_task(self._loop(), name=self.name)

    async def close(self) -> None:
        """Write everything queued, wait for the rounds in flight, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def submit(self, job: Job) -> asyncio.Future[Any]:
        if self._closing or self._task is None:
            raise StorageUnavailable("the store is closed")
        self._queue.append(job)
        self._wakeup.set()
        return job.future

    async def _loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                await self._slots.acquire()
                jobs = self._take()
                task = asyncio.create_task(self._round(jobs), name=f"{self.name}-round")
                self._rounds.add(task)
                task.add_done_callback(self._rounds.discard)
            if self._closing:
                if self._rounds:
                    await asyncio.gather(*self._rounds, return_exceptions=True)
                if not self._queue:
                    return

    def _take(self) -> list[Job]:
        """Everything queued, but not so many events that one round delays the next."""
        taken = size = 0
        for job in self._queue:
            if size and size + job.size > MAX_EVENTS_PER_ROUND:
                break
            size += job.size
            taken += 1
        jobs, self._queue = self._queue[:taken], self._queue[taken:]
        return jobs

    async def _round(self, jobs: list[Job]) -> None:
        try:
            await self._run_round(jobs)
        except BaseException as exc:  # run_round settles futures; this is the backstop
            log.exception("storage_round_crashed", jobs=len(jobs))
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            self._slots.release()
