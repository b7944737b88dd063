"""The Starlette application and its lifespan.

The lifespan owns everything with a life cycle: it opens the store, starts the
delivery engine and the HTTP sender, and on shutdown (uvicorn has stopped
accepting requests and finished the open ones) stops delivery within the grace
period before closing the store, so that nothing is left half-done.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from relay import __version__
from relay.config import Config, load_config, redact_url
from relay.delivery.aiohttp_sender import AiohttpSender
from relay.delivery.sender import Sender
from relay.delivery.worker import Dispatcher
from relay.exceptions import ConfigError, StorageError
from relay.http.admin import admin_routes
from relay.http.auth import HostRule
from relay.http.dashboard import dashboard_routes
from relay.http.ingest import IngestEndpoint
from relay.http.problems import Problem, handle_crash, handle_http_exception, handle_problem
from relay.metrics import RelayMetrics
from relay.retention import Retention
from relay.routing import Router
from relay.storage import Storage, create_storage

__all__ = ["RelayState", "create_app"]

log = structlog.get_logger("relay")


@dataclass
class RelayState:
    """What every route needs, reached as `request.app.state.relay`."""

    config: Config
    storage: Storage
    dispatcher: Dispatcher
    router: Router
    clock: Callable[[], float] = field(default=time.time)
    started_at: float = field(default_factory=time.time)
    metrics: RelayMetrics = field(default_factory=RelayMetrics)
    host_rule: HostRule = field(init=False)

    def __post_init__(self) -> None:
        self.host_rule = host_rule(self.config)

    async def reload(self) -> bool:
        """Re-read relay.yaml (SIGHUP); keep the running config if the new one is invalid.

        In-flight attempts finish with the config they started with; new attempts
        use the new endpoints, secrets and limits. `listen` and `storage` need a
        restart, so changes to them are reported and ignored.
        """
        if self.config.source is None:
            log.error("reload_rejected", reason="the config was not loaded from a file")
            return False
        try:
            new = load_config(self.config.source)
        except ConfigError as exc:
            log.error("reload_rejected", path=str(self.config.source), errors=exc.errors)
            return False
        old = self.config
        fixed = {"listen": old.listen, "storage": old.storage}
        ignored = [key for key, value in fixed.items() if getattr(new, key) != value]
        if ignored:
            log.warning("reload_needs_restart", keys=ignored)
        self.config = new.model_copy(update=fixed)
        self.host_rule = host_rule(self.config)
        self.router = Router(self.config.endpoints)
        await self.storage.sync_endpoints(active_endpoints(self.config), self.clock())
        self.dispatcher.reload(self.config, await self.storage.held_endpoints())
        log.info("config_reloaded", path=str(self.config.source),
                 endpoints=len(self.config.endpoints))
        return True


def host_rule(config: Config) -> HostRule:
    return HostRule(config.listen_host, config.listen_port, config.admin.allowed_hosts)


def active_endpoints(config: Config) -> list[str]:
    """The endpoints deliveries may go to: configured and enabled."""
    return [e.name for e in config.endpoints if e.enabled]


async def healthz(request: Request) -> Response:
    """Liveness: the process answers. Cheap enough for a container HEALTHCHECK."""
    return JSONResponse({"status": "ok", "version": __version__})


async def readyz(request: Request) -> Response:
    """Readiness: the store takes writes and the delivery lanes are running."""
    state: RelayState = request.app.state.relay
    problems = []
    try:
        await state.storage.check_writable()
    except StorageError as exc:
        problems.append(f"storage: {exc}")
    if not state.dispatcher.alive:
        problems.append("delivery: a worker has stopped")
    if problems:
        raise Problem(503, "not-ready", "; ".join(problems), headers={"Retry-After": "5"})
    return JSONResponse({"status": "ready"})


class RelayApp(Starlette):
    """Starlette, with ingest answered before the middleware stack and the router.

    Ingest is the one route whose cost per request sets the relay's
    throughput; Starlette's layers (request wrappers, exception middleware,
    routing) were a third of it. Every other route goes through Starlette.
    """

    ingest_paths: dict[str, IngestEndpoint]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            handler = self.ingest_paths.get(scope["path"])
            if handler is not None:
                scope["app"] = self
                await handler(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(
    config: Config,
    *,
    storage: Storage | None = None,
    sender: Sender | None = None,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """Build the relay's ASGI app; nothing is opened until the lifespan starts."""
    storage = storage if storage is not None else create_storage(config)
    sender = sender if sender is not None else AiohttpSender.from_config(config)
    dispatcher = Dispatcher(storage, sender, config, clock=clock)
    storage.set_wakeup(dispatcher.notify)  # other relays sharing the store wake our lanes
    state = RelayState(config, storage, dispatcher, Router(config.endpoints), clock)
    dispatcher.attempt_listeners.append(state.metrics.observe_attempt)
    retention = Retention(storage, lambda: state.config.retention_s, clock=clock)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await storage.open()
        purger: asyncio.Task[None] | None = None
        try:
            await storage.sync_endpoints(active_endpoints(config), clock())
            await dispatcher.start(await storage.held_endpoints())
            purger = asyncio.create_task(retention.run(), name="retention")
            log.info("relay_started", version=__version__, endpoints=len(config.endpoints),
                     storage=redact_url(config.storage))
            yield
        finally:
            log.info("relay_stopping", grace_s=config.delivery.shutdown_grace_s)
            if purger is not None:
                retention.stop()  # returns between two batches
                await asyncio.wait([purger], timeout=5.0)
                purger.cancel()
                await asyncio.gather(purger, return_exceptions=True)
            await dispatcher.stop(config.delivery.shutdown_grace_s)
            await sender.aclose()
            await storage.close()
            log.info("relay_stopped")

    app = RelayApp(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            *admin_routes(),
            *dashboard_routes(),
        ],
        exception_handlers={Problem: handle_problem, HTTPException: handle_http_exception,
                            Exception: handle_crash},
        lifespan=lifespan,
    )
    app.state.relay = state
    app.ingest_paths = {
        "/v1/events": IngestEndpoint(state, batch=False),
        "/v1/events/batch": IngestEndpoint(state, batch=True),
    }
    return app
