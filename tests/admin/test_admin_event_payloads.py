"""GET /v1/events/{id} answers valid JSON for every stored body, whatever it holds."""

from __future__ import annotations

import json
from collections.abc import Callable

import orjson
import pytest

from relay.http.json_body import MAX_DEPTH
from tests.admin.harness import Ops, receiver
from tests.conftest import endpoint_yaml


def nested(depth: int) -> bytes:
    """An event `depth` levels deep: the object, then arrays inside it."""
    return b'{"type": "a.b", "v": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


# Accepted at ingest (and relayed byte-exact), but no JSON answer can carry them back parsed.
UNREPRESENTABLE = {
    "huge-number": b'{"type": "a.b", "v": 1e400}',
    "huge-negative": b'{"type": "a.b", "v": -1e400}',
    "lone-surrogate": b'{"type": "a.b", "v": "\\ud800"}',
    "surrogate-key": b'{"type": "a.b", "\\udfff": 1}',
}
# What a store may hold from before the nesting limit, or from outside the relay.
STORED_ONLY = {
    "deep-1000": nested(1000),
    "deep-1023": nested(1023),
    "deep-5000": nested(5000),
    "invalid-utf8": b'{"type": "a.b", "v": "\xff\xfe"}',
    "nul-bytes": b'{"type": "a.b", "v": "\x00"}\x00',
    "not-json": b"type=a.b&v=1",
}


@pytest.fixture
def ops(make_ops: Callable[..., Ops]) -> Ops:
    hooks = receiver()
    return make_ops(endpoint_yaml("all", hooks.url + "/hooks"), {"all": hooks})


def event(ops: Ops, event_id: str) -> dict[str, object]:
    response = ops.get(f"/v1/events/{event_id}")
    assert response.status_code == 200, response.text
    orjson.loads(response.content)  # strict JSON: no NaN or Infinity, no lone surrogate
    answer: dict[str, object] = json.loads(response.content)  # big integers exact
    return answer


def test_json_the_answer_cannot_carry_comes_back_as_text(ops: Ops) -> None:
    """1e400 and lone surrogates stay accepted; their event is `payload_text`, not a 500."""
    for name, body in UNREPRESENTABLE.items():
        posted = ops.relay.post(body, headers={"Idempotency-Key": name})
        assert posted.status_code == 202, (name, posted.text)
        answer = event(ops, name)
        assert answer["payload"] is None, name
        assert answer["payload_text"] == body.decode(), name
        assert answer["size_bytes"] == len(body)


def test_ordinary_and_edge_json_is_parsed(ops: Ops) -> None:
    """The deepest accepted event, ids past 64 bits and escaped NULs come back parsed."""
    bodies = {
        "deepest": nested(MAX_DEPTH),
        "big-int": b'{"type": "a.b", "v": 123456789012345678901234567890}',
        "nul-escape": b'{"type": "a.b", "v": "\\u0000", "pair": "\\ud83d\\ude00"}',
    }
    for name, body in bodies.items():
        assert ops.relay.post(body, headers={"Idempotency-Key": name}).status_code == 202
        answer = event(ops, name)
        assert answer["payload"] == json.loads(body), name
        assert answer["payload_text"] is None, name


def test_any_stored_body_answers_200_with_its_text(ops: Ops) -> None:
    """Bodies ingest would refuse today (too deep, not UTF-8, not JSON) still show as text."""
    for name, body in STORED_ONLY.items():
        assert ops.relay.post(b'{"type": "a.b"}', headers={"Idempotency-Key": name}
                              ).status_code == 202
        ops.execute("UPDATE events SET body = ? WHERE id = ?", (body, name))
        answer = event(ops, name)
        assert answer["payload"] is None, name
        assert answer["payload_text"] == body.decode("utf-8", errors="replace"), name
