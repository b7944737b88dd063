"""Which endpoints an event goes to: its type against their patterns, its tenant against theirs.

Patterns are exact names and `*` globs (`license.*`, `*`). An endpoint without
a tenant gets every event its patterns match; one with tenant T only the
events of tenant T. An endpoint with `sources` gets only the events of those
sources (`default` is /v1/events); one without, the events of every source.

A relay sees a few dozen event types and millions of events, and may hold
ten thousand endpoints of five thousand tenants, so routing must not look at
every endpoint per event: the endpoints matching a type are worked out once
per type, split into the untenanted ones and a map from tenant to its own,
and an event costs two lookups. Endpoints added, changed or removed at run
time (the endpoint API) update the types already worked out, one endpoint at
a time, instead of starting over.

An endpoint with a `filter:` also needs the event's payload: its filter runs
here, once per event at ingest, so the deliveries stored are the ones to make
and no attempt looks at the payload again (`relay.filters`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from relay.config import EndpointConfig
from relay.config.sources import DEFAULT_SOURCE
from relay.filters import Filter, FilterSet

__all__ = ["Router", "pattern_matches"]

_CACHE_LIMIT = 10_000  # event types remembered; ingest validates them, so few exist


@lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def pattern_matches(pattern: str, event_type: str) -> bool:
    """`*` matches any run of characters, dots included: `license.*`, `*.created`, `*`."""
    if "*" not in pattern:
        return pattern == event_type
    return _compile(pattern).fullmatch(event_type) is not None


def _subscribed(endpoint: EndpointConfig, event_type: str, source: str = DEFAULT_SOURCE) -> bool:
    return (endpoint.enabled
            and (endpoint.sources is None or source in endpoint.sources)
            and any(pattern_matches(p, event_type) for p in endpoint.events))


@dataclass(frozen=True, slots=True)
class _Targets:
    """The endpoints of one type and one tenant (or none), in the order they were added.

    `plain` are those without a filter, `filters` the others': an event
    without filtered endpoints to pass costs nothing more than before.
    """

    names: tuple[str, ...] = ()
    plain: tuple[str, ...] = ()
    filtered: tuple[tuple[str, Filter], ...] = ()
    filters: FilterSet | None = None

    def select(self, event: Any) -> tuple[str, ...]:
        if self.filters is None:
            return self.names
        return self.plain + self.filters.passing(event)

    def changed(self, add: EndpointConfig | None = None, drop: str | None = None) -> _Targets:
        names = tuple(n for n in self.names if n != drop)
        plain = tuple(n for n in self.plain if n != drop)
        filtered = tuple(pair for pair in self.filtered if pair[0] != drop)
        if add is not None:
            names = (*names, add.name)
            if add.content_filter is None:
                plain = (*plain, add.name)
            else:
                filtered = (*filtered, (add.name, add.content_filter))
        filters = FilterSet(filtered) if filtered else None
        return _Targets(names, plain, filtered, filters)


_NONE = _Targets()


@dataclass(slots=True)
class _Route:
    """The endpoints of one event type: the untenanted ones and each tenant's own."""

    untenanted: _Targets = _NONE
    by_tenant: dict[str, _Targets] = field(default_factory=dict)

    def endpoints(self, tenant: str | None, event: Any) -> tuple[str, ...]:
        """The untenanted endpoints, then the tenant's own (if the event has a tenant).

        `event` is the parsed payload, for the filtered endpoints; where none
        has a filter this is the two lookups it always was.
        """
        untenanted = self.untenanted
        own = self.by_tenant.get(tenant) if tenant is not None and self.by_tenant else None
        if own is None:
            return untenanted.names if untenanted.filters is None else untenanted.select(event)
        return untenanted.select(event) + own.select(event)

    def add(self, endpoint: EndpointConfig) -> None:
        if endpoint.tenant is None:
            self.untenanted = self.untenanted.changed(add=endpoint)
        else:
            self.by_tenant[endpoint.tenant] = self.by_tenant.get(
                endpoint.tenant, _NONE).changed(add=endpoint)

    def discard(self, endpoint: EndpointConfig) -> None:
        if endpoint.tenant is None:
            self.untenanted = self.untenanted.changed(drop=endpoint.name)
            return
        kept = self.by_tenant.get(endpoint.tenant, _NONE).changed(drop=endpoint.name)
        if kept.names:
            self.by_tenant[endpoint.tenant] = kept
        else:
            self.by_tenant.pop(endpoint.tenant, None)


class Router:
    """Maps (event type, tenant) to the names of the enabled endpoints that get the event."""

    def __init__(self, endpoints: Iterable[EndpointConfig] = ()) -> None:
        self._endpoints: dict[str, EndpointConfig] = {e.name: e for e in endpoints}
        self._routes: dict[str, _Route] = {}  # /v1/events' event types
        self._sourced: dict[tuple[str, str], _Route] = {}  # (source, type) of the sources'

    def route(self, event_type: str, tenant: str | None = None,
              event: Any = None) -> tuple[str, ...]:
        """The endpoints of an event from /v1/events (the default source).

        `event` is the parsed payload, for the endpoints' filters.
        """
        route = self._routes.get(event_type)
        if route is None:
            route = self._work_out(event_type, DEFAULT_SOURCE)
            if len(self._routes) < _CACHE_LIMIT:
                self._routes[event_type] = route
        return route.endpoints(tenant, event)

    def route_source(self, source: str, event_type: str,
                     tenant: str | None = None, event: Any = None) -> tuple[str, ...]:
        """The endpoints of an event from a named source (`sources:`), filters as `route`."""
        key = (source, event_type)
        route = self._sourced.get(key)
        if route is None:
            route = self._work_out(event_type, source)
            if len(self._sourced) < _CACHE_LIMIT:
                self._sourced[key] = route
        return route.endpoints(tenant, event)

    def _work_out(self, event_type: str, source: str) -> _Route:
        route = _Route()
        for endpoint in self._endpoints.values():
            if _subscribed(endpoint, event_type, source):
                route.add(endpoint)
        return route

    def _cached(self) -> Iterable[tuple[str, str, _Route]]:
        for event_type, route in self._routes.items():
            yield DEFAULT_SOURCE, event_type, route
        for (source, event_type), route in self._sourced.items():
            yield source, event_type, route

    def upsert(self, endpoint: EndpointConfig) -> None:
        """Add an endpoint, or replace the one of that name (its tenant or types may change)."""
        self.remove(endpoint.name)
        self._endpoints[endpoint.name] = endpoint
        for source, event_type, route in self._cached():
            if _subscribed(endpoint, event_type, source):
                route.add(endpoint)

    def remove(self, name: str) -> None:
        old = self._endpoints.pop(name, None)
        if old is None:
            return
        for source, event_type, route in self._cached():
            if _subscribed(old, event_type, source):
                route.discard(old)
