"""`RelayState`: what every route and the lifespan share, and how endpoints change at run time.

Kept apart from the app that builds it (`relay.http.app`) so that the routes
(`ingest`, `admin`, the dashboard) can import it without importing the app,
which imports them: the HTTP package has no import cycle.

Endpoints change in three ways, all applied here to the same three places
(the registry, the router and the dispatcher's lanes, then the store's held
deliveries): a SIGHUP reload of relay.yaml, an API call on this relay, and
an API call on another replica that this one hears of (PostgreSQL).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from relay.config import Config, load_config
from relay.config.sources import SourceConfig
from relay.delivery.dispatcher import Dispatcher
from relay.exceptions import ConfigError, StorageError
from relay.http.auth import HostRule
from relay.metrics import RelayMetrics
from relay.operational import Notices
from relay.registry import ApiEndpoint, Registry
from relay.routing import Router
from relay.source_store import open_source
from relay.storage import Storage

if TYPE_CHECKING:  # only imported when tracing is on (relay.http.app.load_telemetry)
    from relay.telemetry import Telemetry

__all__ = ["RelayState", "ReloadOutcome", "host_rule"]

log = structlog.get_logger("relay")


@dataclass(frozen=True, slots=True)
class ReloadOutcome:
    """The last SIGHUP reload: when, and the errors of a rejected file (empty if applied)."""

    at: float
    errors: tuple[str, ...] = ()

    @property
    def applied(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        """"config rejected: ..." naming the keys only, for /readyz, which anyone reachable reads.

        A message may quote a value (a URL, a header), so the whole lines are
        left to `relay reload` and the dashboard, behind the admin token.
        """
        keys = list(dict.fromkeys(line.split(": ", 1)[0] for line in self.errors))
        return (f"config rejected: {', '.join(keys)}; the relay runs on the previous config "
                "(`relay reload` or the dashboard says why)")


@dataclass
class RelayState:
    """What every route needs, reached as `request.app.state.relay`."""

    config: Config
    storage: Storage
    dispatcher: Dispatcher
    registry: Registry
    clock: Callable[[], float] = field(default=time.time)
    telemetry: Telemetry | None = field(default=None, kw_only=True)  # None: tracing is off
    started_at: float = field(default_factory=time.time)
    metrics: RelayMetrics = field(default_factory=RelayMetrics)
    host_rule: HostRule = field(init=False)
    router: Router = field(init=False)
    notices: Notices = field(init=False)
    last_reload: ReloadOutcome | None = None
    api_sources: tuple[SourceConfig, ...] = ()  # made through the admin API, by name
    _expiry: asyncio.TimerHandle | None = field(default=None, init=False, repr=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False, repr=False)
    _holds_due: set[str] = field(default_factory=set, init=False, repr=False)
    _holds_all: bool = field(default=False, init=False, repr=False)
    _holds_task: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.host_rule = host_rule(self.config)
        self.router = Router(self.registry)
        self.notices = Notices(self.config, self.storage, self.dispatcher.notify, self.clock,
                               lambda name: self.registry.get(name))

    # -- start and reload ----------------------------------------------------------------

    async def load_endpoints(self) -> None:
        """Read the API's endpoints from the store (at start): before any lane runs."""
        self.registry.load(await self.storage.api_endpoints())
        self.router = Router(self.registry)
        self._schedule_expiry()
        await self.load_sources()

    @property
    def sources(self) -> tuple[SourceConfig, ...]:
        """Every source: relay.yaml's, then the API's."""
        return self.config.sources + self.api_sources

    async def load_sources(self) -> None:
        """Read the API's sources from the store (at start and on each reload).

        A name relay.yaml also uses is relay.yaml's: the API's row is left unused.
        """
        sources = []
        for row in await self.storage.api_sources():
            source = open_source(self.registry.box, row)
            if source is not None and self.config.source_named(source.name) is None:
                sources.append(source)
        self.api_sources = tuple(sources)

    async def reload(self) -> bool:
        """Re-read relay.yaml (SIGHUP); keep the running config if the new one is invalid.

        In-flight attempts finish with the config they started with; new attempts
        use the new endpoints, secrets and limits. `listen` and `storage` need a
        restart, so changes to them are reported and ignored. The outcome is
        kept in `last_reload` for /readyz, the dashboard and `relay reload`.
        """
        if self.config.source is None:
            log.error("reload_rejected", reason="the config was not loaded from a file")
            self.last_reload = ReloadOutcome(self.clock(), ("the config was not loaded from "
                                                            "a file",))
            return False
        try:
            new = load_config(self.config.source)
        except ConfigError as exc:
            log.error("reload_rejected", path=str(self.config.source), errors=exc.errors)
            self.last_reload = ReloadOutcome(self.clock(), tuple(exc.errors))
            self.metrics.reloads.labels("rejected").inc()
            self.metrics.config_rejected.set(1)
            return False
        old = self.config
        fixed = {"listen": old.listen, "storage": old.storage, "secrets_key": old.secrets_key}
        ignored = [key for key, value in fixed.items() if getattr(new, key) != value]
        if ignored:
            log.warning("reload_needs_restart", keys=ignored)
        self.config = new.model_copy(update=fixed)
        self.host_rule = host_rule(self.config)
        self.registry = self.registry.with_config(self.config)
        self.router = Router(self.registry)
        await self.load_sources()  # what other replicas made through the API, too
        await self.storage.sync_endpoints(self.registry.active(), self.clock())
        self.dispatcher.reload(self.config, await self.storage.held_endpoints(),
                               list(self.registry))
        self.notices.reconfigure(self.config)
        self.notices.reloaded(old.endpoints, self.config.endpoints)
        self.last_reload = ReloadOutcome(self.clock())
        self.metrics.reloads.labels("applied").inc()
        self.metrics.config_rejected.set(0)
        log.info("config_reloaded", path=str(self.config.source), endpoints=len(self.registry))
        return True

    # -- endpoints changed at run time ---------------------------------------------------

    async def endpoint_changed(self, endpoint: ApiEndpoint) -> None:
        """An API endpoint was created or changed here: route and deliver by it now."""
        self.registry.put(endpoint)
        await self._apply([endpoint.row.name])

    async def endpoint_deleted(self, name: str) -> None:
        """An API endpoint was deleted here: no routing to it, its lane ends."""
        self.registry.drop(name)
        self.router.remove(name)
        self.dispatcher.remove(name)
        self.notices.forget(name)
        self._schedule_expiry()

    def heard_of_sources(self) -> None:
        """Another replica changed the API's sources (NOTIFY): read them again."""
        task = asyncio.get_running_loop().create_task(self._refresh_sources(),
                                                      name="sources-refresh")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refresh_sources(self) -> None:
        try:
            await self.load_sources()
        except StorageError as exc:
            log.warning("sources_refresh_failed", error=str(exc))

    def heard_of_change(self, name: str) -> None:
        """Another replica changed an API endpoint (NOTIFY): load that one from the store."""
        self._spawn(self._refresh(name), f"endpoint-refresh:{name}")

    def heard_of_holds(self, names: Sequence[str] | None) -> None:
        """Some relay paused, resumed or disabled these endpoints (None: maybe any).

        Announcements arriving while a re-read runs are gathered into the next
        one, so a burst of them costs one query, not one each.
        """
        if names is None:
            self._holds_all = True
        else:
            self._holds_due.update(names)
        if self._holds_task is None or self._holds_task.done():
            self._holds_task = self._spawn(self._apply_holds(), "hold-refresh")

    async def _apply_holds(self) -> None:
        while self._holds_all or self._holds_due:
            every, names = self._holds_all, self._holds_due
            self._holds_all, self._holds_due = False, set()
            try:
                held = await self.storage.held_endpoints()
            except StorageError as exc:
                log.warning("hold_refresh_failed", error=str(exc), retry_in_s=1.0)
                self._holds_all = self._holds_all or every
                self._holds_due.update(names)
                await asyncio.sleep(1.0)
                continue
            endpoints = (list(self.registry) if every else
                         [e for name in names if (e := self.registry.get(name)) is not None])
            for endpoint in endpoints:
                self.dispatcher.apply_hold(endpoint, held.get(endpoint.name))

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _refresh(self, name: str) -> None:
        try:
            row = await self.storage.api_endpoint(name)
        except StorageError as exc:
            log.warning("endpoint_refresh_failed", endpoint=name, error=str(exc))
            return
        if row is None:
            if self.registry.api(name) is not None:
                await self.endpoint_deleted(name)
            return
        current = self.registry.api(name)
        if current is not None and current.row == row:
            return  # our own change, heard back
        resolved = self.registry.resolve(row)
        if resolved is None:
            await self.endpoint_deleted(name)  # unreadable here: logged by resolve
            return
        await self.endpoint_changed(resolved)

    async def _apply(self, names: Iterable[str]) -> None:
        names = list(names)
        held = await self.storage.held_endpoints()
        for name in names:
            endpoint = self.registry.get(name)
            if endpoint is None:
                self.router.remove(name)
                continue
            self.router.upsert(endpoint)
            self.dispatcher.upsert(endpoint, held.get(name))
        await self.storage.sync_endpoints(self.registry.active(), self.clock(), only=names)
        self._schedule_expiry()

    def _schedule_expiry(self) -> None:
        """Rebuild the endpoints whose rotated-out secret expires, when it does."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        when = self.registry.next_expiry(self.clock())
        if when is None:
            return
        with contextlib.suppress(RuntimeError):  # no loop: nothing runs yet to expire
            loop = asyncio.get_running_loop()
            self._expiry = loop.call_later(max(when - self.clock(), 0.0) + 0.01,
                                           self._expire)

    def _expire(self) -> None:
        self._expiry = None
        rows = [a.row for name in [e.name for e in self.registry]
                if (a := self.registry.api(name)) is not None]
        changed = self.registry.load(rows)
        self._spawn(self._apply(changed), "secret-expiry")


def host_rule(config: Config) -> HostRule:
    return HostRule(config.listen_host, config.listen_port, config.admin.allowed_hosts)
