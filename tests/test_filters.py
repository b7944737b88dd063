"""Content filters: the expression language, its errors, and routing that runs it."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.config import EndpointConfig, parse_config
from relay.exceptions import ConfigError
from relay.filters import Filter, FilterSet, parse_filter
from relay.routing import Router
from tests.conftest import SECRET, endpoint_yaml
from tests.support import Receiver, RelayThread, base_config, free_port

LICENSE = {"type": "license.created", "data": {
    "licenseKey": "ABCD-1234", "productId": "prod_42", "seats": 25, "trial": False,
    "price": 49.5, "coupon": None, "customer": {"id": "cus_9", "country": "DE"},
    "items": [{"sku": "PRO-1Y"}, {"sku": "SUPPORT"}]}}


def matches(text: str, event: Any = None) -> bool:
    parsed = parse_filter(text)
    assert parsed is not None
    return parsed.matches(LICENSE if event is None else event)


@pytest.mark.parametrize("text", [
    'data.productId == "prod_42"',
    'data.productId in ["prod_1", "prod_42"]',
    "data.seats >= 25", "data.seats > 24", "data.seats < 26", "data.seats <= 25",
    "data.price == 49.5", "data.seats == 25.0", "data.trial == false",
    "data.coupon exists", "data.coupon == null", "not data.refund exists",
    'data.customer.country != "US"', 'data.refund != "x"',
    'data.items.1.sku == "SUPPORT"',
    'type == "license.created" and data.seats >= 10',
    'data.seats > 100 or data.customer.id == "cus_9"',
    'not (data.seats > 100 or data.trial == true)',
    '(data.seats >= 10 and (data.productId == "prod_1" or data.productId == "prod_42"))',
    'data.customer.id in ["cus_9"] and data.price > -1e3',
])
def test_true_for_the_license_event(text: str) -> None:
    assert matches(text)


@pytest.mark.parametrize("text", [
    'data.productId == "prod_43"', 'data.productId in ["prod_1"]',
    "data.seats > 25", "data.seats < 25", 'data.licenseKey > 1',
    "data.trial == 0",  # false is not 0
    "data.seats == \"25\"",  # nor is a string a number
    "data.refund exists", "data.refund == null", 'data.items.2.sku exists',
    'data.customer == "cus_9"',  # an object equals no literal
    'type == "license.created" and data.seats > 100',
    'not data.coupon exists',
])
def test_false_for_the_license_event(text: str) -> None:
    assert not matches(text)


def test_a_payload_that_is_not_an_object_matches_nothing_but_negations() -> None:
    assert not matches("data.x exists", [1, 2])
    assert matches('data.x != "y"', "text")


@pytest.mark.parametrize(("text", "message"), [
    ("", "the filter is empty"),
    ("data.x ==", "expected a string in double quotes, a number, true, false or null, "
                  "found the end"),
    ("data.x = 1", "unexpected '=' at character 8 (equality is `==`)"),
    ("data.x == 'a'", "unexpected \"'\" at character 11 (strings are in double quotes)"),
    ('data.x > "a"', '`>` compares numbers; data.x > needs a number, got "a"'),
    ("data.x == abc", "found 'abc' at character 11"),
    ("(data.x exists", "expected `)`, found the end"),
    ("data.x in [1,]", "found ']' at character 14"),
    ("data.x in 1", "expected `[` after `in`"),
    ("1 == data.x", "expected a field path such as data.productId, found '1'"),
    ("data.x exists data.y exists", "expected `and`, `or` or the end"),
    ("data.x", "`==`, `!=`, `<`, `<=`, `>`, `>=`, `in` or `exists` after data.x"),
    ("a.b.c.d.e.f.g.h.i == 1", "'a.b.c.d.e.f.g.h.i' at character 1 is not a field path"),
    ("data..x exists", "'data..x' at character 1 is not a field path"),
    ("(" * 40 + "a exists" + ")" * 40, "nests more than 32 levels"),
])
def test_errors_say_what_and_where(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_filter(text)


def test_relay_yaml_names_the_key_and_serializes_what_was_written() -> None:
    written = 'data.productId in ["prod_42"] and data.seats >= 10'
    endpoint = {"name": "crm", "url": "https://crm.example/h", "secret": SECRET,
                "filter": written}
    config = parse_config("endpoints:\n  - " + json.dumps(endpoint) + "\n")
    parsed = config.endpoints[0]
    assert parsed.content_filter == parse_filter(written)
    assert isinstance(parsed.content_filter, Filter) and parsed.content_filter.text == written
    assert parsed.model_dump(mode="json", by_alias=True)["filter"] == written
    for bad, expected in ((5, "expected an expression"), ("data.x >", "expected a string")):
        with pytest.raises(ConfigError) as caught:
            parse_config("endpoints:\n  - " + json.dumps({**endpoint, "filter": bad}) + "\n")
        assert f"endpoints[0].filter: {expected}" in str(caught.value)


def endpoint(name: str, flt: str | None = None, tenant: str | None = None,
             events: tuple[str, ...] = ("*",)) -> EndpointConfig:
    return EndpointConfig.model_validate({
        "name": name, "url": f"https://{name}.example/hooks", "events": list(events),
        "tenant": tenant, "signature": "x-webhook", "filter": flt})


def test_routing_runs_filters_per_event_and_keeps_unfiltered_endpoints() -> None:
    router = Router([endpoint("audit"), endpoint("p42", 'data.productId == "prod_42"'),
                     endpoint("big", "data.seats >= 100"),
                     endpoint("acme", 'data.productId in ["prod_42", "prod_7"]', "acme")])
    assert router.route("license.created", None, LICENSE) == ("audit", "p42")
    assert router.route("license.created", "acme", LICENSE) == ("audit", "p42", "acme")
    other = {"type": "license.created", "data": {"productId": "prod_7", "seats": 500}}
    assert router.route("license.created", "acme", other) == ("audit", "big", "acme")
    router.upsert(endpoint("p42", 'data.productId == "prod_7"'))  # its filter changed
    assert router.route("license.created", None, other) == ("audit", "big", "p42")
    router.upsert(endpoint("big"))  # its filter removed: every event again
    assert router.route("license.created", None, LICENSE) == ("audit", "big")
    router.remove("acme")
    assert router.route("license.created", "acme", other) == ("audit", "big", "p42")


def test_routing_filters_the_events_of_sources_as_well() -> None:
    """Sources share the routes of /v1/events (`_Route.endpoints`), filters included."""
    router = Router([endpoint("p42", 'data.productId == "prod_42"'), endpoint("all")])
    other = {"type": "license.created", "data": {"productId": "prod_7"}}
    assert router.route_source("babel", "license.created", None, LICENSE) == ("all", "p42")
    assert router.route_source("babel", "license.created", None, other) == ("all",)


@pytest.mark.both_backends
def test_an_event_from_a_source_is_filtered_at_ingest(tmp_path: Any, receiver: Receiver) -> None:
    """A platform's own webhook taken at /v1/sources/NAME goes only to the endpoints whose
    filter it passes, exactly as an event posted to /v1/events does."""
    port, db = free_port(), tmp_path / "relay.db"
    endpoints = (endpoint_yaml("big", receiver.url + "/big", filter="Seats >= 10")
                 + endpoint_yaml("all", receiver.url + "/all"))
    extra = ("sources:\n  - {name: shop, verify: {scheme: none}, "
             "type_from: 'field:EventType'}\n")
    config = tmp_path / "relay.yaml"
    config.write_text(base_config(port, db, endpoints, extra))
    relay = RelayThread(config, port, db).start()
    try:
        small = relay.post(json.dumps({"EventType": "license.created", "Seats": 2}),
                           {"Idempotency-Key": "src-small"}, path="/v1/sources/shop")
        big = relay.post(json.dumps({"EventType": "license.created", "Seats": 25}),
                         {"Idempotency-Key": "src-big"}, path="/v1/sources/shop")
        assert small.status_code == 202 and big.status_code == 202, (small.text, big.text)
        assert small.json()["deliveries"] == 1 and big.json()["deliveries"] == 2
        ids = {small.json()["id"]: ["all"], big.json()["id"]: ["all", "big"]}
        for event_id, expected in ids.items():
            assert sorted(row[0] for row in relay.rows(
                "SELECT endpoint FROM deliveries WHERE event_id = ?", (event_id,))) == expected
        received = receiver.wait_for(3)
        assert [json.loads(r.body)["Seats"] for r in received if r.path == "/big"] == [25]
    finally:
        relay.stop()


def test_a_route_without_filters_returns_its_names_unchanged() -> None:
    """Events of routes without filtered endpoints pay nothing: the cached tuple itself."""
    router = Router([endpoint("a"), endpoint("b")])
    first = router.route("x.y", None, LICENSE)
    assert first == ("a", "b") and router.route("x.y", None, {}) is first


_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([1.0, 2.5]),
                    st.sampled_from(["a", "b", "1"]))
_PATHS = st.sampled_from(["k", "data.k", "data.j"])


def _literal(value: Any) -> str:
    return json.dumps(value)


_FILTERS = st.one_of(
    st.builds(lambda p, v: f"{p} == {_literal(v)}", _PATHS, _VALUES),
    st.builds(lambda p, vs: f"{p} in [{', '.join(map(_literal, vs))}]", _PATHS,
              st.lists(_VALUES, min_size=1, max_size=3)),
    st.builds(lambda p, n: f"{p} >= {n}", _PATHS, st.integers(-3, 3)),
    st.builds(lambda p: f"{p} exists", _PATHS),
    st.builds(lambda p, v: f"not {p} == {_literal(v)}", _PATHS, _VALUES),
)
_FILTERS = st.one_of(_FILTERS, st.builds(lambda a, b: f"{a} and {b}", _FILTERS, _FILTERS),
                     st.builds(lambda a, b: f"{a} or {b}", _FILTERS, _FILTERS))
_EVENTS = st.fixed_dictionaries({}, optional={
    "k": _VALUES, "data": st.fixed_dictionaries({}, optional={"k": _VALUES, "j": _VALUES})})


@settings(max_examples=200, deadline=None)
@given(st.lists(_FILTERS, min_size=1, max_size=8), _EVENTS)
def test_a_filter_set_agrees_with_each_filter_alone(texts: list[str], event: Any) -> None:
    """The shared index of equality filters picks what each filter would, in order."""
    filters = [(f"e{i}", parse_filter(text)) for i, text in enumerate(texts)]
    alone = tuple(name for name, flt in filters if flt is not None and flt.matches(event))
    together = FilterSet((name, flt) for name, flt in filters if flt is not None)
    assert together.passing(event) == alone
