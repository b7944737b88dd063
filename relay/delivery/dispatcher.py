"""The delivery engine: `Dispatcher` owns the lanes, every attempt in flight, and stopping.

One `Lane` per enabled endpoint claims its due deliveries (`relay.delivery.lane`);
the dispatcher runs their attempts, hands each outcome (`relay.delivery.outcomes`)
to the `Recorder`, and once it is stored wakes lanes, calls the attempt
listeners and logs it.

Hung connections never hold the pool against other endpoints: while a lane
waits for it, attempts that have run for `SLOW_AFTER_S` are moved out of it
(`Dispatcher._move_aside`) and counted in a second pool of the same size,
`slow`. A lane with such an attempt in flight, or whose last attempt took that
long, starts its attempts in `slow` only, so endpoints known to be slow share
that second pool and healthy ones keep the first. An attempt is never cut
short for this: it runs until its answer or its timeout.

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
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import structlog

from relay.config import Config, EndpointConfig
from relay.delivery.lane import SLOW_AFTER_S, Lane, bind_delivery
from relay.delivery.limits import Slots
from relay.delivery.outcomes import attempt_result, interrupted_result
from relay.delivery.recorder import Finished, Recorder, StoredCallback
from relay.delivery.runtime import EndpointRuntime
from relay.delivery.sender import Sender, SendResult
from relay.exceptions import StorageError
from relay.models import AttemptResult, ClaimedDelivery, DeliveryStatus
from relay.storage.base import Storage

if TYPE_CHECKING:  # only imported when tracing is on (relay.http.app.load_telemetry)
    from relay.telemetry import Telemetry

__all__ = ["AttemptListener", "Dispatcher"]

log = structlog.get_logger("relay.delivery")

REAP_INTERVAL_S = 30.0  # at most; shorter margins are reaped at half the margin
# A lane that died of an error nobody expected starts again after this long, so
# one bug or one driver surprise cannot leave an endpoint undelivered for good.
LANE_RESTART_S = 1.0

# Called with each attempt once it is stored (metrics, the admin `test` route).
AttemptListener = Callable[[AttemptResult], None]


class Dispatcher:
    """Owns the lanes and every in-flight attempt; started and stopped by the app.

    It is the `LaneContext` of its lanes: the pools, the store's claims and
    the recorder's backpressure, through the few members a lane needs.
    """

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
        self._listeners: list[AttemptListener] = []
        self._batch_listeners: list[StoredCallback] = []
        self.telemetry: Telemetry | None = None  # tracing, when on: a span per attempt

    @contextlib.contextmanager
    def on_attempt(self, listener: AttemptListener) -> Iterator[None]:
        """Call `listener` with each attempt once it is stored, until the block ends.

        Listeners run on the event loop right after the store's commit, so they
        must be quick; one that raises is logged and the others still run.
        """
        self._listeners.append(listener)
        try:
            yield
        finally:
            self._listeners.remove(listener)

    @contextlib.contextmanager
    def on_stored(self, listener: StoredCallback) -> Iterator[None]:
        """Call `listener` with each stored batch (and the endpoints it disabled), as above.

        For what needs the claimed delivery beside the outcome (the
        operational events: an event's id and type).
        """
        self._batch_listeners.append(listener)
        try:
            yield
        finally:
            self._batch_listeners.remove(listener)

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self, held: dict[str, str] | None = None,
                    endpoints: Iterable[EndpointConfig] | None = None) -> None:
        """Requeue what a crash left in flight, then start a lane per endpoint.

        `held` maps endpoint names to why they are paused or disabled;
        `endpoints` are relay.yaml's and the API's (by default the config's).
        """
        recovered = await self.storage.recover_interrupted(self.clock())
        if recovered:
            log.warning("recovered_interrupted_deliveries", count=recovered)
        held = held or {}
        for endpoint in self.config.endpoints if endpoints is None else endpoints:
            if endpoint.enabled:
                self._add_lane(endpoint, held.get(endpoint.name))
        self._side_tasks.append(asyncio.create_task(self._reap_loop(), name="lease-reaper"))

    def _add_lane(self, endpoint: EndpointConfig, held_reason: str | None) -> None:
        lane = Lane(self, EndpointRuntime.build(endpoint, held_reason))
        self.lanes[endpoint.name] = lane
        self._run_lane(lane)

    def _run_lane(self, lane: Lane) -> None:
        if self.stopping or lane.closed or self.lanes.get(lane.name) is not lane:
            return
        lane.task = asyncio.create_task(lane.run(), name=f"lane:{lane.name}")
        lane.task.add_done_callback(lambda task: self._lane_done(lane, task))

    def reload(self, config: Config, held: dict[str, str],
               endpoints: Iterable[EndpointConfig] | None = None) -> None:
        """Apply a new config to new attempts; attempts in flight keep their runtime.

        A removed or disabled endpoint's lane stays, holding its deliveries, so
        nothing is dropped and re-adding the endpoint resumes them.
        """
        self.config = config
        self.slots.resize(config.delivery.concurrency)
        self.slow.resize(config.delivery.concurrency)
        self.recorder.limit = _unstored_limit(config.delivery.concurrency)
        self.sender.reconfigure(config)
        known = list(config.endpoints if endpoints is None else endpoints)
        active = {e.name: e for e in known if e.enabled}
        for name, lane in self.lanes.items():
            if name not in active:
                lane.runtime.held_reason = "removed from relay.yaml or not enabled"
        for endpoint in active.values():
            self.upsert(endpoint, held.get(endpoint.name))

    def upsert(self, endpoint: EndpointConfig, held_reason: str | None) -> None:
        """Start a lane for a new endpoint, or give an existing one its new settings.

        A disabled endpoint keeps (or gets) a lane that holds: its deliveries
        wait for it to be enabled again.
        """
        if not endpoint.enabled:
            held_reason = held_reason or "not enabled"
        existing = self.lanes.get(endpoint.name)
        if existing is None:
            if endpoint.enabled:
                self._add_lane(endpoint, held_reason)
            return
        existing.runtime = EndpointRuntime.build(endpoint, held_reason, existing.runtime)
        existing.wake()

    def remove(self, name: str) -> None:
        """End a deleted endpoint's lane; its attempts in flight finish on their own."""
        lane = self.lanes.pop(name, None)
        if lane is not None:
            lane.close("deleted")

    def _lane_done(self, lane: Lane, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None and not self.stopping:
            log.error("lane_crashed", lane=task.get_name(), error=repr(task.exception()),
                      restart_in_s=LANE_RESTART_S)
            asyncio.get_running_loop().call_later(LANE_RESTART_S, self._run_lane, lane)

    @property
    def alive(self) -> bool:
        """True while every lane and side task runs (for /readyz)."""
        tasks = [lane.task for lane in self.lanes.values() if lane.task] + self._side_tasks
        return not self.stopping and all(not t.done() for t in tasks)

    def notify(self, endpoints: Iterable[str]) -> None:
        """New deliveries were committed for these endpoints: wake their lanes.

        A held lane claims nothing, so it is not woken: what lifts the hold
        (resume, a reload, an API change) wakes it. With thousands of paused
        endpoints, waking each on every event was most of ingest's extra cost.
        """
        lanes = self.lanes
        for name in endpoints:
            lane = lanes.get(name)
            if lane is not None and lane.runtime.held_reason is None:
                lane.wake()

    def apply_hold(self, endpoint: EndpointConfig, reason: str | None) -> None:
        """The store's hold (pause, disable) of an endpoint, as any relay last left it.

        A lane that is not enabled here keeps holding whatever the store says.
        """
        lane = self.lanes.get(endpoint.name)
        if lane is not None and endpoint.enabled and lane.runtime.held_reason != reason:
            self.set_held(endpoint.name, reason)

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

    # -- what lanes use (`LaneContext`) ---------------------------------------------------

    @property
    def lease_margin_s(self) -> float:
        return self.config.delivery.lease_margin_s

    @property
    def leases_count_as_in_flight(self) -> bool:
        return self.storage.leases_count_as_in_flight

    @property
    def behind_on_outcomes(self) -> bool:
        return self.recorder.unstored > self.recorder.limit

    async def room_for_outcomes(self) -> None:
        await self.recorder.room()

    async def claim(self, endpoint: str, count: int, now: float, lease_s: float, *,
                    fifo: bool, max_in_flight: int,
                    rate_per_s: float | None) -> list[ClaimedDelivery]:
        return await self.storage.claim(endpoint, count, now, lease_s, fifo=fifo,
                                        max_in_flight=max_in_flight, rate_per_s=rate_per_s)

    async def release(self, claims: Sequence[tuple[int, float]], now: float, *,
                      hold: bool) -> None:
        await self.storage.release(claims, now, hold=hold)

    async def next_due_at(self, endpoint: str, *, fifo: bool) -> float | None:
        return await self.storage.next_due_at(endpoint, fifo=fifo)

    def spawn(self, lane: Lane, claimed: ClaimedDelivery, pooled: bool) -> None:
        task = asyncio.create_task(self._attempt(lane, claimed, pooled))
        self._attempts.add(task)
        task.add_done_callback(self._attempts.discard)

    # -- attempts ----------------------------------------------------------------------

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
        body = runtime.body(claimed)
        headers = dict(endpoint.headers)
        headers.update(runtime.signer.headers(claimed.event_id, claimed.event_type,
                                              int(started), body))
        # After signing, and headers only: the signed bytes are the same with or without it.
        span = None if self.telemetry is None else self.telemetry.attempt(claimed)
        if span is not None and endpoint.trace_context:
            headers.update(span.headers(claimed.trace_context))
        try:
            try:
                sent = await self.sender.send(endpoint.url, body, headers,
                                              endpoint.timeout_s,
                                              allow_http=endpoint.allow_http)
            except asyncio.CancelledError:
                # Shutdown's grace period ran out: it is due again when the relay is back.
                result = interrupted_result(claimed, started=started, now=self.clock(),
                                            request_headers=runtime.stored_headers(headers))
                self.recorder.add(result, claimed)
                if span is not None:
                    span.end(result)
                raise
            except Exception as exc:  # a sender must not raise; if one does, retry later
                bind_delivery(claimed).exception("sender_crashed")
                sent = SendResult(None, b"", None, f"internal error: {type(exc).__name__}", 0.0)
            # The recorder stores the outcome; the lease keeps the delivery from
            # being claimed again meanwhile, so the slot is free now.
            result = attempt_result(claimed, endpoint, sent, started=started, now=self.clock(),
                                    request_headers=runtime.stored_headers(headers),
                                    rng=self.rng)
            self.recorder.add(result, claimed)
            if span is not None:
                span.end(result)
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

    def _stored(self, batch: Sequence[Finished], disabled: dict[str, str]) -> None:
        """After a batch of outcomes is committed: lanes, listeners, logs."""
        for name, reason in disabled.items():
            if self.lanes.get(name) and self.lanes[name].runtime.held_reason != reason:
                self.set_held(name, reason)
                log.warning("endpoint_disabled", endpoint=name, reason=reason)
        for batch_listener in self._batch_listeners:
            try:
                batch_listener(batch, disabled)
            except Exception:
                log.exception("stored_listener_failed")
        info = log.is_enabled_for(logging.INFO)
        for result, claimed in batch:
            lane = self.lanes.get(claimed.endpoint)
            if lane is not None and (lane.short or result.new_status != DeliveryStatus.DELIVERED
                                     or lane.runtime.endpoint.ordering == "fifo"):
                # Stored now: a retry's due time, a fifo queue's next head, or room
                # under a max_in_flight that the store counts (PostgreSQL shares it
                # between relays) is visible to a lane whose last claim missed it.
                lane.wake()
            for listener in self._listeners:
                try:
                    listener(result)
                except Exception:
                    bind_delivery(claimed).exception("attempt_listener_failed")
            if result.new_status == DeliveryStatus.DELIVERED:
                if info:
                    bind_delivery(claimed).info("delivery_succeeded", **_outcome_fields(result))
            elif result.new_status == DeliveryStatus.FAILED:
                bind_delivery(claimed).warning("delivery_failed", **_outcome_fields(result))
            elif info:
                fields = _outcome_fields(result)
                if result.next_attempt_at is not None and result.counts:
                    fields["retry_in_s"] = round(result.next_attempt_at - self.clock(), 1)
                bind_delivery(claimed).info("delivery_attempt_failed", **fields)


def _unstored_limit(concurrency: int) -> int:
    """Outcomes that may wait to be stored before lanes stop claiming."""
    return max(4 * concurrency, 256)


def _outcome_fields(result: AttemptResult) -> dict[str, object]:
    fields: dict[str, object] = {
        "status": result.status_code,
        "duration_ms": round(result.duration_ms, 1),
        "outcome": result.new_status.value,
    }
    if result.error:
        fields["error"] = result.error
    return fields
