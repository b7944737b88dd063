"""Real servers on 127.0.0.1 for the sender's tests, and a fence around the network.

Every test in this folder runs behind `network_fence`: a connect to anything
but 127.0.0.1 or ::1 is recorded and refused before a packet leaves, so a
regression in the SSRF guard shows up as a failing assertion, never as
traffic to 10.0.0.1 or a metadata service.
"""

from __future__ import annotations

import asyncio.selector_events
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from tests.delivery.helpers import (
    Behaviour,
    NetworkFence,
    RawServer,
    TlsServer,
    ipv6_loopback_available,
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def network_fence(monkeypatch: pytest.MonkeyPatch) -> Iterator[NetworkFence]:
    """Fence asyncio's socket connects (what aiohttp's happy eyeballs uses)."""
    fence = NetworkFence()
    cls = asyncio.selector_events.BaseSelectorEventLoop
    original = cls.sock_connect

    async def sock_connect(self: Any, sock: socket.socket, address: Any) -> None:
        fence.check(address)
        await original(self, sock, address)

    monkeypatch.setattr(cls, "sock_connect", sock_connect)
    yield fence
    assert not fence.blocked, f"a test tried to connect beyond the loopback: {fence.blocked}"


@pytest.fixture
def raw_server() -> Iterator[Callable[[Behaviour], RawServer]]:
    servers: list[RawServer] = []

    def make(behaviour: Behaviour) -> RawServer:
        server = RawServer(behaviour)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture(scope="session")
def _shared_http_server() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.stop()  # takes half a second (werkzeug's poll interval): once per run


@pytest.fixture
def http_server(_shared_http_server: HTTPServer) -> Iterator[HTTPServer]:
    """pytest-httpserver bound to 127.0.0.1 (its default, `localhost`, may be ::1).

    One server for the session, emptied of handlers and log after each test.
    """
    yield _shared_http_server
    _shared_http_server.clear()


@pytest.fixture
def http_server_v6() -> Iterator[HTTPServer]:
    if not ipv6_loopback_available():
        pytest.skip("IPv6 loopback (::1) is not available on this machine")
    server = HTTPServer(host="::1", port=0)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for `hooks.test`, made with the openssl CLI."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=hooks.test",
         "-addext", "subjectAltName=DNS:hooks.test"],
        check=True, capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_server(tls_files: tuple[Path, Path]) -> Iterator[TlsServer]:
    server = TlsServer(*tls_files)
    yield server
    server.close()
