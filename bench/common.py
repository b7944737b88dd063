"""Shared pieces of the benchmarks: servers in subprocesses, wrk, and figures.

The machines these run on are shared and noisy, so every benchmark measures
its baseline in the same run, repeats both, and reports medians and the ratio.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 20.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(url, timeout=1)
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing answered at {url}")


@contextlib.contextmanager
def process(args: Sequence[str], ready_url: str | None = None,
            env: dict[str, str] | None = None, log: Path | None = None
            ) -> Iterator[subprocess.Popen[bytes]]:
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(list(args), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                            env={**os.environ, **(env or {})})
    try:
        if ready_url:
            wait_http(ready_url, proc=proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if log:
            out.close()  # type: ignore[union-attr]


def need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise SystemExit(f"bench: `{tool}` is needed: apt-get install {package}")
    return path


@dataclass
class Figures:
    name: str
    unit: str
    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def row(self) -> str:
        return (f"{self.name:<44} {self.median:>10,.1f} {self.unit:<10} "
                f"(min {min(self.values):,.1f}, max {max(self.values):,.1f}, "
                f"n={len(self.values)})")


def report(title: str, measured: Figures, baseline: Figures, target: str = "",
           higher_is_better: bool = True) -> dict[str, object]:
    ratio = measured.median / baseline.median if baseline.median else float("nan")
    print(f"\n== {title}")
    print("  " + measured.row())
    print("  " + baseline.row())
    print(f"  ratio {ratio:.2f}x the baseline{'  (target ' + target + ')' if target else ''}")
    return {"benchmark": title, "measured": measured.median, "baseline": baseline.median,
            "unit": measured.unit, "ratio": round(ratio, 3), "target": target,
            "measured_all": measured.values, "baseline_all": baseline.values}


_WRK_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
_WRK_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")


def wrk(url: str, script: Path, seconds: float, connections: int = 64, threads: int = 2
        ) -> float:
    """Requests per second that wrk measured; non-2xx answers are an error."""
    out = subprocess.run(
        [need("wrk", "wrk"), f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s",
         "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout
    bad = _WRK_NON2XX.search(out)
    if bad and int(bad.group(1)):
        raise RuntimeError(f"wrk saw {bad.group(1)} non-2xx answers:\n{out}")
    match = _WRK_RATE.search(out)
    if not match:
        raise RuntimeError(f"cannot read wrk output:\n{out}")
    return float(match.group(1))


def delivery_rate(db: Path, total: int, timeout_s: float = 600.0) -> float:
    """Deliveries/s of a relay now running on `db` (a fresh one), until `total` attempts.

    Counted from the attempts table's rowid (one seek per poll, where counting
    delivered rows would walk an index and steal CPU from the run). Attempts
    made before the call, while the relay was starting, are not credited to
    the timed window. Every attempt must end delivered (the receiver answers
    200): that is checked at the end.
    """
    reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        def attempts() -> int:
            return int(reader.execute("SELECT coalesce(max(id), 0) FROM attempts").fetchone()[0])

        started = time.perf_counter()
        first = attempts()
        deadline = started + timeout_s
        while attempts() < total:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{total:,} deliveries were not made in {timeout_s:g}s")
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        # An attempt's row commits with its delivery's new state; a fresh
        # database numbers its attempts from 1.
        delivered = reader.execute(
            "SELECT count(*) FROM deliveries WHERE status = 'delivered'").fetchone()[0]
        if delivered < total:
            raise RuntimeError("some attempts did not end delivered: is the receiver up?")
        return (total - first) / elapsed
    finally:
        reader.close()


def tree_memory_mb(pid: int, field: str) -> float:
    """`field` of /proc status (VmRSS, VmHWM) summed over `pid` and its children.

    The relay's children are its SQLite writer: its memory is the relay's too.
    """
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        pids.extend(int(child) for child in (task / "children").read_text().split())
    total = 0.0
    for each in pids:
        with open(f"/proc/{each}/status") as handle:
            total += next(int(line.split()[1]) / 1024 for line in handle
                          if line.startswith(field + ":"))
    return total


def workdir() -> Path:
    """A fresh temporary folder, removed when the run ends (scale's are 1.6 GB each)."""
    folder = Path(tempfile.mkdtemp(prefix="relay-bench-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder
