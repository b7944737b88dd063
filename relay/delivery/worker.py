"""The delivery engine: one lane per endpoint, claiming due work and sending it.

Each endpoint has its own lane (an asyncio task) with its own in-flight count,
so a slow or dead endpoint only ever fills its own `max_in_flight`. Lanes
share the global `delivery.concurrency` pool, taken before claiming; the only
claimed work that waits in memory is a lane's successors to its attempts in
flight (`Lane`), and none is claimed while another lane waits for the pool.

Hung connections never hold the pool against other endpoints: while a lane
waits for it, attempts that have run for `SLOW_AFTER_S` are moved out of it
(`Dispatcher._move_aside`) and counted in a second pool of the same size,
`slow`. A lane with such an attempt in flight, or whose last attempt took that
long, starts its attempts in `slow` only, so endpoints known to be slow share
that second pool and healthy ones keep the first. An attempt is never cut
short for this: it runs until its answer or its timeout.

A lane sleeps until the earliest of: its next due delivery (an indexed
query), new deliveries from ingest (`Dispatcher.notify`), a finished attempt,
or shutdown. There is no polling loop over the whole table.

Stopping (SIGTERM): lanes stop claiming, in-flight attempts get the grace
period to finish and record their outcome; attempts still running then are
cancelled and their deliveries put back as due, with the interruption logged,
so nothing is left `delivering` after a clean stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import structlog

from relay.config import Config, EndpointConfig
from relay.delivery.limits import Slots, TokenBucket
from relay.delivery.recorder import Finished, Recorder
from relay.delivery.sender import Sender, SendResult
from relay.exceptions import StorageError
from relay.models import AttemptResult, ClaimedDelivery, DeliveryStatus
from relay.retry import decide
from relay.signing import HEADER_NAMES, Signer
from relay.storage.base import Storage

__all__ = ["Dispatcher"]

log = structlog.get_logger("relay.delivery")

LEASE_MARGIN_S = 60.0  # default of delivery.lease_margin: a lease outlives the timeout by this
REAP_INTERVAL_S = 30.0  # at most; shorter margins are reaped at half the margin
MAX_IDLE_WAIT_S = 60.0  # a lane re-checks the store at least this often
# A lane claims successors ahead only while its attempts take less than this:
# a claim's round trip through the store is about a millisecond.
AHEAD_BELOW_MS = 50.0
# An attempt running this long no longer holds a slot of the pool while a lane
# waits for one; its endpoint counts as slow until an attempt answers sooner.
SLOW_AFTER_S = 1.0
# Lowercased names of the signature headers of every scheme (masked when stored).
_SIGNATURE_HEADERS = {names[3].lower() for names in HEADER_NAMES.values()}


@dataclass
class _Runtime:
    """Per-endpoint state that changes with the config (reload) or at run time."""

    endpoint: EndpointConfig
    signer: Signer
    bucket: TokenBucket | None
    held_reason: str | None = None  # paused or disabled: the lane claims nothing
    # What the headers that carry a signature are stored as (`mask`). Every
    # attempt of an endpoint sends the same header names, and a masked value
    # keeps only the scheme prefixes, so this is the same for all of them.
    masked: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        sample = dict(self.endpoint.headers)
        sample.update(self.signer.headers("evt_sample", "sample.type", 0, b""))
        self.masked = {name: mask(value) for name, value in sample.items()
                       if name.lower() in _SIGNATURE_HEADERS}

    def stored_headers(self, headers: dict[str, str]) -> dict[str, str]:
        """An attempt's request headers as stored for operators: signatures masked."""
        return {**headers, **self.masked}


