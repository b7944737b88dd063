"""Content filters: an endpoint's `filter:` expression over the event's fields.

    data.productId in ["prod_42", "prod_43"] and data.seats >= 10
    type == "license.renewed" or not data.trial exists

The language is small on purpose: a dotted path (`data.customer.id`, a number
indexes an array: `data.items.0.sku`) compared with `==`, `!=`, `<`, `<=`,
`>`, `>=` to a JSON literal, `in [...]` a list of literals, `exists`, joined
by `and`, `or`, `not` and parentheses. Strings are JSON strings in double
quotes. `==` is JSON equality (`1` equals `1.0`, `true` is not `1`); `!=` is
its negation, so a missing field is `!=` anything; ordering comparisons take
numbers on both sides and are false otherwise. Nothing is evaluated as Python.

Filters are parsed when relay.yaml or an API body is validated and compiled
to closures; routing (`relay.routing`) runs them once per event at ingest,
only for the routes that have filtered endpoints. `FilterSet` serves many
endpoints at once: filters that are one `path == literal` or `path in [...]`
share a lookup of the path and a dict from value to endpoints, so a hundred
endpoints that each pick a product cost one dictionary lookup per event.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["FIELD_PATH_RE", "MAX_FILTER_CHARS", "Filter", "FilterSet", "Junction", "Test",
           "parse_filter"]

MAX_FILTER_CHARS = 2000
_MAX_DEPTH = 32
_MISSING: Final = object()
_NO_MATCH: Final = object()  # the index key of a value no literal equals (an object, a list)

_TOKEN_RE = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*")
  | (?P<number>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?(?![A-Za-z0-9_$@.-]))
  | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,)
  | (?P<word>[A-Za-z0-9_$@.-]+)
  | (?P<bad>.)
""", re.VERBOSE | re.DOTALL)
# A dotted path into the payload (`CustomerId`, `data.userId`), as filters and
# `ingest.tenant_field` take it: up to eight names; in a filter a number indexes an array.
FIELD_PATH_RE = re.compile(r"[A-Za-z0-9_$@-]{1,64}(?:\.[A-Za-z0-9_$@-]{1,64}){0,7}")
_KEYWORDS = frozenset({"and", "or", "not", "in", "exists", "true", "false", "null"})
_LITERAL_WORDS: dict[str, Any] = {"true": True, "false": False, "null": None}
_HINTS = {"=": " (equality is `==`)", "'": " (strings are in double quotes)",
          "&": " (use `and`)", "|": " (use `or`)", "!": " (use `not`, or `!=`)"}
_ORDERING = frozenset({"<", "<=", ">", ">="})

Predicate = Callable[[Any], bool]
Getter = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Test:
    """One comparison: `path op literal`, `path in [...]` (op "in") or `path exists`."""

    path: str
    op: str
    literal: Any = None


@dataclass(frozen=True, slots=True)
class Junction:
    """`and`, `or` (two parts or more) or `not` (one part)."""

    op: str
    parts: tuple[Node, ...]


Node = Test | Junction


def _key(value: Any) -> Hashable:
    """What equality compares, as a dict key: `true` apart from `1`, nothing equal to a list."""
    if value is True or value is False:
        return ("bool", value)
    if value is None or isinstance(value, str | int | float):
        return value
    return _NO_MATCH


def _getter(path: str) -> Getter:
    """The value at `path`, or `_MISSING`; the usual one or two steps without a loop."""
    steps = tuple(path.split("."))
    if len(steps) == 1 and not steps[0].isdigit():
        (only,) = steps
        return lambda value: value.get(only, _MISSING) if type(value) is dict else _MISSING
    if len(steps) == 2 and not any(step.isdigit() for step in steps):
        first, second = steps

        def two(value: Any) -> Any:
            if type(value) is dict:
                value = value.get(first)
                if type(value) is dict:
                    return value.get(second, _MISSING)
            return _MISSING

        return two

    def walk(value: Any) -> Any:
        for step in steps:
            if type(value) is dict:
                value = value.get(step, _MISSING)
            elif type(value) is list and step.isdigit() and int(step) < len(value):
                value = value[int(step)]
            else:
                return _MISSING
        return value

    return walk


_NUMBERS = (int, float)  # JSON's numbers; bool, a subclass of int, is not one


def _is_number(value: Any) -> bool:
    return type(value) in _NUMBERS


