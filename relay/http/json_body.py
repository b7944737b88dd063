"""Reading an event's JSON: once, fast, within a nesting limit, and worded when it fails.

orjson does the one parse of the hot path; the standard library stays the
reference for what orjson refuses and for the wording of every error. A batch
is split into its events' exact source bytes, so that each is relayed as the
platform wrote it.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

import orjson

from relay.http.problems import Problem

__all__ = ["MAX_DEPTH", "field_at", "json_kind", "loads", "nests_deeper", "split_array"]

# Arrays and objects an event may nest (the event object is the first level; a
# batch's own array does not count). Webhook payloads nest a handful of levels;
# 128 is serde_json's default, and far enough below Python's recursion limit
# that every later parse, re-serialisation and page render of the event is safe.
MAX_DEPTH = 128


def json_kind(value: Any) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number",
            bool: "a boolean", type(None): "null", dict: "an object"}.get(type(value), "a value")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_NOT_OPENER = bytes(sorted(set(range(256)) - set(b"[{")))
_NOT_STRUCTURE = bytes(sorted(set(range(256)) - set(b'"[]{}')))
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1


def nests_deeper(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether JSON text nests arrays and objects more than `limit` levels deep.

    Cheap for the usual event, which has no more opening brackets than `limit`
    and so cannot nest deeper. Any other body is scanned with bytes methods
    only: escaped quotes out (pairs of backslashes first, so the quote after
    `\\\\` still ends its string), then what lies between quotes, then the
    running depth of the brackets left. On text that is not JSON the answer is
    an estimate, which is all a refusal needs.
    """
    if len(body.translate(None, _NOT_OPENER)) <= limit:
        return False
    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(body.translate(None, _NOT_STRUCTURE).split(b'"')[::2])
    return max(accumulate(map(_STEP.__getitem__, outside)), default=0) > limit


def _too_deep() -> Problem:
    return Problem(400, "invalid-json",
                   f"the event nests arrays and objects more than {MAX_DEPTH} levels deep; "
                   f"this relay accepts at most {MAX_DEPTH} (the event object is level 1)")


def _check_depth(body: bytes) -> None:
    if nests_deeper(body, MAX_DEPTH):
        raise _too_deep()


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Problem(400, "invalid-json",
                      f"the body is not valid JSON: not UTF-8 at byte {exc.start}") from None


def _invalid(exc: Exception) -> Problem:
    if isinstance(exc, RecursionError):  # far deeper than MAX_DEPTH
        return _too_deep()
    return Problem(400, "invalid-json", f"the body is not valid JSON: {exc}")


def loads(body: bytes, id_field: str | None = None) -> Any:
    """The parsed event: orjson's parse when it agrees with the standard library's.

    orjson parses a 1 KiB event in a quarter of the time, and this is the one
    parse of the hot path. The standard library stays the reference: it parses
    what orjson refuses (lone surrogates, numbers beyond a double such as
    1e400), words every error, and reads the event again when the id field
    came out a float, since orjson reads integers past 64 bits as floats.
    Either way the event nests at most `MAX_DEPTH` levels (orjson alone would
    take 1024, the standard library fails near its recursion limit).
    """
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        _check_depth(body)
        return _stdlib_loads(body)
    _check_depth(body)
    if id_field is not None and type(value) is dict and type(value.get(id_field)) is float:
        return _stdlib_loads(body)
    return value


def _stdlib_loads(body: bytes) -> Any:
    """The standard library's parse, of a body already known to nest within `MAX_DEPTH`."""
    try:
        return _DECODER.decode(_text(body))
    except (ValueError, RecursionError) as exc:
        raise _invalid(exc) from None


def split_array(body: bytes) -> list[tuple[bytes, Any]] | Any:
    """Each element of a JSON array with its exact source bytes; a non-array as parsed.

    The relay promises byte-exact bodies, batch included, so each event keeps the
    bytes the platform wrote for it rather than a re-serialisation. Each event
    is held to the single route's nesting limit, on those bytes.
    """
    text = _text(body)
    try:
        index = _WHITESPACE.match(text, 0).end()  # type: ignore[union-attr]
        if not text.startswith("[", index):
            return _DECODER.decode(text)
        items: list[tuple[bytes, Any]] = []
        index = _WHITESPACE.match(text, index + 1).end()  # type: ignore[union-attr]
        if text.startswith("]", index):
            end = index + 1
        else:
            while True:
                value, end = _DECODER.raw_decode(text, index)
                raw = text[index:end].encode()
                _check_depth(raw)
                items.append((raw, value))
                index = _WHITESPACE.match(text, end).end()  # type: ignore[union-attr]
                if text.startswith(",", index):
                    index = _WHITESPACE.match(text, index + 1).end()  # type: ignore[union-attr]
                    continue
                if text.startswith("]", index):
                    end = index + 1
                    break
                raise ValueError(f"expected ',' or ']' at char {index}")
        if text[end:].strip(" \t\n\r"):
            raise ValueError(f"extra data after the array at char {end}")
    except (ValueError, RecursionError) as exc:
        raise _invalid(exc) from None
    return items


def field_at(value: Any, path: str) -> Any:
    """The value at a dotted path (`data.userId`) of a parsed event; None when absent."""
    for name in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(name)
    return value
