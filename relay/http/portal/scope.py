"""What one portal session may see: the tenant's API endpoints and their deliveries.

Everything else a URL or a form can name (another tenant's endpoint, relay.yaml's,
a delivery or event of theirs) is answered as if it did not exist: the same
404 with the same words, so editing ids reveals nothing.
"""

from __future__ import annotations

from typing import Any

from relay.config import EndpointConfig
from relay.http import operations
from relay.http.portal.access import PortalCtx
from relay.http.problems import Problem
from relay.http.serialization import format_delivery_id, parse_delivery_id

__all__ = ["own_delivery", "own_endpoint", "own_endpoints", "own_tenant"]


def _no_endpoint(name: str) -> Problem:
    return Problem(404, "unknown-endpoint", f"no endpoint named {name!r}", endpoint=name)


def own_endpoint(ctx: PortalCtx, name: str) -> EndpointConfig:
    """The tenant's API endpoint of this name; 404 for any other, as for a missing one."""
    registry = ctx.state.registry
    endpoint = registry.get(name)
    if endpoint is None or registry.source(name) != "api" or endpoint.tenant != ctx.tenant:
        raise _no_endpoint(name)
    return endpoint


def own_endpoints(ctx: PortalCtx) -> list[EndpointConfig]:
    registry = ctx.state.registry
    return [e for e in registry if e.tenant == ctx.tenant and registry.source(e.name) == "api"]


def own_tenant(ctx: PortalCtx, delivery: dict[str, Any]) -> bool:
    """A delivery's event is the tenant's, or no one's (a test event).

    Beside the endpoint's tenant, so that a name an operator gave another
    tenant's endpoint before, and deleted, does not show that tenant's log.
    """
    return delivery.get("tenant") in (None, ctx.tenant)


async def own_delivery(ctx: PortalCtx, text: str) -> dict[str, Any]:
    """One delivery to one of the tenant's endpoints, with its attempts; else 404."""
    delivery_id = parse_delivery_id(text)
    missing = Problem(404, "unknown-delivery", f"no delivery {text!r}")
    if delivery_id is None:
        raise missing
    try:
        delivery = await operations.delivery_data(ctx.state, delivery_id)
        own_endpoint(ctx, delivery["endpoint"])
        if not own_tenant(ctx, delivery):
            raise missing
    except Problem:
        raise Problem(404, "unknown-delivery",
                      f"no delivery {format_delivery_id(delivery_id)}") from None
    return delivery
