"""`Lane`: one endpoint's loop of claiming due deliveries and starting their attempts.

Each endpoint has its own lane (an asyncio task) with its own in-flight count,
so a slow or dead endpoint only ever fills its own `max_in_flight`. Lanes
share the global `delivery.concurrency` pool, taken before claiming; the only
claimed work that waits in memory is a lane's successors to its attempts in
flight (`Lane.ready`), and none is claimed while another lane waits for the pool.

A lane sleeps until the earliest of: its next due delivery (an indexed
query), new deliveries from ingest, a finished attempt, or shutdown. There is
no polling loop over the whole table.

A lane knows nothing of the store, the recorder or the config beyond its own
endpoint: it reaches them through a `LaneContext`, which the `Dispatcher`
implements and a test can fake.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Protocol

import structlog

from relay.delivery.limits import Slots
from relay.delivery.runtime import EndpointRuntime
from relay.exceptions import StorageError
from relay.models import ClaimedDelivery

__all__ = ["AHEAD_BELOW_MS", "MAX_IDLE_WAIT_S", "SLOW_AFTER_S", "Lane", "LaneContext",
           "Wakeup", "bind_delivery"]

log = structlog.get_logger("relay.delivery")

MAX_IDLE_WAIT_S = 60.0  # a lane re-checks the store at least this often
# A lane claims successors ahead only while its attempts take less than this:
# a claim's round trip through the store is about a millisecond.
AHEAD_BELOW_MS = 50.0
# An attempt running this long no longer holds a slot of the pool while a lane
# waits for one; its endpoint counts as slow until an attempt answers sooner.
SLOW_AFTER_S = 1.0


class LaneContext(Protocol):
    """What a lane needs from the dispatcher that owns its endpoint, and nothing more.

    Errors of the store (`claim`, `release`, `next_due_at`) are `StorageError`s,
    which the lane handles.
    """

    @property
    def slots(self) -> Slots:
        """The global pool (`delivery.concurrency`), taken before claiming."""

    @property
    def slow(self) -> Slots:
        """The second pool, of the same size, for endpoints known to be slow."""

    @property
    def stopping(self) -> bool:
        """The relay is stopping: claim nothing more."""

    @property
    def lease_margin_s(self) -> float:
        """How long a lease outlives the endpoint's timeout (`delivery.lease_margin`)."""

    @property
    def leases_count_as_in_flight(self) -> bool:
        """The store counts leased deliveries against max_in_flight (no claiming ahead)."""

    @property
    def behind_on_outcomes(self) -> bool:
        """More outcomes wait to be stored than lanes may add to: claim nothing."""

    async def room_for_outcomes(self) -> None:
        """Wait until `behind_on_outcomes` is over, or the relay stops."""

    def clock(self) -> float:
        """Wall-clock seconds, the time the store's due times and leases are in."""

    async def claim(self, endpoint: str, count: int, now: float, lease_s: float, *,
                    fifo: bool, max_in_flight: int,
                    rate_per_s: float | None) -> list[ClaimedDelivery]:
        """Lease up to `count` of the endpoint's due deliveries (`Storage.claim`)."""

    async def release(self, claims: Sequence[tuple[int, float]], now: float, *,
                      hold: bool) -> None:
        """Give back claims never attempted (`Storage.release`)."""

    async def next_due_at(self, endpoint: str, *, fifo: bool) -> float | None:
        """When the endpoint's next waiting delivery falls due (`Storage.next_due_at`)."""

    def spawn(self, lane: Lane, claimed: ClaimedDelivery, pooled: bool) -> None:
        """Start the attempt of `claimed` in a slot `lane` holds (of `slow` if not pooled).

        When the attempt ends, its owner decrements `lane.in_flight`, offers the
        slot to `lane.hand_over()` and wakes the lane.
        """


class Lane:
    """Claims and sends one endpoint's deliveries, within its limits.

    While its attempts are in flight, a lane claims their successors ahead
    (`ready`, at most one per attempt in flight), and an attempt that ends
    hands its slot straight to the next of them. Without that, a claim's round
    trip to the store left every freed slot idle until the lane had claimed
    again: draining a backlog, two samples in five saw fewer than 8 of 64 busy.
    """

    def __init__(self, context: LaneContext, runtime: EndpointRuntime) -> None:
        self.context = context
        self.runtime = runtime
        self.in_flight = 0
        # Claimed ahead, not started yet: at most max_in_flight, so a list (56 bytes
        # empty, against a deque's 600: ten thousand idle lanes are 5 MB less).
        self.ready: list[ClaimedDelivery] = []
        self.stale: list[ClaimedDelivery] = []  # claimed ahead, waited too long: give back
        self.short = False  # the last claim found less than it asked for
        self.typical_ms: float | None = None  # smoothed duration of its attempts
        self.lagging = False  # its last attempt ran for SLOW_AFTER_S or longer
        self.aged = 0  # its attempts in flight moved out of the pool (`Dispatcher`)
        self.wakeup = Wakeup()
        self.task: asyncio.Task[None] | None = None
        self.closed = False  # its endpoint was deleted: claim nothing, give back, end

    def observe(self, duration_ms: float) -> None:
        """Note an attempt's duration (whether claiming ahead is worth it, which pool)."""
        typical = self.typical_ms
        self.typical_ms = duration_ms if typical is None else typical + (duration_ms - typical) / 8
        self.lagging = duration_ms >= SLOW_AFTER_S * 1000

    @property
    def slow(self) -> bool:
        """Known to be slow: its attempts go in the context's `slow` pool."""
        return self.lagging or self.aged > 0

    @property
    def name(self) -> str:
        return self.runtime.endpoint.name

    def wake(self) -> None:
        self.wakeup.set()

    def close(self, reason: str) -> None:
        """End the lane (its endpoint was deleted): what it claimed ahead is given back.

        Attempts in flight finish and are recorded as usual; the store decides
        what the deliveries become.
        """
        self.runtime.held_reason = reason
        self.closed = True
        self.wake()

    async def _sleep(self, seconds: float | None) -> None:
        """Wait for a wake-up, at most `seconds` (None: the idle re-check interval)."""
        seconds = MAX_IDLE_WAIT_S if seconds is None else min(seconds, MAX_IDLE_WAIT_S)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.wakeup.wait()

    def _limit(self) -> int:
        endpoint = self.runtime.endpoint
        return 1 if endpoint.ordering == "fifo" else endpoint.max_in_flight

    def _ahead(self) -> int:
        """How many successors to claim now for the attempts in flight (0: none).

        Only for an endpoint that answers fast, where a claim's round trip is a
        real share of an attempt: a slow one would keep its successors waiting
        under lease for as long as its attempts last. Not for a fifo endpoint
        (one at a time, in order) or a rate-limited one (its tokens pace the
        claims), not while another lane waits for a global slot (claimed work
        must not queue behind other endpoints), and not on a store that counts
        leases as in flight (it would refuse the claim).
        """
        runtime = self.runtime
        context = self.context
        if (self.typical_ms is None or self.typical_ms > AHEAD_BELOW_MS or self.slow
                or runtime.endpoint.ordering == "fifo" or runtime.bucket is not None
                or context.slots.waiting or context.leases_count_as_in_flight):
            return 0
        missing = min(self.in_flight, self._limit()) - len(self.ready)
        # Claim in batches, not one delivery per finished attempt.
        return missing if missing >= max(1, self._limit() // 4) else 0

    def _next_ready(self) -> ClaimedDelivery | None:
        """The next claimed delivery whose lease leaves room for an attempt and its record.

        A successor starts only with half the lease margin still to spare after
        a whole attempt, as a delivery claimed when its slot is free does; one
        that waited longer goes back to the store (`stale`, see `_put_back`).
        """
        context = self.context
        room = self.runtime.endpoint.timeout_s + context.lease_margin_s / 2
        while self.ready:
            claimed = self.ready.pop(0)
            if claimed.lease_until - context.clock() >= room:
                return claimed
            bind_delivery(claimed).warning(
                "claimed_ahead_given_back", waited_for="a slot, longer than half the lease margin")
            self.stale.append(claimed)
            self.wake()  # the lane gives it back
        return None

    def _start(self, claimed: ClaimedDelivery, pooled: bool = True) -> None:
        """Attempt `claimed` now, in a slot this lane already holds (in `slow` if not pooled)."""
        self.in_flight += 1
        self.context.spawn(self, claimed, pooled)

    def hand_over(self) -> bool:
        """Start the next claimed delivery in a slot an attempt just freed.

        Not when another lane waits for a slot, nor when a reload shrank the
        global pool below what is in use, nor once this lane is slow (its next
        attempts go in the `slow` pool): the slot goes back to the pool.
        """
        context = self.context
        slots = context.slots
        if (context.stopping or self.runtime.held_reason is not None or slots.waiting
                or slots.used > slots.size or self.in_flight >= self._limit()
                or self.slow):
            return False
        claimed = self._next_ready()
        if claimed is None:
            return False
        self._start(claimed)
        return True

    async def _put_back(self, everything: bool = True) -> None:
        """Give claimed-ahead deliveries back to the store: held, if the lane holds.

        Only the stale ones unless `everything` (paused, removed, stopping, or
        the pool is taken by other lanes). A lease that ran out meanwhile is left
        alone by the store, so nothing given back can undo a newer claim.
        """
        given = self.stale
        self.stale = []
        if everything:
            given.extend(self.ready)
            self.ready.clear()
        if given:
            context = self.context
            with contextlib.suppress(StorageError):
                await context.release([(c.id, c.lease_until) for c in given], context.clock(),
                                      hold=self.runtime.held_reason is not None)

    def _give_back(self, pool: Slots, count: int) -> None:
        """Return `count` unused slots of `pool`, and their rate-limit tokens."""
        if count:
            pool.release(self.name, count)
            if self.runtime.bucket is not None:
                self.runtime.bucket.give_back(count)

    async def _claim(self, count: int) -> list[ClaimedDelivery] | None:
        """Claim up to `count` due deliveries; None if the store failed (logged)."""
        context = self.context
        endpoint = self.runtime.endpoint
        try:
            return await context.claim(
                self.name, count, context.clock(), endpoint.timeout_s + context.lease_margin_s,
                fifo=endpoint.ordering == "fifo", max_in_flight=endpoint.max_in_flight,
                rate_per_s=endpoint.rate_limit_per_s,
            )
        except StorageError as exc:
            log.warning("claim_failed", endpoint=self.name, error=str(exc))
            return None
        except Exception:
            # Not a failure the store foresaw (a driver bug, a protocol surprise):
            # handled as one, so the slots this lane holds go back and it retries.
            log.exception("claim_crashed", endpoint=self.name)
            return None

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            await self._put_back()  # stopping: nothing claimed ahead stays leased

    async def _run(self) -> None:
        context = self.context
        while not context.stopping and not self.closed:
            self.wakeup.clear()
            runtime = self.runtime
            endpoint = runtime.endpoint
            if runtime.held_reason is not None:
                await self._put_back()
                await self._sleep(None)
                continue
            if self.stale:
                await self._put_back(everything=False)
            wanted = self._limit() - self.in_flight
            if wanted <= 0:
                ahead = self._ahead()
                if ahead and not context.behind_on_outcomes:
                    fresh = await self._claim(ahead)
                    if fresh:
                        self.ready.extend(fresh)
                        continue
                await self._sleep(None)
                continue
            if context.behind_on_outcomes:
                await context.room_for_outcomes()  # the store is behind: claim no more
                continue
            if (context.leases_count_as_in_flight and self.in_flight
                    and wanted < max(1, self._limit() // 4) and not self.ready):
                # A shared store claims nothing ahead, so without this each finished
                # attempt would cost a claim of one: wait until a quarter of the
                # limit is free (finishing attempts wake the lane) and claim those
                # in one call. The attempts in flight keep the endpoint busy meanwhile.
                await self._sleep(None)
                continue
            if runtime.bucket is not None:
                wanted = runtime.bucket.take(wanted)
                if wanted == 0:
                    await self._sleep(runtime.bucket.wait_time())
                    continue
            pooled = not self.slow
            pool = context.slots if pooled else context.slow
            if self.ready and pool.available == 0:
                await self._put_back()  # other lanes hold the pool: wait like them
            slots = await pool.acquire(self.name, wanted)
            if runtime.bucket is not None and slots < wanted:
                runtime.bucket.give_back(wanted - slots)
            if slots == 0:  # stopping
                continue
            if pooled and self.slow:  # turned slow while it waited
                self._give_back(pool, slots)
                continue
            batch: list[ClaimedDelivery] = []
            while len(batch) < slots and (claimed := self._next_ready()) is not None:
                batch.append(claimed)
            missing = slots - len(batch)
            if missing:
                asked = missing + (0 if batch else self._ahead())
                fresh = await self._claim(asked)
                if fresh is None:  # the store failed: send what was claimed, retry soon
                    self._give_back(pool, missing)
                    for claimed in batch:
                        self._start(claimed, pooled)
                    await self._sleep(1.0)
                    continue
                self.short = len(fresh) < asked
                batch.extend(fresh[:missing])
                self.ready.extend(fresh[missing:])
                self._give_back(pool, slots - len(batch))
            if context.stopping and batch:
                pool.release(self.name, len(batch))
                self.ready[:0] = batch
                break
            for claimed in batch:
                self._start(claimed, pooled)
            if batch:
                continue
            try:
                due = await context.next_due_at(self.name, fifo=endpoint.ordering == "fifo")
            except StorageError:
                due = context.clock() + 1.0
            await self._sleep(None if due is None else max(due - context.clock(), 0.0))


class Wakeup:
    """`asyncio.Event` for one waiter: a flag and a future made only while it waits.

    Every lane has one; an Event keeps a deque of waiters from birth (~400
    bytes), which ten thousand lanes that mostly sleep do not need.
    """

    __slots__ = ("flag", "waiter")

    def __init__(self) -> None:
        self.flag = False
        self.waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        self.flag = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def clear(self) -> None:
        self.flag = False

    def is_set(self) -> bool:
        return self.flag

    async def wait(self) -> None:
        if self.flag:
            return
        waiter = self.waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            self.waiter = None


def bind_delivery(claimed: ClaimedDelivery) -> structlog.typing.FilteringBoundLogger:
    """The delivery's logging context, bound only when something is logged (binding costs).

    A traced event's `trace_id` (its ingest span's, which its attempts share)
    is on the line too, read from the stored context without OpenTelemetry.
    """
    bound: structlog.typing.FilteringBoundLogger = log.bind(
        event_id=claimed.event_id, delivery_id=claimed.id, endpoint=claimed.endpoint,
        attempt=claimed.attempt)
    if claimed.trace_context is not None:
        bound = bound.bind(trace_id=claimed.trace_context[3:35])
    return bound