def _equals(get: Getter, literal: Any) -> Predicate:
    """`==` specialised on the literal's type: a string equals only a string, and so on."""
    if literal is None or literal is True or literal is False:
        return lambda value: get(value) is literal
    if isinstance(literal, str):
        return lambda value: get(value) == literal
    return lambda value: (found := get(value)) == literal and type(found) in _NUMBERS


def _ordered(op: str, get: Getter, literal: float) -> Predicate:
    if op == "<":
        return lambda value: type(found := get(value)) in _NUMBERS and found < literal
    if op == "<=":
        return lambda value: type(found := get(value)) in _NUMBERS and found <= literal
    if op == ">":
        return lambda value: type(found := get(value)) in _NUMBERS and found > literal
    return lambda value: type(found := get(value)) in _NUMBERS and found >= literal


def _compile_test(test: Test) -> Predicate:
    get = _getter(test.path)
    if test.op == "exists":
        return lambda value: get(value) is not _MISSING
    if test.op == "in":
        keys = test.literal
        return lambda value: _key(get(value)) in keys
    if test.op == "==":
        return _equals(get, test.literal)
    if test.op == "!=":
        equal = _equals(get, test.literal)
        return lambda value: not equal(value)
    return _ordered(test.op, get, test.literal)


def compile_node(node: Node) -> Predicate:
    if isinstance(node, Test):
        return _compile_test(node)
    parts = [compile_node(part) for part in node.parts]
    if node.op == "not":
        (inner,) = parts
        return lambda value: not inner(value)
    if len(parts) == 2:
        first, second = parts
        if node.op == "and":
            return lambda value: first(value) and second(value)
        return lambda value: first(value) or second(value)
    if node.op == "and":
        return lambda value: all(part(value) for part in parts)
    return lambda value: any(part(value) for part in parts)


def _index_keys(node: Node) -> frozenset[Hashable] | None:
    if isinstance(node, Test) and node.op == "==":
        return frozenset({_key(node.literal)})
    if isinstance(node, Test) and node.op == "in":
        keys: frozenset[Hashable] = node.literal
        return keys
    return None


@dataclass(frozen=True, slots=True)
class Filter:
    """A parsed filter: its text (what relay.yaml and the API show), its tree, its test."""

    text: str
    node: Node
    matches: Predicate

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Filter) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"Filter({self.text!r})"

    def index(self) -> tuple[str, frozenset[Hashable], Predicate | None] | None:
        """How a `FilterSet` can pick this filter by one field's value, without running it.

        A filter that is `path == literal` or `path in [...]`, or an `and`
        with one of those among its parts: the path, the keys of the values
        that part accepts, and the test of the other parts (None: no others).
        """
        keys = _index_keys(self.node)
        if keys is not None and isinstance(self.node, Test):
            return self.node.path, keys, None
        if isinstance(self.node, Junction) and self.node.op == "and":
            for at, part in enumerate(self.node.parts):
                keys = _index_keys(part)
                if keys is not None and isinstance(part, Test):
                    rest = self.node.parts[:at] + self.node.parts[at + 1:]
                    remainder = rest[0] if len(rest) == 1 else Junction("and", rest)
                    return part.path, keys, compile_node(remainder)
        return None


