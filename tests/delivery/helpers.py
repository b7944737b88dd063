"""Test doubles and raw servers for the sender's tests (imported by conftest and tests)."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult

__all__ = ["Behaviour", "NetworkFence", "RawServer", "StaticResolver", "TlsServer",
           "ipv6_loopback_available", "read_request"]

Behaviour = Callable[[socket.socket, threading.Event], None]


class NetworkFence:
    """Records every socket connect; refuses those not aimed at the loopback."""

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self.blocked: list[str] = []

    def check(self, address: Any) -> None:
        host = str(address[0]) if isinstance(address, tuple) else str(address)
        self.attempts.append(host)
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            loopback = False
        else:
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
                address = address.ipv4_mapped
            loopback = str(address) in ("127.0.0.1", "::1")
        if not loopback:
            self.blocked.append(host)
            raise ConnectionRefusedError(f"test network fence: no connection to {host}")


class StaticResolver(AbstractResolver):
    """Name resolution from a fixed table, like /etc/hosts, without touching DNS."""

    def __init__(self, table: Mapping[str, Sequence[str]]) -> None:
        self.table = dict(table)
        self.calls: list[str] = []

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        self.calls.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            ResolveResult(hostname=host, host=address, port=port,
                          family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                          proto=0, flags=socket.AI_NUMERICHOST)
            for address in self.table[host]
        ]

    async def close(self) -> None:
        pass


class RawServer:
    """A TCP server on 127.0.0.1 whose every connection runs `behaviour`.

    For what a well-behaved HTTP server will not do: reset, hang, close early.
    `release` is set at teardown so hanging behaviours end and threads join.
    """

    def __init__(self, behaviour: Behaviour) -> None:
        release = self.release = threading.Event()
        self.connections = 0
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                outer.connections += 1
                behaviour(self.request, release)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,),
                                       daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def read_request(conn: socket.socket) -> bytes:
    """Read one request head (and whatever body came with it)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def ipv6_loopback_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


class TlsServer:
    """An HTTPS server on 127.0.0.1 that records the SNI and Host it was sent."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.server_names: list[str | None] = []
        self.requests: list[bytes] = []
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)

        def sni(sock: ssl.SSLObject | ssl.SSLSocket, name: str | None,
                ctx: ssl.SSLContext) -> None:
            self.server_names.append(name)

        context.sni_callback = sni
        outer = self

        def behaviour(conn: socket.socket, release: threading.Event) -> None:
            with contextlib.suppress(OSError), context.wrap_socket(conn, server_side=True) as tls:
                outer.requests.append(read_request(tls))
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n"
                            b"\r\nok")

        self.raw = RawServer(behaviour)
        self.port = self.raw.port

    def close(self) -> None:
        self.raw.close()
