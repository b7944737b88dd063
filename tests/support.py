"""Real servers for tests: a scriptable webhook receiver and the relay itself.

Everything here listens on 127.0.0.1 and is stopped by the fixture that made it.

The behavioural tests run on either backend: with `RELAY_TEST_STORAGE=postgres`
a test's database path (`tmp_path / "relay.db"`) names a PostgreSQL schema of
its own instead of a file (`tests/postgres/pg.py`), and `db_rows` reads it
there. Tests that exercise SQLite itself are marked `sqlite_only`.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from relay.config import load_config
from relay.http.app import create_app
from relay.server import uvicorn_config
from relay.storage.base import Storage
from relay.storage.sqlite import SQLiteStorage

__all__ = [
    "ON_POSTGRES", "Received", "Receiver", "RelayProcess", "RelayThread", "db_execute",
    "db_rows", "free_port", "make_storage", "sqlite_only", "storage_url", "wait_until",
]

ROOT = Path(__file__).resolve().parent.parent
STORAGE = os.environ.get("RELAY_TEST_STORAGE", "sqlite")
if STORAGE not in ("sqlite", "postgres"):
    raise RuntimeError(f"RELAY_TEST_STORAGE must be sqlite or postgres, not {STORAGE!r}")
ON_POSTGRES = STORAGE == "postgres"
sqlite_only = pytest.mark.skipif(
    ON_POSTGRES, reason="exercises SQLite itself (file, lock or pragma); not a backend contract")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02,
               message: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)


# A reply is (status, headers, body), or one of the actions "reset" (close the
# connection without answering) and ("hang", seconds) (sleep, then answer 200).
Reply = tuple[int, dict[str, str], bytes] | str | tuple[str, float]
Responder = Callable[[int, Received], Reply]


class Receiver:
    """A threaded HTTP server that records every request and answers as scripted."""

    def __init__(self, responder: Responder | None = None) -> None:
        self.requests: list[Received] = []
        self.responder: Responder = responder or (lambda i, r: (200, {}, b"ok"))
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                request = Received(self.path, dict(self.headers.items()), body, time.time())
                with receiver._lock:
                    index = len(receiver.requests)
                    receiver.requests.append(request)
                    receiver.in_flight += 1
                    receiver.max_in_flight = max(receiver.max_in_flight, receiver.in_flight)
                try:
                    reply = receiver.responder(index, request)
                    if reply == "reset":
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                   b"\x01\x00\x00\x00\x00\x00\x00\x00")
                        self.close_connection = True
                        self.connection.close()
                        return
                    if isinstance(reply, tuple) and reply[0] == "hang":
                        time.sleep(float(reply[1]))
                        reply = (200, {}, b"late")
                    assert isinstance(reply, tuple)
                    status, headers, data = reply  # type: ignore[misc]
                    self.send_response(int(status))
                    for key, value in dict(headers).items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError, OSError):
                    pass
                finally:
                    with receiver._lock:
                        receiver.in_flight -= 1

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def bodies(self) -> list[bytes]:
        with self._lock:
            return [r.body for r in self.requests]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        wait_until(lambda: len(self.requests) >= count, timeout,
                   message=f"{count} requests at the receiver (got {len(self.requests)})")
        with self._lock:
            return list(self.requests)


def storage_url(db: Path) -> str:
    """The `storage:` URL for a test database: the file, or its PostgreSQL schema."""
    if not ON_POSTGRES:
        return f"sqlite:///{db}"
    from tests.postgres.pg import schema_for, schema_url

    return schema_url(schema_for(db))


def make_storage(db: Path) -> Storage:
    """A storage object for tests that drive the store directly, on the selected backend."""
    if ON_POSTGRES:
        from relay.storage.postgres import PostgresStorage

        return PostgresStorage(storage_url(db))
    return SQLiteStorage(db)


def db_rows(db_path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the relay's database the way an operator's sqlite3 (or psql) shell would.

    SQL with `?` placeholders runs on both backends; keep to what both dialects share.
    """
    if ON_POSTGRES:
        from tests.postgres.pg import client, schema_for

        return client().fetch(sql, params, schema_for(db_path))
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        return list(conn.execute(sql, params).fetchall())
    finally:
        conn.close()


def db_execute(db_path: Path, sql: str, params: tuple[Any, ...] = ()) -> None:
    """Write to a running relay's database, as a test that back-dates rows must."""
    if ON_POSTGRES:
        db_rows(db_path, sql, params)
        return
    conn = sqlite3.connect(db_path, timeout=10)
    try:
        with conn:
            conn.execute(sql, params)
    finally:
        conn.close()


# On PostgreSQL the API's endpoints need a secrets_key (SQLite makes a key file).
TEST_SECRETS_KEY = "eEtCmS3zWDnT2Y8uYq3oWm8n4HfBh8cQk0mWJm9lQ9E="


def base_config(port: int, db: Path, endpoints: str, extra: str = "",
                log_level: str = "warning", storage: str | None = None) -> str:
    key = (f"secrets_key: {TEST_SECRETS_KEY}\n"
           if (storage or storage_url(db)).startswith("postgres") else "")
    return (
        f"listen: 127.0.0.1:{port}\n"
        f"storage: {storage or storage_url(db)}\n"
        f"{key}"
        f"logging: {{level: {log_level}, format: json}}\n"
        "delivery:\n"
        "  timeout: 5s\n"
        "  retry_schedule: [100ms, 200ms]\n"
        "  jitter: 0\n"
        "  allow_networks: [127.0.0.0/8]\n"
        "  shutdown_grace: 5s\n"
        f"{extra}"
        f"endpoints:\n{endpoints}"
    )


@dataclass
class RelayThread:
    """The relay app served by uvicorn in a thread of the test process."""

    config_path: Path
    port: int
    db: Path
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None
    telemetry: Any = None  # a relay.telemetry.Telemetry, for tests of tracing
    url: str = field(init=False)

    def __post_init__(self) -> None:
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> RelayThread:
        config = load_config(self.config_path)
        self.app = create_app(config, telemetry=self.telemetry)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        served = uvicorn_config(self.app, config, loop="asyncio")
        if os.environ.get("RELAY_TEST_H11"):
            served.http = "h11"
        self.server = uvicorn.Server(served)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]},
                                       daemon=True)
        self.thread.start()
        wait_until(lambda: self.server is not None and self.server.started, 10,
                   message="the relay to start")
        return self

    def stop(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(timeout=30)
            assert not self.thread.is_alive(), "the relay did not stop"

    @property
    def state(self) -> Any:
        return self.app.state.relay

    def post(self, body: bytes | str, headers: dict[str, str] | None = None,
             path: str = "/v1/events") -> httpx.Response:
        data = body.encode() if isinstance(body, str) else body
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        return httpx.post(self.url + path, content=data, headers=all_headers, timeout=30)

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return db_rows(self.db, sql, params)

    def statuses(self) -> dict[str, int]:
        return dict(self.rows("SELECT status, count(*) FROM deliveries GROUP BY status"))

    def wait_statuses(self, expected: dict[str, int], timeout: float = 10.0) -> None:
        wait_until(lambda: self.statuses() == expected, timeout,
                   message=f"delivery states {expected} (now {self.statuses()})")


class RelayProcess:
    """`relay run` as a real subprocess, for crashes and signals."""

    def __init__(self, config_path: Path, port: int, log_path: Path) -> None:
        self.config_path = config_path
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> RelayProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 (the child keeps it)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "relay", "run", "-c", str(self.config_path)],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
        )
        log.close()

        def healthy() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"the relay exited with {self.proc.returncode}:\n"
                                     + self.log_path.read_text(errors="replace")[-3000:])
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
            return False

        wait_until(healthy, timeout, interval=0.05, message="the relay process to answer")
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def post(self, payload: dict[str, Any], headers: dict[str, str] | None = None
             ) -> httpx.Response:
        return httpx.post(self.url + "/v1/events", content=json.dumps(payload).encode(),
                          headers={"Content-Type": "application/json", **(headers or {})},
                          timeout=10)


@contextlib.contextmanager
def running(*things: Any) -> Iterator[None]:
    try:
        yield
    finally:
        for thing in reversed(things):
            with contextlib.suppress(Exception):
                thing.stop()
