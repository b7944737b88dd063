"""The relay's compact JSON is byte for byte what node's JSON.stringify writes."""

from __future__ import annotations

import json
import random
import struct

import pytest

from relay.wire import compact_body, compact_json, js_number
from tests.node import node_stringify
from tests.seeds import SEED_PAYLOADS

EDGES = [
    '{"big": 123456789012345678901234567890, "beyond": 1e400, "below": -1e400}',
    '{"lone": "\\ud800 x\\udc00y", "pair": "\\ud83d\\ude00", "controls": "\\u0000\\u001f\\u007f"}',
    '{"__proto__": {"a": 1}, "constructor": [], "": "empty key"}',
    '[[], {}, [{}], 0, -0.0, 1e-6, 1e-7, 1e20, 1e21, 123e-20, 0.000001234]',
]


def test_event_bodies_read_back_as_node_writes_them() -> None:
    texts = SEED_PAYLOADS + EDGES
    expected = node_stringify(texts)
    for text, written in zip(texts, expected, strict=True):
        assert compact_body(text.encode()) == written.encode(), text


def test_every_kind_of_double_is_written_as_javascript_writes_it() -> None:
    """Doubles from every corner of the range, and integers past 2**53, against node."""
    rng = random.Random(23)
    values: list[str] = []
    while len(values) < 3000:
        x = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        if x == x and abs(x) != float("inf"):
            values.append(repr(x))
    values += [repr(rng.random() * 10.0 ** rng.randint(-25, 25)) for _ in range(1500)]
    values += [str(rng.randint(-10**25, 10**25)) for _ in range(500)]
    expected = node_stringify([f"[{value}]" for value in values])
    for value, written in zip(values, expected, strict=True):
        assert f"[{js_number(float(value))}]" == written, value


def test_what_the_relay_writes_is_a_fixed_point_of_stringify() -> None:
    """`relay send` and test events: a receiver that re-serialises gets the same bytes."""
    data = json.loads(SEED_PAYLOADS[1])
    sent = compact_json({"type": "license.created", "data": data})
    [again] = node_stringify([sent.decode()])
    assert again.encode() == sent
    assert sent.startswith(b'{"type":"license.created","data":{"id":"550e8400')
    assert b'"userId":12345678901234567000' in sent


def test_a_body_that_is_not_json_is_refused() -> None:
    with pytest.raises(ValueError, match="NaN is not JSON"):
        compact_body(b'{"a": NaN}')
    with pytest.raises(UnicodeDecodeError):
        compact_body(b"\xff")
