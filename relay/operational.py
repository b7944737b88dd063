"""Operational events: the relay's own events about itself, sent to `operations.notify`.

An operator hears of trouble the way their systems hear of licenses: by a
signed webhook. `endpoint.disabled` (automatic disable), `endpoint.failing`
(no success for `operations.failing_after`), `endpoint.recovered` (the first
success after either), `delivery.failed` (a delivery that will not be tried
again) and `endpoint.created|updated|deleted` (the endpoint API, or a
reload of relay.yaml that adds, changes or removes endpoints) are stored
as ordinary events whose deliveries go to the `operations.notify` endpoints,
so they are retried, logged and signed like any other.

They never loop: an event about endpoint X is not sent to X, and a failed
delivery of an operational event raises no `delivery.failed`. The health
kinds are rate-limited per endpoint and kind (`operations.min_interval`): a
flapping endpoint makes one event per interval, and the next one says how
many were held back (`suppressed`). Their ids are derived from the endpoint,
the kind and the interval, so relays sharing a PostgreSQL store make one
event between them, not one each.

What was announced is kept in memory: after a restart an endpoint still
failing is announced once more, and one that recovers is not.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import structlog

from relay.config import OPERATIONAL_KINDS, Config, EndpointConfig
from relay.exceptions import StorageError
from relay.models import DeliveryStatus, NewEvent, new_event_id
from relay.routing import pattern_matches
from relay.storage.base import Storage
from relay.timefmt import iso

if TYPE_CHECKING:
    from relay.delivery.recorder import Finished

__all__ = ["ID_PREFIX", "Notices", "changed_fields", "is_operational"]

log = structlog.get_logger("relay.operations")

ID_PREFIX = "relayop_"
_HEALTH = OPERATIONAL_KINDS[:4]  # the kinds about health: rate-limited, ids per interval


def changed_fields(before: EndpointConfig, after: EndpointConfig) -> list[str]:
    """The relay.yaml keys whose values differ between two versions of an endpoint.

    Read from the resolved configs, so a change of an inherited `delivery`
    default shows as the endpoint's own key; `secret` is named, never shown.
    """
    old = before.model_dump(mode="json", by_alias=True)
    new = after.model_dump(mode="json", by_alias=True)
    fields = [key for key in new.keys() | old.keys() if old.get(key) != new.get(key)]
    if before.secrets != after.secrets:
        fields.append("secret")
    return sorted(fields)


def is_operational(event_id: str) -> bool:
    """Whether an event is one of the relay's own (its id says so; platforms' never start so)."""
    return event_id.startswith(ID_PREFIX)


class Notices:
    """Turns stored attempts and endpoint changes into operational events.

    `stored()` is the dispatcher's callback after each batch of outcomes is
    committed (quick, on the loop: the events are stored by tasks);
    `changed()` is called by the endpoint API. `wake` wakes the lanes of the
    notified endpoints once their deliveries are stored; `lookup` finds an
    endpoint of relay.yaml or of the API by name (the subject's tenant).
    """

    def __init__(self, config: Config, storage: Storage,
                 wake: Callable[[Iterable[str]], None],
                 clock: Callable[[], float] = time.time,
                 lookup: Callable[[str], EndpointConfig | None] | None = None) -> None:
        self.config = config
        self._lookup = lookup if lookup is not None else config.endpoint
        self._storage = storage
        self._wake = wake
        self._clock = clock
        self._last: dict[tuple[str, str], float] = {}
        self._suppressed: dict[tuple[str, str], int] = {}
        self._failing: dict[str, float] = {}  # endpoint -> failing since (not yet announced)
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._announced: dict[str, float | None] = {}  # failing or disabled -> failing since
        self._errors: dict[str, str | None] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def enabled(self) -> bool:
        return bool(self.config.operations.notify)

    def reconfigure(self, config: Config) -> None:
        self.config = config
        if not self.enabled:
            for timer in self._timers.values():
                timer.cancel()
            self._timers.clear()
            self._failing.clear()

    # -- what happened ------------------------------------------------------------------

    def stored(self, batch: Sequence[Finished], disabled: Mapping[str, str]) -> None:
        if not self.enabled:
            return
        for name, reason in disabled.items():
            if self._lookup(name) is None:
                continue  # deleted while its last attempt was in flight
            since = self._failing.pop(name, None)
            self._cancel(name)
            self._announced[name] = since
            self._emit("endpoint.disabled", name, {"reason": reason})
        for result, claimed in batch:
            if not result.counts:
                continue
            name = result.endpoint
            if self._lookup(name) is None:
                continue  # deleted while this attempt was in flight: nothing to tell of it
            if result.new_status == DeliveryStatus.DELIVERED:
                self._succeeded(name)
                continue
            self._errors[name] = result.error
            if result.new_status == DeliveryStatus.FAILED and not is_operational(
                    claimed.event_id):
                self._emit("delivery.failed", name, {
                    "delivery_id": result.delivery_id, "event_id": claimed.event_id,
                    "event_type": claimed.event_type, "attempts": result.attempt,
                    "status_code": result.status_code, "error": result.error})
            if name not in self._failing and name not in self._announced:
                self._failing[name] = result.started_at
                self._schedule(name)
                self._spawn(self._stored_failing_since(name), f"failing-since:{name}")

    def changed(self, kind: str, name: str, endpoint: EndpointConfig | None,
                fields: Sequence[str] = ()) -> None:
        """An endpoint was created, updated (these `fields`) or deleted: by the API or a reload."""
        if not self.enabled:
            return
        data: dict[str, Any] = {}
        if endpoint is not None:
            data = {"tenant": endpoint.tenant, "url": endpoint.url,
                    "events": list(endpoint.events)}
        if fields:
            data["changed"] = sorted(fields)
        self._emit(kind, name, data)

    def reloaded(self, before: Iterable[EndpointConfig],
                 after: Iterable[EndpointConfig]) -> None:
        """relay.yaml was reloaded: its endpoints added, changed or removed, announced as
        the API's are, so that the operator hears of every change whichever door it took."""
        old = {e.name: e for e in before}
        new = {e.name: e for e in after}
        for name in old.keys() - new.keys():
            self.forget(name)
        if not self.enabled:
            return
        for name, endpoint in new.items():
            previous = old.get(name)
            if previous is None:
                self.changed("endpoint.created", name, endpoint)
            elif previous != endpoint:
                self.changed("endpoint.updated", name, endpoint,
                             fields=changed_fields(previous, endpoint))
        for name, endpoint in old.items():
            if name not in new:
                self.changed("endpoint.deleted", name, endpoint)

    def _succeeded(self, name: str) -> None:
        self._failing.pop(name, None)
        self._cancel(name)
        self._errors.pop(name, None)
        if name in self._announced:
            since = self._announced.pop(name)
            self._emit("endpoint.recovered", name, {"failing_since": iso(since)})

    # -- endpoint.failing -----------------------------------------------------------------

    async def _stored_failing_since(self, name: str) -> None:
        """The run of failures may be older than this process: the store knows its start."""
        try:
            stats = (await self._storage.endpoint_stats(name)).get(name)
        except StorageError:
            return
        since = stats.failing_since if stats is not None else None
        if since is not None and name in self._failing and since < self._failing[name]:
            self._failing[name] = since
            self._schedule(name)

    def _schedule(self, name: str) -> None:
        self._cancel(name)
        due = self._failing[name] + self.config.operations.failing_after_s - self._clock()
        self._timers[name] = asyncio.get_running_loop().call_later(
            max(due, 0.0), self._still_failing, name)

    def forget(self, name: str) -> None:
        """Drop a deleted endpoint's health (here, on another replica, or by a reload): its
        pending `endpoint.failing` must not fire about an endpoint that is gone, and a new
        one of that name starts with a clean slate."""
        self._cancel(name)
        for state in (self._failing, self._announced, self._errors):
            state.pop(name, None)
        for kind in _HEALTH:
            self._last.pop((name, kind), None)
            self._suppressed.pop((name, kind), None)

    def _cancel(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()

    def _still_failing(self, name: str) -> None:
        self._timers.pop(name, None)
        since = self._failing.pop(name, None)
        if since is None or not self.enabled:
            return
        self._announced[name] = since
        self._emit("endpoint.failing", name, {"failing_since": iso(since),
                                              "last_error": self._errors.get(name)})

    # -- making the events ----------------------------------------------------------------

    def _emit(self, kind: str, subject: str, data: dict[str, Any]) -> None:
        ops = self.config.operations
        if not any(pattern_matches(p, kind) for p in ops.events):
            return
        targets = tuple(n for n in ops.notify if n != subject and (
            (e := self._lookup(n)) is not None and e.enabled))
        if not targets:
            return
        now = self._clock()
        event_id = new_event_id(now).replace("evt_", ID_PREFIX, 1)
        if kind in _HEALTH:
            key = (subject, kind)
            last = self._last.get(key)
            if last is not None and now - last < ops.min_interval_s:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                log.info("operational_event_suppressed", kind=kind, endpoint=subject)
                return
            self._last[key] = now
            data["suppressed"] = self._suppressed.pop(key, 0)
            event_id = f"{ID_PREFIX}{kind}_{subject}_{int(now // ops.min_interval_s)}"
        if "tenant" not in data:
            found = self._lookup(subject)
            data["tenant"] = found.tenant if found is not None else None
        data = {"endpoint": subject, **data}
        body = json.dumps({"type": kind, "id": event_id, "timestamp": iso(now), "data": data},
                          separators=(",", ":"), ensure_ascii=False).encode()
        event = NewEvent(event_id, kind, body, targets, now, keyed=kind in _HEALTH)
        self._spawn(self._store(event), f"operational:{kind}")

    async def _store(self, event: NewEvent) -> None:
        try:
            await self._storage.ingest([event])
        except StorageError as exc:
            log.warning("operational_event_lost", kind=event.type, error=str(exc))
            return
        log.info("operational_event", kind=event.type, event_id=event.id,
                 endpoints=list(event.endpoints))
        self._wake(event.endpoints)

    def _spawn(self, work: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Store what is being stored (before the store closes); stop the timers."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5.0)
