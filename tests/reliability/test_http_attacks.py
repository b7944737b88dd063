"""The HTTP doors, tried as a hostile web page or client would: other sites, rebinding hosts,
header floods. Each must be refused before it has any effect."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import endpoint_yaml
from tests.support import Receiver, RelayProcess, RelayThread, base_config, free_port, wait_until

pytestmark = pytest.mark.slow

EVIL = "http://evil.example"
ADMIN_POSTS = [
    ("/v1/endpoints/hooks/pause", None),
    ("/v1/endpoints/hooks/resume", None),
    ("/v1/endpoints/hooks/recover", '{"since":"7d"}'),
    ("/v1/endpoints/hooks/test", None),
    ("/v1/deliveries/dlv_1/retry", None),
]


@pytest.fixture(scope="module")
def open_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayThread]:
    """A relay with no tokens on loopback (the default), one endpoint and one event."""
    folder = tmp_path_factory.mktemp("attacks")
    receiver = Receiver().start()
    port = free_port()
    config = folder / "relay.yaml"
    config.write_text(base_config(port, folder / "relay.db",
                                  endpoint_yaml("hooks", receiver.url + "/hooks")))
    relay = RelayThread(config, port, folder / "relay.db").start()
    try:
        response = relay.post('{"type": "license.created", "data": {"seats": 5}}',
                              {"Idempotency-Key": "evt-known"})
        assert response.status_code == 202, response.text
        receiver.wait_for(1)
        relay.wait_statuses({"delivered": 1})
        yield relay
    finally:
        relay.stop()
        receiver.stop()


def _state(relay: RelayThread) -> tuple[Any, ...]:
    """Everything an admin action could change: deliveries, attempts, endpoint state."""
    return (relay.rows("SELECT id, status, attempts, next_attempt_at FROM deliveries ORDER BY id"),
            relay.rows("SELECT count(*) FROM attempts"),
            relay.rows("SELECT name, paused, disabled_reason FROM endpoint_state ORDER BY name"),
            relay.rows("SELECT count(*) FROM events"))


def _host(relay: RelayThread) -> str:
    return f"127.0.0.1:{relay.port}"


# -- other sites ----------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "body"), ADMIN_POSTS)
@pytest.mark.parametrize("headers", [
    {"Content-Type": "text/plain", "Origin": EVIL},
    {"Content-Type": "text/plain"},  # an old browser that sends no Origin on a simple POST
    {"Content-Type": "application/x-www-form-urlencoded", "Origin": "null"},
    {"Content-Type": "multipart/form-data; boundary=x", "Sec-Fetch-Site": "cross-site"},
    {"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"},
    {"Content-Type": "application/json", "Sec-Fetch-Site": "same-site",
     "Origin": "http://sub.127.0.0.1.nip.example"},
    {"Content-Type": "application/json", "Origin": EVIL},
    {"Origin": EVIL},  # no body at all, as fetch(url, {method: "POST", mode: "no-cors"})
])
def test_other_sites_cannot_drive_a_tokenless_relay(
        open_relay: RelayThread, path: str, body: str | None, headers: dict[str, str]) -> None:
    """A page on another site posts to every admin action: refused, and nothing changes."""
    before = _state(open_relay)
    response = httpx.post(open_relay.url + path, content=body or b"", headers=headers,
                          timeout=30)
    assert response.status_code in (403, 415), response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert _state(open_relay) == before


def test_programs_still_drive_it(open_relay: RelayThread) -> None:
    """curl and the CLI send no browser headers: their JSON posts and empty posts work."""
    url = open_relay.url + "/v1/endpoints/hooks"
    assert httpx.post(url + "/pause", timeout=30).status_code == 200
    try:
        assert httpx.get(url, timeout=30).json()["paused"] is True
    finally:
        response = httpx.post(url + "/resume", json={}, timeout=30)
        assert response.status_code == 200, response.text
    response = httpx.post(url + "/recover", json={"since": "7d"},
                          headers={"Sec-Fetch-Site": "same-origin",
                                   "Origin": f"http://{_host(open_relay)}"}, timeout=30)
    assert response.status_code == 200, response.text


def test_an_undeclared_body_that_is_not_empty_is_refused(open_relay: RelayThread) -> None:
    """Without a Content-Type a body is not taken as JSON."""
    before = _state(open_relay)
    request = (f"POST /v1/endpoints/hooks/recover HTTP/1.1\r\nHost: {_host(open_relay)}\r\n"
               "Content-Length: 14\r\nConnection: close\r\n\r\n{\"since\":\"7d\"}")
    status, _ = _raw(open_relay.port, request.encode())
    assert status == 415
    assert _state(open_relay) == before


# -- DNS rebinding ------------------------------------------------------------------------


@pytest.mark.parametrize("host", [
    "evil.example", "evil.example:{port}", "127.evil.example:{port}",
    "127.0.0.1.evil.example:{port}", "localhost.evil.example:{port}", "127.1:{port}",
    "localhost.:{port}", "0x7f000001:{port}", "[::ffff:7f00:1]:{port}", "127.0.0.1:1",
])
@pytest.mark.parametrize("path", ["/v1/events/evt-known", "/v1/endpoints", "/v1/deliveries",
                                  "/v1/deliveries/dlv_1", "/metrics"])
def test_rebinding_hosts_read_nothing(open_relay: RelayThread, host: str, path: str) -> None:
    """A page whose own name now points at 127.0.0.1 is refused by its Host header."""
    response = httpx.get(open_relay.url + path, headers={"Host": host.format(
        port=open_relay.port)}, timeout=30)
    assert response.status_code == 403, response.text
    assert "seats" not in response.text
    assert response.json()["type"] == "urn:relay:problem:host-not-allowed"


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "127.0.0.1", "localhost:{port}",
                                  "LOCALHOST", "127.0.0.2:{port}"])
def test_loopback_names_are_served(open_relay: RelayThread, host: str) -> None:
    response = httpx.get(open_relay.url + "/v1/events/evt-known",
                         headers={"Host": host.format(port=open_relay.port)}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["payload"]["data"] == {"seats": 5}


def test_ingest_refuses_rebinding_hosts_and_other_sites(open_relay: RelayThread) -> None:
    """Without ingest.token, ingest applies the same Host rule, and stores nothing refused."""
    before = _state(open_relay)
    for headers in ({"Host": "evil.example"}, {"Host": f"127.evil.example:{open_relay.port}"},
                    {"Origin": EVIL}, {"Sec-Fetch-Site": "cross-site"}):
        for path in ("/v1/events", "/v1/events/batch"):
            body = '{"type": "a.b"}' if path == "/v1/events" else '[{"type": "a.b"}]'
            response = open_relay.post(body, headers, path=path)
            assert response.status_code == 403, (headers, response.text)
    assert _state(open_relay) == before


def test_allowed_hosts_and_tokens(tmp_path: Path) -> None:
    """`admin.allowed_hosts` adds exact names; with tokens set any Host may ask."""
    port = free_port()
    config = tmp_path / "relay.yaml"
    config.write_text(base_config(port, tmp_path / "relay.db", "  []\n",
                                  "admin:\n  allowed_hosts: [relay.internal]\n"))
    relay = RelayThread(config, port, tmp_path / "relay.db").start()
    try:
        def status(host: str, path: str = "/v1/endpoints") -> int:
            return httpx.get(relay.url + path, headers={"Host": host}, timeout=30).status_code

        assert status(f"relay.internal:{port}") == 200
        assert status("relay.internal") == 200
        assert status(f"x.relay.internal:{port}") == 403
        assert status(f"relay.internal:{port + 1}") == 403
    finally:
        relay.stop()
    port = free_port()
    config.write_text(base_config(port, tmp_path / "relay2.db", "  []\n",
                                  "admin: {token: adm}\ningest: {token: ing}\n"))
    relay = RelayThread(config, port, tmp_path / "relay2.db").start()
    try:
        response = httpx.get(relay.url + "/v1/endpoints", timeout=30,
                             headers={"Host": "relay.example", "Authorization": "Bearer adm"})
        assert response.status_code == 200
        response = relay.post('{"type": "a.b"}', {"Host": "relay.example",
                                                  "Authorization": "Bearer ing"})
        assert response.status_code == 202
        # Another site's page cannot use a token it does not have, nor a browser's own.
        response = httpx.post(relay.url + "/v1/endpoints/x/pause", timeout=30,
                              headers={"Origin": EVIL, "Authorization": "Bearer adm"})
        assert response.status_code == 403
    finally:
        relay.stop()


def test_dashboard_refuses_hosts_that_only_start_like_loopback(open_relay: RelayThread) -> None:
    """`127.evil.example` is a name: its pages are refused, and so is a pause posted from it
    with a CSRF token taken from a loopback page."""
    evil_host = f"127.evil.example:{open_relay.port}"
    page = httpx.get(open_relay.url + "/ui", headers={"Host": evil_host}, timeout=30)
    assert page.status_code == 403
    with httpx.Client(base_url=open_relay.url, timeout=30) as browser:
        real = browser.get("/ui/endpoints/hooks")
        assert real.status_code == 200
        match = re.search(r'name="csrf" value="([^"]+)"', real.text)
        assert match
        before = _state(open_relay)
        response = browser.post("/ui/endpoints/hooks/pause", data={"csrf": match.group(1)},
                                headers={"Host": evil_host,
                                         "Origin": f"http://{evil_host}"})
        assert response.status_code == 403
        assert _state(open_relay) == before


# -- header floods ------------------------------------------------------------------------


def _raw(port: int, request: bytes, send_more: bytes = b"", more_times: int = 0
         ) -> tuple[int | None, bytes]:
    """Send a raw request (then `send_more` up to `more_times` times while the server reads);
    the status of the answer and the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            sock.sendall(request)
            for _ in range(more_times):
                sock.sendall(send_more)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed on us mid-send: read what it answered
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    match = re.match(rb"HTTP/1\.1 (\d{3}) ", answer)
    return (int(match.group(1)) if match else None), answer