class _Parser:
    """Recursive descent over the tokens; every error says what was expected where."""

    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str, int]] = []
        for found in _TOKEN_RE.finditer(text):
            group = found.lastgroup or "bad"
            if group == "bad":
                hint = _HINTS.get(found.group(), "")
                raise ValueError(f"unexpected {found.group()!r} at character "
                                 f"{found.start() + 1}{hint}")
            if group != "space":
                kind = group
                if group == "word" and found.group() in _KEYWORDS:
                    kind = "keyword"
                self.tokens.append((kind, found.group(), found.start() + 1))
        self.at = 0
        self.depth = 0

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.at] if self.at < len(self.tokens) else ("end", "", 0)

    def take(self, value: str) -> bool:
        if self.peek()[1] == value and self.peek()[0] in ("keyword", "op"):
            self.at += 1
            return True
        return False

    def fail(self, expected: str) -> ValueError:
        kind, value, where = self.peek()
        found = "the end" if kind == "end" else f"{value!r} at character {where}"
        return ValueError(f"expected {expected}, found {found}")

    def parse(self) -> Node:
        if not self.tokens:
            raise ValueError("the filter is empty; leave `filter` out to get every event")
        node = self.either()
        if self.peek()[0] != "end":
            raise self.fail("`and`, `or` or the end")
        return node

    def either(self) -> Node:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise ValueError(f"the filter nests more than {_MAX_DEPTH} levels deep")
        parts = [self.both()]
        while self.take("or"):
            parts.append(self.both())
        self.depth -= 1
        return parts[0] if len(parts) == 1 else Junction("or", tuple(parts))

    def both(self) -> Node:
        parts = [self.unary()]
        while self.take("and"):
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else Junction("and", tuple(parts))

    def unary(self) -> Node:
        if self.take("not"):
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise ValueError(f"the filter nests more than {_MAX_DEPTH} levels deep")
            inner = self.unary()
            self.depth -= 1
            return Junction("not", (inner,))
        if self.take("("):
            inner = self.either()
            if not self.take(")"):
                raise self.fail("`)`")
            return inner
        return self.test()

    def literal(self) -> Any:
        kind, value, _ = self.peek()
        if kind in ("string", "number"):
            self.at += 1
            return json.loads(value)
        if kind == "keyword" and value in _LITERAL_WORDS:
            self.at += 1
            return _LITERAL_WORDS[value]
        raise self.fail("a string in double quotes, a number, true, false or null")

    def test(self) -> Test:
        kind, path, where = self.peek()
        if kind != "word":
            raise self.fail("a field path such as data.productId")
        if not FIELD_PATH_RE.fullmatch(path):
            raise ValueError(f"{path[:80]!r} at character {where} is not a field path: up to "
                             "8 names of letters, digits, '_', '-', '$' or '@', joined by dots")
        self.at += 1
        if self.take("exists"):
            return Test(path, "exists")
        if self.take("in"):
            if not self.take("["):
                raise self.fail("`[` after `in`")
            literals = [self.literal()]
            while self.take(","):
                literals.append(self.literal())
            if not self.take("]"):
                raise self.fail("`,` or `]`")
            return Test(path, "in", frozenset(_key(literal) for literal in literals))
        op_kind, op, _ = self.peek()
        if op_kind != "op" or op not in ("==", "!=", *_ORDERING):
            raise self.fail(f"`==`, `!=`, `<`, `<=`, `>`, `>=`, `in` or `exists` after {path}")
        self.at += 1
        literal = self.literal()
        if op in _ORDERING and not _is_number(literal):
            raise ValueError(f"`{op}` compares numbers; {path} {op} needs a number, "
                             f"got {json.dumps(literal)}")
        return Test(path, op, literal)


def parse_filter(text: Any) -> Filter | None:
    """A `filter:` value to a `Filter` (None when absent); `ValueError` says what is wrong."""
    if text is None or isinstance(text, Filter):
        return text
    if not isinstance(text, str):
        raise ValueError("expected an expression such as data.productId == \"prod_42\", "
                         f"got {type(text).__name__}")
    if len(text) > MAX_FILTER_CHARS:
        raise ValueError(f"at most {MAX_FILTER_CHARS} characters, got {len(text)}")
    node = _Parser(text).parse()
    return Filter(text, node, compile_node(node))


class FilterSet:
    """The filtered endpoints of one route: which of them an event passes, in their order."""

    __slots__ = ("_indexes", "_order", "_others")

    def __init__(self, endpoints: Iterable[tuple[str, Filter]]) -> None:
        self._order: dict[str, int] = {}
        by_path: dict[str, dict[Hashable, list[tuple[str, Predicate | None]]]] = {}
        self._others: list[tuple[str, Predicate]] = []
        for name, flt in endpoints:
            self._order[name] = len(self._order)
            index = flt.index()
            if index is None:
                self._others.append((name, flt.matches))
                continue
            path, keys, rest = index
            values = by_path.setdefault(path, {})
            for key in keys:
                values.setdefault(key, []).append((name, rest))
        self._indexes = [(_getter(path), {key: tuple(names) for key, names in values.items()})
                         for path, values in by_path.items()]

    def __len__(self) -> int:
        return len(self._order)

    def passing(self, event: Any) -> tuple[str, ...]:
        found: list[str] = []
        for get, values in self._indexes:
            candidates = values.get(_key(get(event)))
            if candidates:
                found.extend(name for name, rest in candidates if rest is None or rest(event))
        if self._others:
            found.extend(name for name, matches in self._others if matches(event))
        if len(found) > 1:
            found.sort(key=self._order.__getitem__)
        return tuple(found)
