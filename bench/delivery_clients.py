"""HTTP clients for the delivery hot path, side by side (issue 7's client table).

Each client POSTs the same 1 KiB JSON body to one receiver, a tiny ASGI app on
uvicorn + httptools in another process on 127.0.0.1, at concurrency 1, 16 and
64, for a fixed time. Measured in this process: requests/s and client CPU per
request (`time.process_time()`, so the receiver's CPU is not counted).

Clients:

* `httpx AsyncClient`: the bare httpx loop.
* `HttpxSender`: our sender on httpx (relay.delivery.sender).
* `aiohttp ClientSession`: the bare aiohttp loop.
* `AiohttpSender`: our production sender, through its SSRF guard: the URL's
  hostname goes through `GuardedResolver` (over a fixed table, no DNS) and
  every connection through the guard's socket factory.

Runs are interleaved (every client once per repeat) so that noise on a shared
machine spreads over all of them; medians count, min and max show the spread.

    python -m bench.delivery_clients [--quick] [--loop uvloop|asyncio]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import importlib.util
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult

from relay.delivery.aiohttp_sender import AiohttpSender
from relay.delivery.sender import HttpxSender

__all__ = ["run"]

ROOT = Path(__file__).resolve().parent.parent
_HEAD = b'{"type": "license.created", "data": {"licenseKey": "ABCD-1234", "pad": "'
BODY = _HEAD + b"x" * (1024 - len(_HEAD) - 3) + b'"}}'  # exactly 1 KiB of JSON
CONCURRENCY = (1, 16, 64)
CLIENTS = ("httpx AsyncClient", "HttpxSender", "aiohttp ClientSession", "AiohttpSender")
HOSTNAME = "receiver.bench"  # resolved by a fixed table: the sender's guard runs, DNS does not

RECEIVER = """
import sys
import uvicorn

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})

# socket(fileno=...) keeps the real family (uvicorn's `fd=` assumes AF_UNIX, which
# skips TCP_NODELAY and adds 40 ms delayed-ACK stalls to every exchange).
sock = __import__("socket").socket(fileno=int(sys.argv[1]))
config = uvicorn.Config(app, http="httptools", loop=sys.argv[2], lifespan="off",
                        log_level="warning", access_log=False)
uvicorn.Server(config).run(sockets=[sock])
"""


@contextlib.contextmanager
def receiver() -> Iterator[int]:
    """Start the receiver on an inherited listening socket (no port race); yield its port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)
    sock.set_inheritable(True)
    port = int(sock.getsockname()[1])
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    proc = subprocess.Popen([sys.executable, "-c", RECEIVER, str(sock.fileno()), loop],
                            pass_fds=(sock.fileno(),), cwd=ROOT)
    sock.close()
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the receiver exited with {proc.returncode}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                conn.request("POST", "/", body=b"{}")
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class _FixedResolver(AbstractResolver):
    """`receiver.bench` -> 127.0.0.1, as /etc/hosts would, without editing it."""

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        return [ResolveResult(hostname=host, host="127.0.0.1", port=port,
                              family=socket.AF_INET, proto=0, flags=socket.AI_NUMERICHOST)]

    async def close(self) -> None:
        pass


Post = Callable[[], Awaitable[int]]


@contextlib.asynccontextmanager
async def client(name: str, port: int, concurrency: int) -> AsyncIterator[Post]:
    """One client, opened for a measurement; yields a `post()` returning the status."""
    url = f"http://127.0.0.1:{port}/hooks"
    headers = {"Content-Type": "application/json"}
    if name == "httpx AsyncClient":
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(limits=limits) as bare_httpx:
            async def post_httpx() -> int:
                response = await bare_httpx.post(url, content=BODY, headers=headers)
                return response.status_code
            yield post_httpx
    elif name == "aiohttp ClientSession":
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            async def post_aiohttp() -> int:
                async with session.post(url, data=BODY, headers=headers) as response:
                    await response.read()
                    return response.status
            yield post_aiohttp
    else:
        sender: HttpxSender | AiohttpSender
        if name == "HttpxSender":
            sender = HttpxSender(concurrency)
        else:
            sender = AiohttpSender(concurrency, allow_networks=["127.0.0.0/8"],
                                   resolver=_FixedResolver())
            url = f"http://{HOSTNAME}:{port}/hooks"
        try:
            async def post_sender() -> int:
                result = await sender.send(url, BODY, {}, 10.0, allow_http=True)
                if result.error:
                    raise RuntimeError(f"{name}: {result.error}")
                return result.status or 0
            yield post_sender
        finally:
            await sender.aclose()


