"""The Starlette application and its lifespan.

The lifespan owns everything with a life cycle: it opens the store, starts the
delivery engine and the HTTP sender, and on shutdown (uvicorn has stopped
accepting requests and finished the open ones) stops delivery within the grace
period before closing the store, so that nothing is left half-done.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from relay import __version__
from relay.config import Config, redact_url
from relay.delivery.aiohttp_sender import AiohttpSender
from relay.delivery.dispatcher import Dispatcher
from relay.delivery.sender import Sender
from relay.exceptions import ConfigError, StorageError
from relay.gc_tuning import freeze_startup
from relay.http.admin import admin_routes
from relay.http.dashboard import dashboard_routes
from relay.http.ingest import IngestEndpoint
from relay.http.portal import portal_routes
from relay.http.problems import Problem, handle_crash, handle_http_exception, handle_problem
from relay.http.sources import SourceEndpoint, SourceRoutes
from relay.http.state import RelayState
from relay.registry import Registry
from relay.retention import Retention
from relay.secrets_at_rest import SecretBox, key_from_text
from relay.storage import Storage, create_storage
from relay.timefmt import iso

if TYPE_CHECKING:  # imported only when tracing is on: see load_telemetry
    from relay.telemetry import Telemetry

__all__ = ["check_telemetry", "create_app", "load_telemetry"]

OTEL_INSTALL = "pip install 'license-webhook-relay[otel]'"

log = structlog.get_logger("relay")


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
    answer: dict[str, object] = {"status": "ready"}
    reload = state.last_reload
    if reload is not None:
        # The errors themselves are for operators (`relay reload`, the dashboard): this
        # route answers anyone who can reach the listener.
        config: dict[str, object] = {"reloaded_at": iso(reload.at),
                                     "rejected": not reload.applied,
                                     "errors": len(reload.errors)}
        if not reload.applied:
            config["detail"] = reload.summary()
        answer["config"] = config
    return JSONResponse(answer)


class RelayApp(Starlette):
    """Starlette, with ingest answered before the middleware stack and the router.

    Ingest is the one route whose cost per request sets the relay's
    throughput; Starlette's layers (request wrappers, exception middleware,
    routing) were a third of it. Every other route goes through Starlette.
    """

    ingest_paths: dict[str, IngestEndpoint]
    source_paths: SourceRoutes
    telemetry: Telemetry | None = None  # tracing: a span around each ingest request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            door: IngestEndpoint | SourceEndpoint | None = self.ingest_paths.get(scope["path"])
            if door is not None:
                # GET /v1/events is the admin API's event list; ingest answers the rest.
                if scope["method"] in ("GET", "HEAD"):
                    door = None
            else:
                door = self.source_paths.get(scope["path"])  # only after ingest's own paths
                # /v1/sources/{name} is also the admin API's: only POST is the platform's.
                if door is not None and scope["method"] != "POST" and scope["path"].startswith(
                        "/v1/sources/"):
                    door = None
            if door is not None:
                scope["app"] = self
                telemetry = self.telemetry
                if telemetry is None:
                    await door(scope, receive, send)
                    return
                span = telemetry.ingest(scope["path"], scope["headers"])
                status: int | None = None
                try:
                    status = await door(scope, receive, send, span)
                finally:
                    span.end(status)
                return
        await super().__call__(scope, receive, send)


def secret_box(config: Config) -> SecretBox | None:
    """What seals API endpoints' secrets: `secrets_key`, else (SQLite) a key file beside it.

    PostgreSQL is shared by replicas on other hosts, so a file on one of them
    would not do: relay.yaml with postgresql:// storage and no `secrets_key` is
    refused (`relay check`, `relay run`). A `Config` built some other way may
    still lack one; then endpoints made through the API are refused (503).
    """
    if config.secrets_key is not None:
        return SecretBox(key_from_text(config.secrets_key))
    path = config.sqlite_path
    if path is None:
        log.warning("secrets_key_missing", hint="set secrets_key to manage endpoints through "
                    "the API on PostgreSQL")
        return None
    return SecretBox.from_file(path.with_name(path.name + ".key"))


def load_telemetry(config: Config, environ: Mapping[str, str] | None = None) -> Telemetry | None:
    """The relay's tracer when relay.yaml or the OTEL_EXPORTER_OTLP_* variables ask for one.

    OpenTelemetry is imported here and nowhere else: with tracing off it is
    never loaded, and the `[otel]` extra need not be installed.
    """
    if not check_telemetry(config, environ):
        return None
    from relay.telemetry import Telemetry

    settings = config.telemetry
    return Telemetry(endpoint=settings.traces_url(), service_name=settings.service_name)


def check_telemetry(config: Config, environ: Mapping[str, str] | None = None) -> bool:
    """Whether tracing is asked for; a `ConfigError` naming the key if it cannot be had.

    `relay check` calls this too, so a missing `[otel]` extra is found before a deploy.
    """
    settings = config.telemetry
    if not settings.enabled(os.environ if environ is None else environ):
        return False
    key = ("telemetry.otlp_endpoint" if settings.otlp_endpoint is not None
           else "OTEL_EXPORTER_OTLP_ENDPOINT")
    try:
        import relay.telemetry  # noqa: F401
    except ImportError as exc:
        raise ConfigError([f"{key}: tracing needs OpenTelemetry, which is not installed "
                           f"({exc.name or exc}); run `{OTEL_INSTALL}`, or unset {key}"]) from None
    return True


def create_app(
    config: Config,
    *,
    storage: Storage | None = None,
    sender: Sender | None = None,
    clock: Callable[[], float] = time.time,
    telemetry: Telemetry | None = None,
) -> Starlette:
    """Build the relay's ASGI app; nothing is opened until the lifespan starts.

    `telemetry` is the tracer (`load_telemetry`); None: no tracing. Its spans
    are flushed when the lifespan ends.
    """
    storage = storage if storage is not None else create_storage(config)
    sender = sender if sender is not None else AiohttpSender.from_config(config)
    dispatcher = Dispatcher(storage, sender, config, clock=clock)
    dispatcher.telemetry = telemetry
    storage.set_wakeup(dispatcher.notify)  # other relays sharing the store wake our lanes
    state = RelayState(config, storage, dispatcher, Registry(config, secret_box(config), clock),
                       clock, telemetry=telemetry)
    storage.set_endpoint_listener(state.heard_of_change)
    storage.set_source_listener(state.heard_of_sources)  # API sources made on another relay
    storage.set_hold_listener(state.heard_of_holds)  # a pause or resume on another relay
    retention = Retention(storage, lambda: state.config.retention_s, clock=clock)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # The metrics count every attempt stored from the start to the end of the stop.
        with dispatcher.on_attempt(state.metrics.observe_attempt), \
                dispatcher.on_stored(state.notices.stored):
            await storage.open()
            purger: asyncio.Task[None] | None = None
            try:
                await state.load_endpoints()
                await storage.sync_endpoints(state.registry.active(), clock())
                await dispatcher.start(await storage.held_endpoints(), list(state.registry))
                freeze_startup()
                purger = asyncio.create_task(retention.run(), name="retention")
                log.info("relay_started", version=__version__, endpoints=len(state.registry),
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
                await state.notices.aclose()
                await sender.aclose()
                await storage.close()
                if telemetry is not None:  # the attempts' spans ended with the dispatcher
                    await asyncio.to_thread(telemetry.shutdown)
                log.info("relay_stopped")

    app = RelayApp(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            *admin_routes(),
            *dashboard_routes(),
            *portal_routes(),
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
    app.source_paths = SourceRoutes(state)
    app.telemetry = telemetry
    return app
