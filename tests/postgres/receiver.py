"""A fast webhook receiver for the multi-relay tests: asyncio, keep-alive, in a thread.

The threaded `tests.support.Receiver` is right for a handful of requests; the
scale-out tests send tens of thousands from three relay processes, so this one
parses HTTP/1.1 on an event loop of its own and only records what the tests
count: per path, each request's `webhook-id`, the `n` of its body, and the
highest number of requests in flight at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

__all__ = ["FastReceiver"]


@dataclass
class PathLog:
    """What one endpoint (one path) received."""

    ids: list[str] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    times: list[float] = field(default_factory=list)


class FastReceiver:
    """Answers 200 to every POST, after `delay_s` for paths listed in `delays`."""

    def __init__(self, delays: dict[str, float] | None = None) -> None:
        self.delays = delays or {}
        self.paths: dict[str, PathLog] = defaultdict(PathLog)
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="fast-receiver")
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[tuple[asyncio.Task[None], asyncio.StreamWriter]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FastReceiver:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for task, writer in list(self._connections):
                writer.close()
                task.cancel()
            await asyncio.gather(*(task for task, _ in self._connections),
                                 return_exceptions=True)
            if self._server is not None:
                await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def serve() -> None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0,
                                                      backlog=1024)
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()

        self._loop.run_until_complete(serve())
        self._loop.run_forever()

    def total(self) -> int:
        with self._lock:
            return sum(len(log.ids) for log in self.paths.values())

    def log(self, path: str) -> PathLog:
        with self._lock:
            return self.paths[path]

    def duplicates(self) -> dict[str, int]:
        """webhook-ids received more than once at the same path, with their counts."""
        with self._lock:
            seen: Counter[tuple[str, str]] = Counter(
                (path, i) for path, log in self.paths.items() for i in log.ids)
        return {f"{path} {i}": n for (path, i), n in seen.items() if n > 1}

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        connection = (task, writer)
        self._connections.add(connection)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        key, value = line.split(":", 1)
                        headers[key.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                with self._lock:
                    log = self.paths[path]
                    log.in_flight += 1
                    log.max_in_flight = max(log.max_in_flight, log.in_flight)
                try:
                    delay = self.delays.get(path, 0.0)
                    if delay:
                        await asyncio.sleep(delay)
                    number = -1
                    with contextlib.suppress(ValueError, AttributeError):
                        number = int(json.loads(body).get("n", -1))
                    with self._lock:
                        log.ids.append(headers.get("webhook-id", ""))
                        log.numbers.append(number)
                        log.times.append(time.monotonic())
                finally:
                    with self._lock:
                        log.in_flight -= 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                             b"Content-Type: text/plain\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError,
                IndexError, asyncio.CancelledError):
            pass
        finally:
            self._connections.discard(connection)
            writer.close()
