"""JSON exactly as JavaScript's `JSON.stringify` writes it.

Receivers written in JavaScript often verify a signature over
`JSON.stringify(req.body)` (LicenseChain's own example does) instead of the
raw body. For them the relay's own events (`relay send`, `relay test`, test
events) are written as JSON.stringify would write them, and an endpoint with
`body: compact` gets each event as `JSON.stringify(JSON.parse(body))`, signed
over those bytes.

What JavaScript does, and so what this does:

- no whitespace; object keys in JavaScript's property order: keys that are
  array indices (`"0"`, `"17"`, below 2**32 - 1) first, ascending, then the
  others in the order written; a repeated key keeps its first place and its
  last value;
- every number is a double: `12345678901234567890` becomes
  `12345678901234567000`, `1E5` `100000`, `-0` `0`, `1e400` (Infinity) `null`;
  written with the shortest digits that read back to the same double, in
  exponent form from 1e21 up and below 1e-6 (`1e21`, `1.5e-7`);
- strings escape `"`, `\\` and the control characters below U+0020 only
  (`\\b \\t \\n \\f \\r`, the others `\\u00xx`); everything else is written as
  UTF-8 as it is, except a lone surrogate, written `\\udxxx` (ES2019's
  well-formed JSON.stringify).
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["compact_body", "compact_json", "js_number"]

_INDEX_LIMIT = 2**32 - 1  # the largest array index is 2**32 - 2
_EXACT_LIMIT = 2.0**53  # below this an integral double's digits are its shortest form
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_encode_string = json.encoder.encode_basestring


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# Numbers parse as doubles, as JSON.parse reads them (the text, correctly rounded).
_DECODER = json.JSONDecoder(parse_int=float, parse_constant=_reject_constant)


def compact_json(value: Any) -> bytes:
    """`value` (dicts, lists, str, int, float, bool, None) as JSON.stringify writes it."""
    parts: list[str] = []
    _write(value, parts)
    text = "".join(parts)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, from a "\ud800" escape in the source
        return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text).encode("utf-8")


def compact_body(body: bytes) -> bytes:
    """`JSON.stringify(JSON.parse(body))`; raises `ValueError` for a body that is not JSON."""
    return compact_json(_DECODER.decode(body.decode("utf-8")))


def js_number(x: float) -> str:
    """A double as JavaScript's Number::toString writes it (ECMA-262 6.1.6.1.20)."""
    if x != x or x in (float("inf"), float("-inf")):
        return "null"  # what JSON.stringify writes for NaN and the infinities
    if x == 0:
        return "0"
    if x.is_integer() and -_EXACT_LIMIT < x < _EXACT_LIMIT:
        return str(int(x))
    sign = "-" if x < 0 else ""
    mantissa, _, exponent = repr(abs(x)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + int(exponent or 0)  # the decimal point sits after this many digits
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    k, n = len(digits), point
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    e = n - 1
    power = f"e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + (digits if k == 1 else digits[0] + "." + digits[1:]) + power


def _key_order(obj: dict[str, Any]) -> list[str]:
    """JavaScript's order of own properties: array indices ascending, then as inserted."""
    indices = [key for key in obj if key.isdigit() and key.isascii()
               and (key == "0" or key[0] != "0") and int(key) < _INDEX_LIMIT]
    if not indices:
        return list(obj)
    chosen = set(indices)
    return sorted(indices, key=int) + [key for key in obj if key not in chosen]


def _write(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(_encode_string(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, float):
        out.append(js_number(value))
    elif isinstance(value, int):
        try:
            out.append(js_number(float(value)))
        except OverflowError:  # past the largest double: Infinity in JavaScript
            out.append("null")
    elif isinstance(value, dict):
        out.append("{")
        for index, key in enumerate(_key_order(value)):
            if index:
                out.append(",")
            out.append(_encode_string(key))
            out.append(":")
            _write(value[key], out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise TypeError(f"{type(value).__name__} is not a JSON value")
