"""Routing: patterns, the tenant rule, and run-time changes that agree with a fresh start."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from relay.config import EndpointConfig
from relay.routing import Router, pattern_matches


def endpoint(name: str, events: list[str], tenant: str | None = None,
             enabled: bool = True) -> EndpointConfig:
    return EndpointConfig.model_validate({
        "name": name, "url": f"https://{name}.example/hooks", "events": events,
        "tenant": tenant, "enabled": enabled, "signature": "x-webhook"})


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
specs = st.tuples(names, st.lists(st.sampled_from(["*", "license.*", "order.created", "x"]),
                                  min_size=1, max_size=2), tenants, st.booleans())
steps = st.lists(st.one_of(st.tuples(st.just("upsert"), specs), st.tuples(st.just("remove"),
                                                                          names),
                           st.tuples(st.just("route"), st.tuples(types, tenants))), max_size=30)


@settings(max_examples=200, deadline=None)
@given(steps)
def test_run_time_changes_match_a_router_built_afresh(script: list[tuple[str, object]]) -> None:
    """Whatever the order of changes and lookups, the answer is a fresh router's (as a set)."""
    router = Router()
    current: dict[str, EndpointConfig] = {}
    for action, arg in script:
        if action == "upsert":
            name, events, tenant, enabled = arg  # type: ignore[misc]
            current[name] = endpoint(name, events, tenant, enabled)
            router.upsert(current[name])
        elif action == "remove":
            current.pop(arg, None)  # type: ignore[arg-type]
            router.remove(arg)  # type: ignore[arg-type]
        else:
            event_type, tenant = arg  # type: ignore[misc]
            fresh = Router(current.values()).route(event_type, tenant)
            assert set(router.route(event_type, tenant)) == set(fresh)
            assert len(router.route(event_type, tenant)) == len(fresh)