def test_a_large_header_is_refused_with_431(open_relay: RelayThread) -> None:
    """One 128 KiB header: 431 problem JSON, nothing stored, the connection closed."""
    before = _state(open_relay)
    body = b'{"type": "a.b"}'
    request = (f"POST /v1/events HTTP/1.1\r\nHost: {_host(open_relay)}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
               f"X-Filler: {'a' * 128 * 1024}\r\n\r\n").encode() + body
    status, answer = _raw(open_relay.port, request)
    assert status == 431, answer[:300]
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert b"application/problem+json" in head
    assert "limits.max_header_bytes" in json.loads(payload)["detail"]
    assert _state(open_relay) == before


def test_a_streamed_header_is_cut_off_early(open_relay: RelayThread) -> None:
    """An 8 MiB header sent in pieces is answered 431 long before its end, whatever else."""
    request = f"GET /healthz HTTP/1.1\r\nHost: {_host(open_relay)}\r\nX-Filler: ".encode()
    status, _ = _raw(open_relay.port, request, b"a" * 65536, more_times=128)
    assert status == 431


def test_too_many_header_lines_is_431(open_relay: RelayThread) -> None:
    lines = "".join(f"X-H{n}: v\r\n" for n in range(200))
    request = f"GET /healthz HTTP/1.1\r\nHost: {_host(open_relay)}\r\n{lines}\r\n".encode()
    status, answer = _raw(open_relay.port, request)
    assert status == 431
    assert b"limits.max_headers" in answer