class Lane:
    """Claims and sends one endpoint's deliveries, within its limits.

    While its attempts are in flight, a lane claims their successors ahead
    (`ready`, at most one per attempt in flight), and an attempt that ends
    hands its slot straight to the next of them. Without that, a claim's round
    trip to the store left every freed slot idle until the lane had claimed
    again: draining a backlog, two samples in five saw fewer than 8 of 64 busy.
    """

    def __init__(self, dispatcher: Dispatcher, runtime: _Runtime) -> None:
        self.dispatcher = dispatcher
        self.runtime = runtime
        self.in_flight = 0
        self.ready: deque[ClaimedDelivery] = deque()  # claimed ahead, not started yet
        self.stale: list[ClaimedDelivery] = []  # claimed ahead, waited too long: give back
        self.short = False  # the last claim found less than it asked for
        self.typical_ms: float | None = None  # smoothed duration of its attempts
        self.lagging = False  # its last attempt ran for SLOW_AFTER_S or longer
        self.aged = 0  # its attempts in flight moved out of the pool (`_move_aside`)
        self.wakeup = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def observe(self, duration_ms: float) -> None:
        """Note an attempt's duration (whether claiming ahead is worth it, which pool)."""
        typical = self.typical_ms
        self.typical_ms = duration_ms if typical is None else typical + (duration_ms - typical) / 8
        self.lagging = duration_ms >= SLOW_AFTER_S * 1000

    @property
    def slow(self) -> bool:
        """Known to be slow: its attempts go in the dispatcher's `slow` pool."""
        return self.lagging or self.aged > 0

    @property
    def name(self) -> str:
        return self.runtime.endpoint.name

    def wake(self) -> None:
        self.wakeup.set()

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
        d = self.dispatcher
        if (self.typical_ms is None or self.typical_ms > AHEAD_BELOW_MS or self.slow
                or runtime.endpoint.ordering == "fifo" or runtime.bucket is not None
                or d.slots.waiting or d.storage.leases_count_as_in_flight):
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
        d = self.dispatcher
        room = self.runtime.endpoint.timeout_s + d.config.delivery.lease_margin_s / 2
        while self.ready:
            claimed = self.ready.popleft()
            if claimed.lease_until - d.clock() >= room:
                return claimed
            _logger(claimed).warning("claimed_ahead_given_back",
                                     waited_for="a slot, longer than half the lease margin")
            self.stale.append(claimed)
            self.wake()  # the lane gives it back
        return None

    def _start(self, claimed: ClaimedDelivery, pooled: bool = True) -> None:
        """Attempt `claimed` now, in a slot this lane already holds (in `slow` if not pooled)."""
        self.in_flight += 1
        self.dispatcher.spawn(self, claimed, pooled)

    def hand_over(self) -> bool:
        """Start the next claimed delivery in a slot an attempt just freed.

        Not when another lane waits for a slot, nor when a reload shrank the
        global pool below what is in use, nor once this lane is slow (its next
        attempts go in the `slow` pool): the slot goes back to the pool.
        """
        d = self.dispatcher
        if (d.stopping or self.runtime.held_reason is not None or d.slots.waiting
                or d.slots.used > d.slots.size or self.in_flight >= self._limit()
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
        d = self.dispatcher
        given = self.stale
        self.stale = []
        if everything:
            given.extend(self.ready)
            self.ready.clear()
        if given:
            with contextlib.suppress(StorageError):
                await d.storage.release([(c.id, c.lease_until) for c in given], d.clock(),
                                        hold=self.runtime.held_reason is not None)

    def _give_back(self, pool: Slots, count: int) -> None:
        """Return `count` unused slots of `pool`, and their rate-limit tokens."""
        if count:
            pool.release(self.name, count)
            if self.runtime.bucket is not None:
                self.runtime.bucket.give_back(count)

    async def _claim(self, count: int) -> list[ClaimedDelivery] | None:
        """Claim up to `count` due deliveries; None if the store failed (logged)."""
        d = self.dispatcher
        endpoint = self.runtime.endpoint
        try:
            return await d.storage.claim(
                self.name, count, d.clock(),
                endpoint.timeout_s + d.config.delivery.lease_margin_s,
                fifo=endpoint.ordering == "fifo", max_in_flight=endpoint.max_in_flight,
                rate_per_s=endpoint.rate_limit_per_s,
            )
        except StorageError as exc:
            log.warning("claim_failed", endpoint=self.name, error=str(exc))
            return None

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            await self._put_back()  # stopping: nothing claimed ahead stays leased

    async def _run(self) -> None:
        d = self.dispatcher
        while not d.stopping:
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
                if ahead and d.recorder.unstored <= d.recorder.limit:
                    fresh = await self._claim(ahead)
                    if fresh:
                        self.ready.extend(fresh)
                        continue
                await self._sleep(None)
                continue
            if d.recorder.unstored > d.recorder.limit:
                await d.recorder.room()  # the store is behind on outcomes: claim no more
                continue
            if runtime.bucket is not None:
                wanted = runtime.bucket.take(wanted)
                if wanted == 0:
                    await self._sleep(runtime.bucket.wait_time())
                    continue
            pool = d.slow if self.slow else d.slots
            if self.ready and pool.available == 0:
                await self._put_back()  # other lanes hold the pool: wait like them
            slots = await pool.acquire(self.name, wanted)
            if runtime.bucket is not None and slots < wanted:
                runtime.bucket.give_back(wanted - slots)
            if slots == 0:  # stopping
                continue
            if self.slow and pool is d.slots:  # turned slow while it waited
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
                        self._start(claimed, pool is d.slots)
                    await self._sleep(1.0)
                    continue
                self.short = len(fresh) < asked
                batch.extend(fresh[:missing])
                self.ready.extend(fresh[missing:])
                self._give_back(pool, slots - len(batch))
            if d.stopping and batch:
                pool.release(self.name, len(batch))
                self.ready.extendleft(reversed(batch))
                break
            for claimed in batch:
                self._start(claimed, pool is d.slots)
            if batch:
                continue
            try:
                due = await d.storage.next_due_at(self.name, fifo=endpoint.ordering == "fifo")
            except StorageError:
                due = d.clock() + 1.0
            await self._sleep(None if due is None else max(due - d.clock(), 0.0))


class Dispatcher:
    """Owns the lanes and every in-flight attempt; started and stopped by the app."""

    def __init__(
        self,
        storage: Storage,
        sender: Sender,
        config: Config,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.storage = storage
        self.sender = sender
        self.config = config
        self.clock = clock
        self.rng = rng or random.Random()
        self.slots = Slots(config.delivery.concurrency)
        self.slots.on_wait = self._pool_wanted
        self.slow = Slots(config.delivery.concurrency)  # for endpoints known to be slow
        # The attempts holding a slot of `slots`, oldest first: (monotonic start, lane).
        self._pooled: dict[int, tuple[float, Lane]] = {}
        self._aging: asyncio.TimerHandle | None = None  # the next `_move_aside`
        self.stopping = False
        self.lanes: dict[str, Lane] = {}
        self._attempts: set[asyncio.Task[None]] = set()
        self._side_tasks: list[asyncio.Task[None]] = []
        self.recorder = Recorder(storage, self._stored, clock,
                                 limit=_unstored_limit(config.delivery.concurrency))
        # Called with each attempt once it is stored (metrics, the admin `test` route).
        self.attempt_listeners: list[Callable[[AttemptResult], None]] = []

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self, held: dict[str, str] | None = None) -> None:
        """Requeue what a crash left in flight, then start a lane per endpoint.

        `held` maps endpoint names to why they are paused or disabled.
        """
        recovered = await self.storage.recover_interrupted(self.clock())
        if recovered:
            log.warning("recovered_interrupted_deliveries", count=recovered)
        held = held or {}
        for endpoint in self.config.endpoints:
            if endpoint.enabled:
                self._add_lane(endpoint, held.get(endpoint.name))
        self._side_tasks.append(asyncio.create_task(self._reap_loop(), name="lease-reaper"))

    def _add_lane(self, endpoint: EndpointConfig, held_reason: str | None) -> None:
        bucket = TokenBucket(endpoint.rate_limit_per_s) if endpoint.rate_limit_per_s else None
        runtime = _Runtime(endpoint, Signer(endpoint.signature, endpoint.secrets), bucket,
                           held_reason)
        lane = Lane(self, runtime)
        lane.task = asyncio.create_task(lane.run(), name=f"lane:{endpoint.name}")
        lane.task.add_done_callback(self._lane_done)
        self.lanes[endpoint.name] = lane

    def reload(self, config: Config, held: dict[str, str]) -> None:
        """Apply a new config to new attempts; attempts in flight keep their runtime.

        A removed or disabled endpoint's lane stays, holding its deliveries, so
        nothing is dropped and re-adding the endpoint resumes them.
        """
        self.config = config
        self.slots.resize(config.delivery.concurrency)
        self.slow.resize(config.delivery.concurrency)
        self.recorder.limit = _unstored_limit(config.delivery.concurrency)
        self.sender.reconfigure(config)
        active = {e.name: e for e in config.endpoints if e.enabled}
        for name, lane in self.lanes.items():
            if name not in active:
                lane.runtime.held_reason = "removed from relay.yaml or not enabled"
        for name, endpoint in active.items():
            existing = self.lanes.get(name)
            if existing is None:
                self._add_lane(endpoint, held.get(name))
                continue
            old = existing.runtime
            bucket = old.bucket
            if endpoint.rate_limit_per_s != old.endpoint.rate_limit_per_s:
                bucket = (TokenBucket(endpoint.rate_limit_per_s)
                          if endpoint.rate_limit_per_s else None)
            existing.runtime = _Runtime(endpoint, Signer(endpoint.signature, endpoint.secrets),
                                        bucket, held.get(name))
            existing.wake()

    def _lane_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None and not self.stopping:
            log.error("lane_crashed", lane=task.get_name(), error=repr(task.exception()))

    @property
    def alive(self) -> bool:
        """True while every lane and side task runs (for /readyz)."""
        tasks = [lane.task for lane in self.lanes.values() if lane.task] + self._side_tasks
        return not self.stopping and all(not t.done() for t in tasks)

    def notify(self, endpoints: Iterable[str]) -> None:
        """New deliveries were committed for these endpoints: wake their lanes."""
        for name in endpoints:
            lane = self.lanes.get(name)
            if lane is not None:
                lane.wake()

    def set_held(self, name: str, reason: str | None) -> None:
        lane = self.lanes.get(name)
        if lane is not None:
            lane.runtime.held_reason = reason
            lane.wake()

    async def stop(self, grace_s: float) -> None:
        """Stop claiming, let attempts finish within `grace_s`, then cut the rest short."""
        self.stopping = True
        for lane in self.lanes.values():
            lane.wake()
        self.slots.interrupt()  # lanes waiting for a slot stop waiting
        self.slow.interrupt()
        if self._aging is not None:
            self._aging.cancel()
        self.recorder.stop_waiting()
        lane_tasks = [lane.task for lane in self.lanes.values() if lane.task is not None]
        if lane_tasks:
            await asyncio.wait(lane_tasks, timeout=5.0)
        for task in lane_tasks:
            task.cancel()
        deadline = asyncio.get_running_loop().time() + grace_s
        if self._attempts:
            log.info("waiting_for_attempts", in_flight=len(self._attempts), grace_s=grace_s)
            _, pending = await asyncio.wait(set(self._attempts), timeout=grace_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5.0)
        # Outcomes (the interrupted ones too) are stored before the store closes.
        await self.recorder.drain(max(deadline - asyncio.get_running_loop().time(), 5.0))
        for task in self._side_tasks:
            task.cancel()
        await asyncio.gather(*lane_tasks, *self._side_tasks, return_exceptions=True)

    async def _reap_loop(self) -> None:
        """Requeue deliveries whose lease ran out (their result could not be stored)."""
        while True:
            margin = self.config.delivery.lease_margin_s
            await asyncio.sleep(min(REAP_INTERVAL_S, max(margin / 2, 0.5)))
            with contextlib.suppress(StorageError):
                reaped = await self.storage.reap_expired_leases(self.clock())
                if reaped:
                    log.warning("expired_leases_requeued", count=reaped)
                    self.notify(self.lanes)

    # -- attempts ----------------------------------------------------------------------

    def spawn(self, lane: Lane, claimed: ClaimedDelivery, pooled: bool = True) -> None:
        task = asyncio.create_task(self._attempt(lane, claimed, pooled))
        self._attempts.add(task)
        task.add_done_callback(self._attempts.discard)

    def _pool_wanted(self) -> None:
        """A lane waits for the pool: free what hung attempts hold of it, now or when due."""
        if self._aging is None:
            self._move_aside()

    def _move_aside(self) -> None:
        """Count attempts running for SLOW_AFTER_S in `slow`, freeing their pool slots.

        Only while a lane waits for the pool, so this costs nothing otherwise;
        `slow` takes them past its size if need be, for a hung attempt must
        never keep a healthy endpoint waiting. Their lanes are slow from now on.
        """
        self._aging = None
        if not self.slots.waiting or self.stopping:
            return
        cutoff = time.monotonic() - SLOW_AFTER_S
        # With no younger attempt, lanes that are claiming hold the pool: what
        # they start is due no sooner than SLOW_AFTER_S from now.
        due_in = SLOW_AFTER_S
        aged: list[int] = []
        for delivery_id, (started, _) in self._pooled.items():
            if started > cutoff:
                due_in = started - cutoff
                break
            aged.append(delivery_id)
        for delivery_id in aged:
            _, lane = self._pooled.pop(delivery_id)
            lane.aged += 1
            self.slow.take(lane.name, 1)
            self.slots.release(lane.name)
        if self.slots.waiting:
            self._aging = asyncio.get_running_loop().call_later(due_in, self._move_aside)

    async def _attempt(self, lane: Lane, claimed: ClaimedDelivery, pooled: bool) -> None:
        runtime = lane.runtime  # the config of this attempt, even if a reload swaps it
        if pooled:
            self._pooled[claimed.id] = (time.monotonic(), lane)
        endpoint = runtime.endpoint
        started = self.clock()
        headers = dict(endpoint.headers)
        headers.update(runtime.signer.headers(claimed.event_id, claimed.event_type,
                                              int(started), claimed.body))
        try:
            try:
                sent = await self.sender.send(endpoint.url, claimed.body, headers,
                                              endpoint.timeout_s,
                                              allow_http=endpoint.allow_http)
            except asyncio.CancelledError:
                # Shutdown's grace period ran out: as far as the schedule is concerned
                # the attempt did not happen; it is due again when the relay is back.
                self.recorder.add(self._interrupted(claimed, runtime, started, headers),
                                  claimed)
                raise
            except Exception as exc:  # a sender must not raise; if one does, retry later
                _logger(claimed).exception("sender_crashed")
                sent = SendResult(None, b"", None, f"internal error: {type(exc).__name__}", 0.0)
            # The recorder stores the outcome; the lease keeps the delivery from
            # being claimed again meanwhile, so the slot is free now.
            self.recorder.add(self._result(claimed, runtime, started, sent, headers), claimed)
            lane.observe(sent.duration_ms)
        finally:
            lane.in_flight -= 1
            if pooled and self._pooled.pop(claimed.id, None) is not None:
                if not lane.hand_over():
                    self.slots.release(lane.name)
            else:
                if pooled:  # moved out of the pool meanwhile
                    lane.aged -= 1
                self.slow.release(lane.name)
            lane.wake()

    def _result(self, claimed: ClaimedDelivery, runtime: _Runtime, started: float,
                sent: SendResult, headers: dict[str, str]) -> AttemptResult:
        endpoint = runtime.endpoint
        masked = runtime.stored_headers(headers)
        code = sent.status
        if code is not None and 200 <= code < 300 and sent.error is None and not sent.permanent:
            # The common case, without the retry policy's general path.
            return AttemptResult(claimed.id, endpoint.name, claimed.attempt, started,
                                 sent.duration_ms, code, sent.body, None, masked)
        decision = decide(
            status=sent.status if sent.error is None else None,
            attempts_made=claimed.attempt,
            schedule=endpoint.retry_schedule_s,
            jitter=endpoint.jitter,
            retry_client_errors=endpoint.retry_client_errors,
            retry_after=sent.retry_after,
            now=started,
            rng=self.rng,
        )
        if sent.permanent:  # e.g. a refused destination: no retry can change the outcome
            status, next_at = DeliveryStatus.FAILED, None
        elif decision.outcome == "delivered":
            status, next_at = DeliveryStatus.DELIVERED, None
        elif decision.outcome == "retry":
            status, next_at = DeliveryStatus.SCHEDULED, self.clock() + decision.delay_s
        else:
            status, next_at = DeliveryStatus.FAILED, None
        error = sent.error
        if error is None and decision.outcome != "delivered":
            error = f"endpoint answered {sent.status}"
        reason = decision.reason
        if reason is not None and error is not None:
            # Reasons about the answer already name the status; others add to it.
            error = reason if reason.startswith("endpoint answered") else f"{error}; {reason}"
        return AttemptResult(
            delivery_id=claimed.id, endpoint=endpoint.name, attempt=claimed.attempt,
            started_at=started, duration_ms=sent.duration_ms, status_code=sent.status,
            response_body=sent.body, error=error, request_headers=masked,
            new_status=status, next_attempt_at=next_at,
            disable_reason="endpoint answered 410 Gone" if decision.disable_endpoint else None,
            disable_after_s=endpoint.disable_after_s,
        )

    def _interrupted(self, claimed: ClaimedDelivery, runtime: _Runtime, started: float,
                     headers: dict[str, str]) -> AttemptResult:
        now = self.clock()
        return AttemptResult(
            delivery_id=claimed.id, endpoint=claimed.endpoint, attempt=claimed.attempt,
            started_at=started, duration_ms=(now - started) * 1000, status_code=None,
            response_body=b"", error="interrupted: the relay shut down during this attempt",
            request_headers=runtime.stored_headers(headers),
            new_status=DeliveryStatus.PENDING,
            next_attempt_at=now, counts=False,
        )

    def _stored(self, batch: Sequence[Finished], disabled: dict[str, str]) -> None:
        """After a batch of outcomes is committed: lanes, listeners, logs."""
        for name, reason in disabled.items():
            if self.lanes.get(name) and self.lanes[name].runtime.held_reason != reason:
                self.set_held(name, reason)
                log.warning("endpoint_disabled", endpoint=name, reason=reason)
        info = log.is_enabled_for(logging.INFO)
        for result, claimed in batch:
            lane = self.lanes.get(claimed.endpoint)
            if lane is not None and (lane.short or result.new_status != DeliveryStatus.DELIVERED
                                     or lane.runtime.endpoint.ordering == "fifo"):
                # Stored now: a retry's due time, a fifo queue's next head, or room
                # under a max_in_flight that the store counts (PostgreSQL shares it
                # between relays) is visible to a lane whose last claim missed it.
                lane.wake()
            for listener in self.attempt_listeners:
                try:
                    listener(result)
                except Exception:
                    _logger(claimed).exception("attempt_listener_failed")
            if result.new_status == DeliveryStatus.DELIVERED:
                if info:
                    _logger(claimed).info("delivery_succeeded", **_outcome_fields(result))
            elif result.new_status == DeliveryStatus.FAILED:
                _logger(claimed).warning("delivery_failed", **_outcome_fields(result))
            elif info:
                fields = _outcome_fields(result)
                if result.next_attempt_at is not None and result.counts:
                    fields["retry_in_s"] = round(result.next_attempt_at - self.clock(), 1)
                _logger(claimed).info("delivery_attempt_failed", **fields)


def _unstored_limit(concurrency: int) -> int:
    """Outcomes that may wait to be stored before lanes stop claiming."""
    return max(4 * concurrency, 256)


def _logger(claimed: ClaimedDelivery) -> structlog.typing.FilteringBoundLogger:
    """The delivery's context, bound only when something is logged (binding costs)."""
    bound: structlog.typing.FilteringBoundLogger = log.bind(
        event_id=claimed.event_id, delivery_id=claimed.id, endpoint=claimed.endpoint,
        attempt=claimed.attempt)
    return bound


def _outcome_fields(result: AttemptResult) -> dict[str, object]:
    fields: dict[str, object] = {
        "status": result.status_code,
        "duration_ms": round(result.duration_ms, 1),
        "outcome": result.new_status.value,
    }
    if result.error:
        fields["error"] = result.error
    return fields


def mask(value: str) -> str:
    """A signature header as stored for operators: each signature cut to its scheme prefix."""
    return " ".join((part.split(",", 1)[0] + ",…") if "," in part else "…"
                    for part in value.split(" "))
