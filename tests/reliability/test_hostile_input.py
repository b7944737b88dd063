"""Hostile input: fuzzed ingest requests and config files get documented errors only."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.config import parse_config
from relay.exceptions import ConfigError
from tests.conftest import endpoint_yaml
from tests.support import Receiver, RelayThread, base_config, free_port

pytestmark = pytest.mark.slow

DOCUMENTED = {200, 202, 400, 401, 409, 413, 415, 422}
_CONTROL = {chr(c) for c in (*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F)}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
event_objects = st.fixed_dictionaries(
    {}, optional={"type": st.text(max_size=140) | st.sampled_from(["license.created", "a.b"]),
                  "event": st.text(max_size=20), "EventType": json_values,
                  "data": json_values, "id": st.text(max_size=10) | st.integers()},
)
bodies = st.one_of(
    st.binary(max_size=3000),
    json_values.map(lambda v: json.dumps(v).encode()),
    event_objects.map(lambda v: json.dumps(v, ensure_ascii=False).encode()),
    st.lists(event_objects, max_size=5).map(lambda v: json.dumps(v).encode()),
)
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=300)
headers = st.fixed_dictionaries({}, optional={
    "Content-Type": st.sampled_from(["application/json", "text/plain", "application/x+json",
                                     "application/json; charset=utf-8", ""]) | header_text,
    "X-Event-Type": header_text,
    "Idempotency-Key": header_text,
    "Authorization": header_text,
})


@pytest.fixture(scope="module")
def fuzz_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayThread]:
    folder = tmp_path_factory.mktemp("fuzz")
    receiver = Receiver().start()
    port = free_port()
    config = folder / "relay.yaml"
    config.write_text(base_config(port, folder / "relay.db",
                                  endpoint_yaml("all", receiver.url, events=["license.*"]),
                                  extra="ingest: {max_body_bytes: 2KiB, id_field: id}\n"
                                        "events: [license.created]\n"))
    relay = RelayThread(config, port, folder / "relay.db").start()
    yield relay
    relay.stop()
    receiver.stop()


def counts(relay: RelayThread) -> tuple[int, int]:
    return (relay.rows("SELECT count(*) FROM events")[0][0],
            relay.rows("SELECT count(*) FROM deliveries")[0][0])


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=bodies, request_headers=headers, batch=st.booleans())
def test_fuzzed_ingest_gets_only_documented_answers(
    fuzz_relay: RelayThread, body: bytes, request_headers: dict[str, str], batch: bool
) -> None:
    """Any body, header and content type: a documented status, never a 5xx; 4xx store nothing."""
    try:
        encoded = {k: v.encode("latin-1").decode("latin-1") for k, v in request_headers.items()}
        request = httpx.Request("POST", fuzz_relay.url + ("/v1/events/batch" if batch
                                                          else "/v1/events"),
                                content=body, headers=encoded)
    except (UnicodeError, ValueError, httpx.HTTPError):
        return  # not a request a client can send
    before = counts(fuzz_relay)
    with httpx.Client(timeout=10) as client:
        try:
            answer = client.send(request)
        except httpx.LocalProtocolError:
            return  # httpx itself refuses to send it (e.g. a blank header value)
    assert answer.status_code in DOCUMENTED, (answer.status_code, answer.text)
    if any(c in value for value in encoded.values() for c in _CONTROL):
        # Not valid HTTP: uvicorn's parser answers 400 before the relay sees it.
        assert answer.status_code == 400
        assert counts(fuzz_relay) == before
        return
    if answer.status_code >= 400:
        assert answer.headers["content-type"] == "application/problem+json"
        assert {"type", "title", "status", "detail"} <= set(answer.json())
        assert counts(fuzz_relay) == before


def test_relay_survives_and_still_accepts(fuzz_relay: RelayThread) -> None:
    """After the fuzzing, the relay is up and stores a normal event."""
    assert fuzz_relay.post(b'{"type": "license.created"}').status_code == 202
    assert fuzz_relay.rows("PRAGMA integrity_check") == [("ok",)]


yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                         st.text(max_size=30),
                         st.sampled_from(["5s", "1MiB", "50/s", "${X}", "${X:-1}",
                                          "http://127.0.0.1:1/", "whsec_AAAA", "*", "fifo"]))
yaml_values = st.recursive(yaml_scalars, lambda c: st.lists(c, max_size=3)
                           | st.dictionaries(st.sampled_from(
                               ["name", "url", "events", "secret", "signature", "timeout",
                                "retry_schedule", "listen", "storage", "ingest", "token",
                                "delivery", "endpoints", "max_in_flight", "rate_limit", "x"]),
                               c, max_size=5), max_leaves=15)


@settings(max_examples=500, deadline=None)
@given(document=st.dictionaries(st.sampled_from(
    ["listen", "storage", "ingest", "admin", "delivery", "endpoints", "events", "retention",
     "events_strict", "logging", "bogus"]), yaml_values, max_size=6))
def test_fuzzed_configs_load_or_name_their_errors(document: dict[str, object]) -> None:
    """Any YAML document either loads or raises ConfigError with key-path messages."""
    text = yaml.safe_dump(document)
    errors: list[str] = []
    try:
        parse_config(text, env={"X": "1"})
    except ConfigError as exc:
        errors = exc.errors
        assert errors, "a ConfigError must list its problems"
    assert all(isinstance(e, str) and ": " in e for e in errors)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=400))
def test_garbage_config_text_is_a_config_error(text: str) -> None:
    """Arbitrary text is parsed or refused with a ConfigError, never another exception."""
    with contextlib.suppress(ConfigError):
        parse_config(text, env={})


def test_slow_and_oversized_clients_do_not_starve_others(
    make_relay: Callable[..., RelayThread], receiver: Receiver, tmp_path: Path
) -> None:
    """200 trickling connections and a 50 MiB upload: a normal event still gets its 202."""
    relay = make_relay(endpoint_yaml("all", receiver.url))
    slow = []
    for _ in range(200):
        sock = socket.create_connection(("127.0.0.1", relay.port))
        sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nContent-Length: 100000\r\n\r\n{")
        slow.append(sock)
    stop = threading.Event()

    def huge() -> None:
        def chunks() -> Iterator[bytes]:
            for _ in range(800):
                if stop.is_set():
                    return
                yield b"x" * 65536

        with contextlib.suppress(httpx.HTTPError):
            httpx.post(relay.url + "/v1/events", content=chunks(),
                       headers={"Content-Type": "application/json"}, timeout=30)

    uploader = threading.Thread(target=huge, daemon=True)
    uploader.start()
    try:
        started = time.monotonic()
        answer = relay.post(b'{"type": "license.created"}')
        assert answer.status_code == 202
        assert time.monotonic() - started < 5
        receiver.wait_for(1)
    finally:
        stop.set()
        for sock in slow:
            sock.close()
        uploader.join(timeout=10)