def test_a_long_url_counts_as_header(open_relay: RelayThread) -> None:
    request = (f"GET /v1/events/{'a' * 100_000} HTTP/1.1\r\nHost: {_host(open_relay)}\r\n"
               "\r\n").encode()
    status, _ = _raw(open_relay.port, request)
    assert status == 431


def test_heads_within_the_limit_are_served_and_keep_alive_works(open_relay: RelayThread) -> None:
    """A 32 KiB header under the 64 KiB default is fine, twice on one connection."""
    with httpx.Client(timeout=30) as client:
        for _ in range(2):
            response = client.get(open_relay.url + "/healthz",
                                  headers={"X-Filler": "a" * 32 * 1024})
            assert response.status_code == 200


def test_limits_come_from_config_and_apply_before_the_token(tmp_path: Path) -> None:
    """`limits.max_header_bytes` sets the bound; a flood is refused before the token is read."""
    port = free_port()
    config = tmp_path / "relay.yaml"
    config.write_text(base_config(port, tmp_path / "relay.db", "  []\n",
                                  "ingest: {token: ing}\nlimits: {max_header_bytes: 4KiB}\n"))
    relay = RelayThread(config, port, tmp_path / "relay.db").start()
    try:
        response = relay.post('{"type": "a.b"}', {"X-Filler": "a" * 8000})
        assert response.status_code == 431
        response = relay.post('{"type": "a.b"}', {"X-Filler": "a" * 2000,
                                                  "Authorization": "Bearer ing"})
        assert response.status_code == 202
    finally:
        relay.stop()


def test_header_floods_do_not_grow_the_relay(tmp_path: Path) -> None:
    """Four connections each streaming a 32 MiB header leave the relay process small."""
    port = free_port()
    config = tmp_path / "relay.yaml"
    config.write_text(base_config(port, tmp_path / "relay.db", "  []\n"))
    relay = RelayProcess(config, port, tmp_path / "relay.log").start()
    try:
        assert relay.proc is not None
        rss_before = _rss_mb(relay.proc.pid)
        statuses: list[int | None] = []

        def flood() -> None:
            request = f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Filler: "
            statuses.append(_raw(port, request.encode(), b"a" * (1 << 20), more_times=32)[0])

        threads = [threading.Thread(target=flood) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert statuses == [431] * 4
        grown = _rss_mb(relay.proc.pid) - rss_before
        assert grown < 20, f"the relay grew by {grown:.0f} MB"
        wait_until(lambda: httpx.get(relay.url + "/healthz", timeout=5).status_code == 200)
    finally:
        assert relay.terminate() == 0


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")