async def measure(name: str, port: int, concurrency: int, seconds: float) -> tuple[float, float]:
    """(requests/s, client CPU ms per request) for one client at one concurrency."""
    async with client(name, port, concurrency) as post:
        # Warm up: open every connection and fill caches before the clock starts
        # (one round: httpx at 64 manages ~100 req/s, a longer warm-up costs seconds).
        await asyncio.gather(*(post() for _ in range(concurrency)))
        count = 0
        deadline = 0.0

        async def worker() -> None:
            nonlocal count
            while time.perf_counter() < deadline:
                status = await post()
                if status != 200:
                    raise RuntimeError(f"{name}: the receiver answered {status}")
                count += 1

        wall, cpu = time.perf_counter(), time.process_time()
        deadline = wall + seconds
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return count / wall, cpu / count * 1000


@dataclass
class Series:
    rps: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)


def _runner(loop: str) -> Callable[[Coroutine[Any, Any, tuple[float, float]]],
                                   tuple[float, float]]:
    if loop == "uvloop":
        import uvloop

        def run_uvloop(coro: Coroutine[Any, Any, tuple[float, float]]) -> tuple[float, float]:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                return runner.run(coro)
        return run_uvloop
    return asyncio.run


def _span(values: list[float], fmt: str) -> str:
    return (f"{format(statistics.median(values), fmt):>8} "
            f"({format(min(values), fmt)}-{format(max(values), fmt)})")


def run(quick: bool = False, loop: str | None = None) -> list[dict[str, object]]:
    """Measure every client at every concurrency; print the table; return the figures."""
    if loop is None:
        loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    seconds, repeats = (0.4, 3) if quick else (3.0, 5)
    runner = _runner(loop)
    series = {(name, c): Series() for name in CLIENTS for c in CONCURRENCY}
    with receiver() as port:
        for _ in range(repeats):
            for concurrency in CONCURRENCY:
                for name in CLIENTS:
                    rps, cpu_ms = runner(measure(name, port, concurrency, seconds))
                    series[name, concurrency].rps.append(rps)
                    series[name, concurrency].cpu_ms.append(cpu_ms)

    sniffio = "with" if importlib.util.find_spec("sniffio") else "without"
    print(f"\n== delivery clients: 1 KiB POSTs to uvicorn+httptools on 127.0.0.1, "
          f"client loop {loop}, {repeats} x {seconds:g}s each")
    print(f"   httpx {httpx.__version__} ({sniffio} sniffio), aiohttp {aiohttp.__version__}")
    print(f"   {'client':<24}{'conc':>5}   {'req/s median (min-max)':<28}"
          f"{'CPU ms/req median (min-max)'}")
    results: list[dict[str, object]] = []
    for name in CLIENTS:
        for concurrency in CONCURRENCY:
            s = series[name, concurrency]
            print(f"   {name:<24}{concurrency:>5}   {_span(s.rps, ',.0f'):<28}"
                  f"{_span(s.cpu_ms, '.3f')}")
            results.append({
                "benchmark": "delivery clients", "client": name, "concurrency": concurrency,
                "loop": loop, "unit": "req/s",
                "rps": round(statistics.median(s.rps), 1),
                "rps_min": round(min(s.rps), 1), "rps_max": round(max(s.rps), 1),
                "cpu_ms": round(statistics.median(s.cpu_ms), 4),
                "cpu_ms_min": round(min(s.cpu_ms), 4), "cpu_ms_max": round(max(s.cpu_ms), 4),
                "rps_all": s.rps, "cpu_ms_all": s.cpu_ms,
            })
    print("   ratios of medians (req/s; CPU per request):")
    for ours, bare in (("AiohttpSender", "aiohttp ClientSession"),
                       ("HttpxSender", "httpx AsyncClient"),
                       ("AiohttpSender", "HttpxSender")):
        for concurrency in CONCURRENCY:
            a, b = series[ours, concurrency], series[bare, concurrency]
            rate = statistics.median(a.rps) / statistics.median(b.rps)
            cpu = statistics.median(a.cpu_ms) / statistics.median(b.cpu_ms)
            print(f"   {ours} / {bare} at {concurrency:>2}: {rate:.2f}x req/s, "
                  f"{cpu:.2f}x CPU")
            results.append({
                "benchmark": f"delivery clients: {ours} / {bare}", "concurrency": concurrency,
                "ratio": round(rate, 3), "cpu_ratio": round(cpu, 3),
            })
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 x 0.4 s per cell (~25 s)")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"),
                        help="the client's event loop (default: uvloop, as `relay run`)")
    args = parser.parse_args()
    run(args.quick, args.loop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
