"""`relay run`: uvicorn around the app, with the relay's own signal handling.

uvicorn re-raises SIGTERM after a graceful shutdown, so the process would end
"killed by SIGTERM" even when every attempt finished cleanly; a supervisor
should see exit 0 instead. `RelayServer` keeps uvicorn's graceful shutdown
and handles SIGHUP (reload relay.yaml) on the same event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import Generator

import structlog
import uvicorn
from starlette.applications import Starlette

from relay.config import Config
from relay.exceptions import RelayError
from relay.gc_tuning import tune_gc
from relay.http.app import create_app, load_telemetry
from relay.http.protocol import bounded_protocol
from relay.http.state import RelayState
from relay.logging import configure_logging

__all__ = ["RelayServer", "serve", "uvicorn_config"]

log = structlog.get_logger("relay")


class RelayServer(uvicorn.Server):
    """A uvicorn server that exits 0 on SIGTERM/SIGINT and reloads on SIGHUP."""

    def __init__(self, config: uvicorn.Config, state: RelayState) -> None:
        super().__init__(config)
        self.relay_state = state

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        loop = asyncio.get_running_loop()
        handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        try:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._stop, sig)
            loop.add_signal_handler(signal.SIGHUP, self._reload)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            yield
            return
        try:
            yield
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)

    def _stop(self, sig: int) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        log.info("shutdown_requested", signal=signal.Signals(sig).name)
        self.should_exit = True

    def _reload(self) -> None:
        asyncio.get_running_loop().create_task(self.relay_state.reload(), name="reload")


def _check_lock(config: Config) -> None:
    """Fail fast, with a clear message, when another relay owns the SQLite file.

    SQLite only: relays on PostgreSQL share the database by design (row leases).
    """
    path = config.sqlite_path
    if path is None:
        return
    import fcntl

    lock_path = path.with_name(path.name + ".lock")
    if not lock_path.exists():
        return
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise RelayError(
                f"{path} is in use by another relay process (pid {handle.read().strip()}); "
                "stop it first, or give this relay its own `storage:`"
            ) from None
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def uvicorn_config(app: Starlette, config: Config, *, loop: str | None = None) -> uvicorn.Config:
    """How the relay's app is served: the settings `relay run` uses (and the tests)."""
    state: RelayState = app.state.relay
    return uvicorn.Config(
        app,
        host=config.listen_host,
        port=config.listen_port,
        loop=loop or ("uvloop" if sys.platform != "win32" else "asyncio"),
        http=bounded_protocol(lambda: state.config.limits),
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=int(config.delivery.shutdown_grace_s) or None,
        timeout_keep_alive=15,
        backlog=4096,
    )


def serve(config: Config, sock: socket.socket | None = None) -> int:
    """Run until SIGTERM or SIGINT; return the process exit code."""
    telemetry = load_telemetry(config)  # a ConfigError if the [otel] extra is missing
    configure_logging(config.logging.level, config.logging.format,
                      tracing=telemetry is not None)
    try:
        _check_lock(config)
    except RelayError as exc:
        log.error("startup_failed", error=str(exc))
        print(f"relay: {exc}", file=sys.stderr)
        return 1
    app = create_app(config, telemetry=telemetry)
    state: RelayState = app.state.relay
    server = RelayServer(uvicorn_config(app, config), state)
    tune_gc()
    server.run(sockets=[sock] if sock is not None else None)
    if not server.started:
        return 1
    return 0
