"""POST /v1/events and /v1/events/batch against a real relay and receiver."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.http.json_body import MAX_DEPTH, nests_deeper
from tests.conftest import endpoint_yaml
from tests.support import Receiver, RelayThread, sqlite_only

pytestmark = pytest.mark.both_backends

SHAPES = [
    b'{"type": "license.created", "data": {"licenseKey": "ABCD-1234"}}',
    b'{"event": "license.validated", "timestamp": "2025-01-03T14:25:30Z", "data": {}}',
    b'{"event_type": "license.expiring", "payload": {"license_id": 123, "days_until_expiry": 7}}',
    b'{"Id": 42, "LicenseId": "LIC-0001", "EventType": "license.created", '
    b'"Timestamp": "2024-01-01T00:00:00Z"}',
    # whitespace, key order and unicode must survive byte for byte
    '{\n  "type":"order.created",  "data": {"customer": "Zo\u00eb \u2713", "n": 1.50}\n}'.encode(),
]


@pytest.fixture
def relay(make_relay: Callable[..., RelayThread], receiver: Receiver) -> RelayThread:
    return make_relay(endpoint_yaml("all", receiver.url + "/hooks"))


def counts(relay: RelayThread) -> tuple[int, int]:
    return (relay.rows("SELECT count(*) FROM events")[0][0],
            relay.rows("SELECT count(*) FROM deliveries")[0][0])


@pytest.mark.parametrize("body", SHAPES)
def test_every_shape_is_accepted_and_delivered_byte_exact(
    relay: RelayThread, receiver: Receiver, body: bytes
) -> None:
    """Each raw shape of SPEC 2 gets a 202 and reaches the endpoint unchanged."""
    response = relay.post(body)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["deliveries"] == 1 and answer["duplicate"] is False
    assert answer["id"].startswith("evt_")
    expected_type = json.loads(body).get("type") or json.loads(body).get("event") or \
        json.loads(body).get("event_type") or json.loads(body).get("EventType")
    assert answer["type"] == expected_type
    [delivered] = receiver.wait_for(1)
    assert delivered.body == body
    assert delivered.header("webhook-id") == answer["id"]
    assert delivered.header("content-type") == "application/json"
    assert delivered.header("user-agent").startswith("relay/")


def test_type_header_and_custom_fields(
    make_relay: Callable[..., RelayThread], receiver: Receiver
) -> None:
    """X-Event-Type wins over the body; ingest.type_fields and id_field are honoured."""
    relay = make_relay(endpoint_yaml("all", receiver.url),
                       extra="ingest: {type_fields: [kind], id_field: eventId}\n")
    first = relay.post(b'{"kind": "report.created", "eventId": "r-1"}')
    assert first.status_code == 202 and first.json()["type"] == "report.created"
    assert first.json()["id"] == "r-1"
    second = relay.post(b'{"type": "ignored"}', headers={"X-Event-Type": "license.revoked"})
    assert second.json()["type"] == "license.revoked"
    numeric = relay.post(b'{"kind": "order.created", "eventId": 77}')
    assert numeric.json()["id"] == "77"
    receiver.wait_for(3)


def test_the_parse_reads_json_as_the_standard_library_does(
    make_relay: Callable[..., RelayThread], receiver: Receiver
) -> None:
    """Ids past 64 bits stay exact, lone surrogates parse, NaN and bad UTF-8 are refused."""
    relay = make_relay(endpoint_yaml("all", receiver.url), extra="ingest: {id_field: eventId}\n")
    big = relay.post(b'{"type": "order.created", "eventId": 123456789012345678901234567890}')
    assert big.status_code == 202 and big.json()["id"] == "123456789012345678901234567890"
    fractional = relay.post(b'{"type": "order.created", "eventId": 1.5}')
    assert fractional.status_code == 400
    assert fractional.json()["type"] == "urn:relay:problem:invalid-idempotency-key"
    surrogate = b'{"type": "license.created", "note": "\\ud800"}'
    assert relay.post(surrogate).status_code == 202
    for bad, words in ((b'{"type": "a.b", "n": NaN}', "NaN is not valid JSON"),
                       (b'{"type": "a.b", "n": "\xff"}', "not UTF-8 at byte"),
                       (b'{"type": "a.b",}', "Expecting property name")):
        problem = relay.post(bad).json()
        assert problem["type"] == "urn:relay:problem:invalid-json" and words in problem["detail"]
    delivered = receiver.wait_for(2)
    assert {r.body for r in delivered} == {
        b'{"type": "order.created", "eventId": 123456789012345678901234567890}', surrogate}


def nested(depth: int, inner: bytes = b"") -> bytes:
    """An event `depth` levels deep: the object is level 1, arrays fill the rest."""
    return b'{"type": "a.b", "v": ' + b"[" * (depth - 1) + inner + b"]" * (depth - 1) + b"}"


def test_one_nesting_limit_for_single_and_batch(relay: RelayThread) -> None:
    """128 levels are taken by both routes; deeper is a 400 naming the limit, on both."""
    assert MAX_DEPTH == 128
    assert relay.post(nested(MAX_DEPTH)).status_code == 202
    batch = relay.post(b"[" + nested(MAX_DEPTH) + b"]", path="/v1/events/batch")
    assert batch.status_code == 202, batch.text
    for depth in (MAX_DEPTH + 1, 1000, 1023, 1025, 5000):
        for path, body in (("/v1/events", nested(depth)),
                           ("/v1/events/batch", b"[" + nested(depth) + b"]")):
            answer = relay.post(body, path=path)
            assert answer.status_code == 400, (depth, path, answer.text)
            problem = answer.json()
            assert problem["type"] == "urn:relay:problem:invalid-json"
            assert "more than 128 levels deep" in problem["detail"], problem
    assert counts(relay)[0] == 2


def test_brackets_in_strings_do_not_count_as_nesting(relay: RelayThread) -> None:
    """Only structure counts: a string full of brackets and escaped quotes is a flat event."""
    text = '{"type": "a.b", "note": "' + '[{\\"' * 400 + '", "list": [' + "[1]," * 300 + "[]]}"
    assert relay.post(text).status_code == 202
    assert relay.post("[" + text + "]", path="/v1/events/batch").status_code == 202


def test_nesting_scan_is_exact_for_json() -> None:
    """The depth scan agrees with a parse: objects and arrays mixed, strings skipped."""
    assert not nests_deeper(b'{"a": [{"b": "]]]]"}]}', 3)
    assert nests_deeper(b'{"a": [{"b": "]]]]", "c": []}]}', 3)
    assert not nests_deeper(b'["\\\"[[[[[", [[]]]', 3)
    assert nests_deeper(b'["\\\\", [[[]]]]', 3)
    assert not nests_deeper(b'["\\\\\\"]", [[]]]', 3)


def _depth(value: Any) -> int:
    if not isinstance(value, dict | list):
        return 0
    children = value.values() if isinstance(value, dict) else value
    return 1 + max((_depth(child) for child in children), default=0)


_TRICKY = st.text(alphabet='[]{}"\\/ \nx\u00e9', max_size=8)
_VALUES = st.recursive(
    st.none() | st.integers() | _TRICKY,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TRICKY, inner, max_size=3),
    max_leaves=40)


@given(_VALUES, st.booleans())
@settings(max_examples=300, deadline=None)
def test_nesting_scan_matches_the_parsed_depth(value: Any, ascii_only: bool) -> None:
    """On any JSON, with brackets, quotes and backslashes in its strings, the depth is exact."""
    body = json.dumps(value, ensure_ascii=ascii_only).encode()
    depth = _depth(value)
    assert not nests_deeper(body, depth)
    assert depth == 0 or nests_deeper(body, depth - 1)


def test_idempotency_key_gives_one_delivery(relay: RelayThread, receiver: Receiver) -> None:
    """The same key and body twice: one event, one delivery, the second answer says duplicate."""
    body = b'{"type": "license.activated", "data": {"machine": "m-1"}}'
    first = relay.post(body, headers={"Idempotency-Key": "act-1"})
    second = relay.post(body, headers={"Idempotency-Key": "act-1"})
    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json() == {"id": "act-1", "type": "license.activated", "deliveries": 1,
                             "duplicate": True}
    receiver.wait_for(1)
    relay.wait_statuses({"delivered": 1})
    assert len(receiver.requests) == 1
    assert counts(relay) == (1, 1)


def test_concurrent_duplicates_store_one_event(relay: RelayThread, receiver: Receiver) -> None:
    """Twenty concurrent posts of one key commit one event (they share a group commit)."""
    body = b'{"type": "order.created", "data": {"orderId": 9}}'
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(
            lambda _: relay.post(body, headers={"Idempotency-Key": "ord-9"}), range(20)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(202) == 1 and statuses.count(200) == 19
    relay.wait_statuses({"delivered": 1})
    assert counts(relay) == (1, 1)


def test_group_commit_shares_transactions(relay: RelayThread) -> None:
    """64 concurrent ingests are committed in far fewer rounds than events.

    On SQLite a round is a batch sent to the writer process (which then joins
    every batch waiting in its pipe into one transaction); on PostgreSQL it is
    one transaction of the group commit.
    """
    storage: Any = relay.state.storage
    rounds: list[int] = []
    if hasattr(storage, "_run_round"):  # PostgreSQL
        original_round = storage._run_round

        async def counting_round(jobs: list[Any]) -> None:
            rounds.append(len(jobs))
            await original_round(jobs)

        storage._run_round = counting_round
    else:  # SQLite
        original_flush = storage._flush

        def counting_flush() -> None:
            rounds.append(len(storage._outbox))
            original_flush()

        storage._flush = counting_flush
    barrier = threading.Barrier(64)

    def post(i: int) -> int:
        barrier.wait()
        return relay.post(json.dumps({"type": "telemetry.received", "n": i})).status_code

    with ThreadPoolExecutor(64) as pool:
        assert set(pool.map(post, range(64))) == {202}
    assert sum(rounds) >= 64
    assert max(rounds) > 1, "no two ingests ever shared a commit"
    assert counts(relay)[0] == 64


def test_batch_is_all_or_nothing(relay: RelayThread, receiver: Receiver) -> None:
    """A batch stores every event with its exact bytes, or none when one is invalid."""
    batch = b'[ {"type": "license.created", "data": {"k": 1}} ,\n{"event":"order.created"} ]'
    response = relay.post(batch, path="/v1/events/batch")
    assert response.status_code == 202, response.text
    results = response.json()["results"]
    assert [r["type"] for r in results] == ["license.created", "order.created"]
    received = receiver.wait_for(2)
    assert sorted(r.body for r in received) == sorted(
        [b'{"type": "license.created", "data": {"k": 1}}', b'{"event":"order.created"}'])
    before = counts(relay)
    bad = relay.post(b'[{"type": "a.b"}, {"nope": 1}, 3]', path="/v1/events/batch")
    assert bad.status_code == 400
    problem = bad.json()
    assert [e["index"] for e in problem["errors"]] == [1, 2]
    assert "nothing was stored" in problem["detail"]
    assert counts(relay) == before


def test_batch_with_ids_reports_duplicates_and_conflicts(
    make_relay: Callable[..., RelayThread], receiver: Receiver
) -> None:
    """Batch items use ingest.id_field: repeats are duplicates, changed bodies conflict."""
    relay = make_relay(endpoint_yaml("all", receiver.url), extra="ingest: {id_field: id}\n")
    first = relay.post(b'[{"id": "a", "type": "x.y"}, {"id": "b", "type": "x.y"}]',
                       path="/v1/events/batch")
    assert first.status_code == 202
    again = relay.post(b'[{"id": "a", "type": "x.y"}]', path="/v1/events/batch")
    assert again.status_code == 200 and again.json()["results"][0]["duplicate"] is True
    before = counts(relay)
    conflict = relay.post(b'[{"id": "c", "type": "x.y"}, {"id": "b", "type": "x.z"}]',
                          path="/v1/events/batch")
    assert conflict.status_code == 409
    assert conflict.json()["errors"] == [{"index": 1, "id": "b"}]
    assert counts(relay) == before  # "c" was not stored either


def test_unmatched_events_are_stored_without_deliveries(
    make_relay: Callable[..., RelayThread], receiver: Receiver
) -> None:
    """An event no endpoint subscribes to is kept, with zero deliveries."""
    relay = make_relay(endpoint_yaml("licenses", receiver.url, events=["license.*"]))
    answer = relay.post(b'{"type": "order.created"}').json()
    assert answer["deliveries"] == 0
    assert counts(relay) == (1, 0)
    assert relay.post(b'{"type": "license.expired"}').json()["deliveries"] == 1


BAD_REQUESTS = [
    (b'{"type": "a.b"', {}, 400, "invalid-json"),
    (b'\xff\xfe{}', {}, 400, "invalid-json"),
    (b'{"type": NaN}', {}, 400, "invalid-json"),
    (b'[1, 2]', {}, 400, "not-an-object"),
    (b'"license.created"', {}, 400, "not-an-object"),
    (b'{"data": {"type": "nested.does.not.count"}, "type": 5}', {}, 400, "missing-event-type"),
    (b'{"type": "has spaces"}', {}, 400, "invalid-event-type"),
    (b'{"type": "' + b"x" * 129 + b'"}', {}, 400, "invalid-event-type"),
    (b'{"type": "a.b"}', {"Idempotency-Key": "has space"}, 400, "invalid-idempotency-key"),
    (b'{"type": "a.b"}', {"Content-Type": "text/plain"}, 415, "unsupported-media-type"),
    (b'{"type": "a.b"}', {"Content-Type": ""}, 415, "unsupported-media-type"),
    (b'{"type": "a.b", "pad": "' + b"x" * 2000 + b'"}', {}, 413, "body-too-large"),
]


@pytest.mark.parametrize(("body", "headers", "status", "slug"), BAD_REQUESTS)
def test_bad_requests_get_problems_and_change_nothing(
    make_relay: Callable[..., RelayThread], receiver: Receiver, body: bytes,
    headers: dict[str, str], status: int, slug: str,
) -> None:
    """Every documented 4xx comes as problem+json, and the database is left as it was."""
    relay = make_relay(endpoint_yaml("all", receiver.url),
                       extra="ingest: {max_body_bytes: 1KiB}\n")
    assert relay.post(b'{"type": "seed.event"}').status_code == 202
    before = counts(relay)
    response = relay.post(body, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == f"urn:relay:problem:{slug}"
    assert problem["status"] == status and problem["title"] and problem["detail"]
    assert counts(relay) == before


def test_missing_type_names_the_fields_tried(relay: RelayThread) -> None:
    """The 400 for a missing type says which fields were looked at."""
    detail = relay.post(b'{"name": "x"}').json()["detail"]
    assert "X-Event-Type" in detail and "type, event, event_type, EventType" in detail


def test_chunked_oversized_body_is_refused(
    make_relay: Callable[..., RelayThread], receiver: Receiver
) -> None:
    """A body without Content-Length is still cut off at max_body_bytes."""
    relay = make_relay(endpoint_yaml("all", receiver.url),
                       extra="ingest: {max_body_bytes: 1KiB}\n")

    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"type": "a.b", "pad": "'
        for _ in range(100):
            yield b"x" * 100
        yield b'"}'

    response = httpx.post(relay.url + "/v1/events", content=chunks(),
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert counts(relay) == (0, 0)


def test_ingest_token(make_relay: Callable[..., RelayThread], receiver: Receiver) -> None:
    """With ingest.token set, a missing or wrong bearer token is a 401."""
    relay = make_relay(endpoint_yaml("all", receiver.url), extra="ingest: {token: s3cret}\n")
    missing = relay.post(b'{"type": "a.b"}')
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    wrong = relay.post(b'{"type": "a.b"}', headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "s3cret" not in wrong.text
    ok = relay.post(b'{"type": "a.b"}', headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 202
    assert counts(relay) == (1, 1)


def test_strict_catalog(make_relay: Callable[..., RelayThread], receiver: Receiver) -> None:
    """With events_strict, a type outside the catalog is a 422."""
    relay = make_relay(endpoint_yaml("all", receiver.url),
                       extra="events: [license.created]\nevents_strict: true\n")
    response = relay.post(b'{"type": "license.exploded"}')
    assert response.status_code == 422
    assert response.json()["type"] == "urn:relay:problem:unknown-event-type"
    assert relay.post(b'{"type": "license.created"}').status_code == 202


def test_conflicting_body_for_a_key(relay: RelayThread) -> None:
    """The same key with a different body is a 409 and the original stays."""
    assert relay.post(b'{"type": "a.b", "v": 1}', {"Idempotency-Key": "k"}).status_code == 202
    conflict = relay.post(b'{"type": "a.b", "v": 2}', {"Idempotency-Key": "k"})
    assert conflict.status_code == 409
    assert conflict.json()["type"] == "urn:relay:problem:idempotency-conflict"
    assert relay.rows("SELECT body FROM events WHERE id = 'k'") == [(b'{"type": "a.b", "v": 1}',)]


@sqlite_only
def test_locked_database_answers_503_not_202(relay: RelayThread) -> None:
    """While another process holds the write lock, ingest answers 503 with Retry-After."""
    assert relay.post(b'{"type": "a.b"}').status_code == 202
    blocker = sqlite3.connect(relay.db, timeout=1, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        response = relay.post(b'{"type": "a.b", "n": 2}')
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert response.json()["type"] == "urn:relay:problem:storage-unavailable"
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert relay.post(b'{"type": "a.b", "n": 3}').status_code == 202
    assert counts(relay)[0] == 2


def test_unknown_routes_are_problems(relay: RelayThread) -> None:
    """404 and 405 use problem+json too."""
    missing = httpx.get(relay.url + "/nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    wrong_method = httpx.put(relay.url + "/v1/events")
    assert wrong_method.status_code == 405
