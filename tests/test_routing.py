"""Routing: patterns, the tenant and source rules, and run-time changes that agree with a
fresh start."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from relay.config import EndpointConfig
from relay.routing import Router, pattern_matches


def endpoint(name: str, events: list[str], tenant: str | None = None,
             enabled: bool = True, sources: list[str] | None = None) -> EndpointConfig:
    return EndpointConfig.model_validate({
        "name": name, "url": f"https://{name}.example/hooks", "events": events,
        "tenant": tenant, "enabled": enabled, "signature": "x-webhook", "sources": sources})


def test_patterns() -> None:
    assert pattern_matches("license.*", "license.created")
    assert pattern_matches("*.created", "order.created")
    assert not pattern_matches("license.*", "licenses.created")
    assert pattern_matches("*", "a")


def test_untenanted_endpoints_get_every_tenant_and_tenanted_ones_only_theirs() -> None:
    router = Router([endpoint("audit", ["*"]), endpoint("acme", ["license.*"], "acme"),
                     endpoint("globex", ["*"], "globex"), endpoint("off", ["*"], enabled=False)])
    assert router.route("license.created") == ("audit",)
    assert router.route("license.created", "acme") == ("audit", "acme")
    assert router.route("license.created", "globex") == ("audit", "globex")
    assert router.route("order.created", "acme") == ("audit",)
    assert router.route("order.created", "initech") == ("audit",)


def test_endpoints_with_sources_get_only_those_sources_events() -> None:
    router = Router([endpoint("all", ["*"]), endpoint("babel", ["*"], sources=["babel"]),
                     endpoint("plain", ["license.*"], sources=["default"]),
                     endpoint("acme-babel", ["*"], "acme", sources=["babel", "chain"])])
    assert router.route("license.created") == ("all", "plain")
    assert router.route_source("babel", "license.created") == ("all", "babel")
    assert router.route_source("babel", "license.created", "acme") == ("all", "babel",
                                                                       "acme-babel")
    assert router.route_source("chain", "order.created", "acme") == ("all", "acme-babel")
    assert router.route_source("other", "license.created") == ("all",)
    router.upsert(endpoint("plain", ["license.*"], sources=["other"]))
    assert router.route("license.created") == ("all",)
    assert router.route_source("other", "license.created") == ("all", "plain")


def test_changes_update_types_already_routed() -> None:
    router = Router([endpoint("a", ["*"])])
    assert router.route("x.y", "t1") == ("a",)
    router.upsert(endpoint("b", ["x.*"], "t1"))
    assert router.route("x.y", "t1") == ("a", "b")
    router.upsert(endpoint("b", ["x.*"], "t2"))  # moved to another tenant
    assert router.route("x.y", "t1") == ("a",)
    assert router.route("x.y", "t2") == ("a", "b")
    router.upsert(endpoint("a", ["z.*"]))  # no longer subscribed
    assert router.route("x.y", "t2") == ("b",)
    router.remove("b")
    router.remove("missing")
    assert router.route("x.y", "t2") == ()


names = st.sampled_from(["a", "b", "c", "d"])
tenants = st.sampled_from([None, "t1", "t2"])
types = st.sampled_from(["license.created", "order.created", "x"])
origins = st.sampled_from([None, "babel", "chain"])  # None: /v1/events
source_lists = st.sampled_from([None, ["babel"], ["default"], ["babel", "default"], ["chain"]])
specs = st.tuples(names, st.lists(st.sampled_from(["*", "license.*", "order.created", "x"]),
                                  min_size=1, max_size=2), tenants, st.booleans(), source_lists)
steps = st.lists(st.one_of(st.tuples(st.just("upsert"), specs), st.tuples(st.just("remove"),
                                                                          names),
                           st.tuples(st.just("route"), st.tuples(types, tenants, origins))),
                 max_size=30)


def routed(router: Router, event_type: str, tenant: str | None,
           origin: str | None) -> tuple[str, ...]:
    if origin is None:
        return router.route(event_type, tenant)
    return router.route_source(origin, event_type, tenant)


@settings(max_examples=200, deadline=None)
@given(steps)
def test_run_time_changes_match_a_router_built_afresh(script: list[tuple[str, object]]) -> None:
    """Whatever the order of changes and lookups, the answer is a fresh router's (as a set)."""
    router = Router()
    current: dict[str, EndpointConfig] = {}
    for action, arg in script:
        if action == "upsert":
            name, events, tenant, enabled, sources = arg  # type: ignore[misc]
            current[name] = endpoint(name, events, tenant, enabled, sources)
            router.upsert(current[name])
        elif action == "remove":
            current.pop(arg, None)  # type: ignore[arg-type]
            router.remove(arg)  # type: ignore[arg-type]
        else:
            event_type, tenant, origin = arg  # type: ignore[misc]
            fresh = routed(Router(current.values()), event_type, tenant, origin)
            assert set(routed(router, event_type, tenant, origin)) == set(fresh)
            assert len(routed(router, event_type, tenant, origin)) == len(fresh)
