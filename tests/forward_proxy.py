"""A small forward HTTP proxy, run as its own process for the egress tests.

`python -m tests.forward_proxy [--auth USER:PASSWORD] [--map HOST=ADDRESS ...]
[--fail-first N] --log FILE` listens on 127.0.0.1, prints its port, and
serves what an HTTP proxy such as Squid or tinyproxy serves: `CONNECT
host:port` tunnels (for https://) and absolute-form requests (`POST
http://host/path`, for http://), with `Proxy-Authorization: Basic` checked
when `--auth` is given. `--map` is its own /etc/hosts (the tests' names and
public addresses lead to 127.0.0.1). The first `--fail-first` requests get a
502 with an RFC 9209 `Proxy-Status` error, as a proxy answers when it cannot
reach the destination. Each request is a JSON line in the log: its method,
target and whether its credentials were right.

`ForwardProxy` starts and stops the process from a test.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
_HOP_BY_HOP = {b"proxy-authorization", b"proxy-connection", b"connection", b"keep-alive"}


def _read_head(conn: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return b"", b""
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


class Proxy:
    def __init__(self, auth: str | None, hosts: dict[str, str], fail_first: int,
                 log: Path) -> None:
        self.expected = (b"Basic " + base64.b64encode(auth.encode())) if auth else None
        self.hosts = hosts
        self.failures_left = fail_first
        self.log = log
        self.lock = threading.Lock()

    def record(self, **entry: Any) -> None:
        with self.lock, self.log.open("a") as handle:
            handle.write(json.dumps(entry) + "\n")

    def answer(self, conn: socket.socket, status: str, extra: str = "") -> None:
        conn.sendall(f"HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\n"
                     "Connection: close\r\n\r\n".encode())

    def handle(self, conn: socket.socket) -> None:
        with conn:
            head, rest = _read_head(conn)
            if not head:
                return
            request_line, *header_lines = head.split(b"\r\n")
            method, target, _ = request_line.decode("latin-1").split(" ", 2)
            headers = [line.split(b":", 1) for line in header_lines if b":" in line]
            given = next((v.strip() for k, v in headers
                          if k.strip().lower() == b"proxy-authorization"), None)
            authorized = self.expected is None or given == self.expected
            self.record(method=method, target=target, authorized=authorized)
            if not authorized:
                self.answer(conn, "407 Proxy Authentication Required",
                            'Proxy-Authenticate: Basic realm="test"\r\n')
                return
            with self.lock:
                failing = self.failures_left > 0
                self.failures_left -= failing
            if failing:
                self.answer(conn, "502 Bad Gateway",
                            "Proxy-Status: testproxy; error=destination_unavailable\r\n")
                return
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                self.tunnel(conn, host.strip("[]"), int(port))
            else:
                self.forward(conn, method, target, headers, rest)

    def connect(self, host: str, port: int) -> socket.socket:
        return socket.create_connection((self.hosts.get(host, host), port), timeout=10)

    def tunnel(self, conn: socket.socket, host: str, port: int) -> None:
        try:
            upstream = self.connect(host, port)
        except OSError:
            self.answer(conn, "502 Bad Gateway",
                        "Proxy-Status: testproxy; error=destination_ip_unroutable\r\n")
            return
        with upstream:
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            back = threading.Thread(target=_pipe, args=(upstream, conn), daemon=True)
            back.start()
            _pipe(conn, upstream)
            back.join(timeout=10)

    def forward(self, conn: socket.socket, method: str, target: str,
                headers: list[list[bytes]], rest: bytes) -> None:
        url = urlsplit(target)
        length = next((int(v) for k, v in headers if k.strip().lower() == b"content-length"), 0)
        while len(rest) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return
            rest += chunk
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        kept = b"".join(k + b":" + v + b"\r\n" for k, v in headers
                        if k.strip().lower() not in _HOP_BY_HOP)
        with self.connect(url.hostname or "", url.port or 80) as upstream:
            upstream.sendall(f"{method} {path} HTTP/1.1\r\n".encode() + kept
                             + b"Connection: close\r\n\r\n" + rest)
            _pipe(upstream, conn)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--auth")
    parser.add_argument("--map", action="append", default=[])
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args(argv)
    proxy = Proxy(args.auth, dict(item.split("=", 1) for item in args.map), args.fail_first,
                  args.log)
    server = socket.create_server(("127.0.0.1", 0))
    print(server.getsockname()[1], flush=True)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=proxy.handle, args=(conn,), daemon=True).start()


class ForwardProxy:
    """The proxy above as a subprocess: its port, and the requests it was sent."""

    def __init__(self, log: Path, *, auth: str | None = None,
                 hosts: dict[str, str] | None = None, fail_first: int = 0) -> None:
        args = [sys.executable, "-m", "tests.forward_proxy", "--log", str(log),
                "--fail-first", str(fail_first)]
        if auth:
            args += ["--auth", auth]
        for host, address in (hosts or {}).items():
            args += ["--map", f"{host}={address}"]
        self.log = log
        log.touch()
        self.process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}"

    def requests(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


if __name__ == "__main__":
    main()
