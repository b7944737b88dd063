"""LISTEN/NOTIFY: wake this relay's lanes when another relay made work due.

Transactions that make work due (ingest, a released claim, a reaped lease,
an operator's retry or resume) send `NOTIFY <channel>, 'endpoint,endpoint'`;
PostgreSQL delivers it at commit to every relay listening on the same
database. One connection per relay, outside the pool, does the listening and
calls the wake-up callback with the names.

Notifying is not free: PostgreSQL serialises the commits of all transactions
that notify, WAL flush included. So recorded attempts never notify (a relay
waiting on another's slot re-checks within a quarter second instead), and
ingest notifies an endpoint at most every `INGEST_NOTIFY_EVERY_S` per relay
(its own lanes are woken in-process at once).

Notifications are an optimisation, never the only path: lanes still re-check
the store at their next due time and at least every minute. While the
connection is lost, `connected` is false (the storage then has the lanes poll
every few seconds) and the listener reconnects with backoff; once back it
wakes every known endpoint and has every hold re-read, since notifications
sent meanwhile are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from typing import Any

import asyncpg
import structlog

__all__ = ["ENDPOINT_CHANGED", "HOLD_CHANGED", "NOTIFY_CHUNK", "SOURCE_CHANGED", "WakeupListener",
           "payloads"]

log = structlog.get_logger("relay.storage")

# A notification's name for "the API endpoint `name` changed": `@name` (`@` is in no
# endpoint name, so it cannot be mistaken for an endpoint with work due).
ENDPOINT_CHANGED = "@"
# `!name`: endpoint `name` was paused, resumed or disabled, on whichever relay: each
# relay re-reads its hold, so a lane another relay resumed does not stay idle.
HOLD_CHANGED = "!"
# `^name`: the API source `name` was made, replaced or deleted: each relay re-reads them.
SOURCE_CHANGED = "^"
NOTIFY_CHUNK = 7000  # bytes of names per notification (PostgreSQL's limit is 8000)
PING_INTERVAL_S = 15.0  # a silent connection is checked this often (half-open TCP)
MAX_BACKOFF_S = 30.0


def payloads(endpoints: Iterable[str]) -> list[str]:
    """`name,name` notification payloads, each under PostgreSQL's size limit."""
    chunks: list[str] = []
    current = ""
    for name in sorted(set(endpoints)):
        if current and len(current) + 1 + len(name) > NOTIFY_CHUNK:
            chunks.append(current)
            current = ""
        current = f"{current},{name}" if current else name
    if current:
        chunks.append(current)
    return chunks


class WakeupListener:
    """A dedicated LISTEN connection, kept alive and reconnected with backoff."""

    def __init__(
        self,
        connect: Callable[[], Any],
        channel: str,
        on_wakeup: Callable[[list[str]], None],
        on_reconnect: Callable[[], None],
    ) -> None:
        self._connect = connect  # returns an awaitable asyncpg connection
        self.channel = channel
        self._on_wakeup = on_wakeup
        self._on_reconnect = on_reconnect
        self._task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self.connected = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pg-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.connected = False

    def _notified(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        endpoints = [name for name in payload.split(",") if name]
        if endpoints:
            self._on_wakeup(endpoints)

    async def _run(self) -> None:
        backoff = 0.5
        first = True
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await self._connect()
                self._lost.clear()
                conn.add_termination_listener(lambda _conn: self._lost.set())
                await conn.add_listener(self.channel, self._notified)
                self.connected = True
                if not first:
                    log.info("listen_reconnected", channel=self.channel)
                    self._on_reconnect()
                first = False
                backoff = 0.5
                await self._watch(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.connected or first:
                    log.warning("listen_connection_lost", channel=self.channel,
                                error=str(exc) or type(exc).__name__, retry_in_s=backoff)
                first = False
            finally:
                self.connected = False
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), 2.0)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _watch(self, conn: asyncpg.Connection) -> None:
        """Return when the connection is gone; a ping finds a half-open one."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PING_INTERVAL_S):
                    await self._lost.wait()
            if self._lost.is_set() or conn.is_closed():
                raise ConnectionError("the LISTEN connection was closed")
            await asyncio.wait_for(conn.execute("SELECT 1"), PING_INTERVAL_S)
