"""The dashboard's endpoint management: create, edit, enable, disable, rotate, delete.

Each action calls the operation the admin API's route calls
(`relay.http.managed_endpoints`) with the body the form spells
(`relay.http.dashboard.forms`), so a field refused here reads the same
message `POST /v1/endpoints` answers. relay.yaml's endpoints have no such
controls: the operations refuse them anyway (409 `endpoint-provisioned`).

A new or rotated secret is on the answer to the POST itself, never in a
cookie or a URL, and with `no-store`: reloading cannot show it again, and it
is not kept anywhere the browser writes to disk.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from relay.config import validate_endpoint
from relay.http import managed_endpoints as managed
from relay.http import operations
from relay.http.dashboard.context import Ctx, Outcome
from relay.http.dashboard.forms import (
    OPERATOR_FIELDS,
    FormErrors,
    endpoint_body,
    field_errors,
    form_values,
)
from relay.http.dashboard.render import duration
from relay.http.problems import Problem
from relay.http.serialization import endpoint_settings, parse_delivery_id
from relay.http.state import RelayState
from relay.models import DeliveryStatus
from relay.signing import generate_secret
from relay.timefmt import iso

__all__ = ["ManageEndpoints", "defaults", "retry_outcome", "send_test_outcome", "waiting_count"]

_EDIT_FIELDS = tuple(f for f in OPERATOR_FIELDS if f != "name")
_WAITING = (DeliveryStatus.PENDING, DeliveryStatus.SCHEDULED, DeliveryStatus.HELD)


def defaults(state: RelayState) -> dict[str, str]:
    """What an empty field means, as the form's placeholders say it (`delivery`'s values)."""
    endpoint, _ = validate_endpoint({"name": "x", "url": "https://example.com",
                                     "secret": generate_secret()}, state.config.delivery)
    assert endpoint is not None  # a valid endpoint by construction
    settings = endpoint_settings(endpoint)
    return {key: ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            for key, value in settings.items() if value is not None}


def waiting_count(endpoint: dict[str, Any]) -> int:
    """The deliveries a delete cancels: those not yet sent (in flight ones finish)."""
    counts = endpoint.get("counts") or {}
    return sum(int(counts.get(s.value, 0)) for s in _WAITING)


async def send_test_outcome(state: RelayState, name: str, label: str | None = None) -> Outcome:
    """Send a test event (`operations.send_test`) and say how it went, in a sentence
    that calls the endpoint `label` (the portal's Name) or its name."""
    data, _attempted = await operations.send_test(state, name)
    name = label or name
    delivery = data["delivery"]
    attempts = delivery["attempts"]
    last = attempts[-1] if attempts else None
    if data["outcome"] == "delivered" and last is not None:
        took = duration(last["duration_ms"])
        return Outcome("success", f"Test event delivered to {name}: "
                       f"{last['status_code']} in {took} ({delivery['id']}).", delivery["id"])
    if data["outcome"] == "failed":
        why = delivery["last_error"] or (f"answered {last['status_code']}" if last else "")
        return Outcome("error", f"Test event to {name} failed: {why} ({delivery['id']}). "
                       "It is retried on the endpoint's schedule.", delivery["id"])
    return Outcome("info", f"Test event queued for {name} ({delivery['id']}); the endpoint "
                   "has not been reached yet.", delivery["id"])


async def retry_outcome(state: RelayState, text: str) -> Outcome:
    """Make a delivery due now (`operations.retry`), said in a sentence."""
    delivery_id = parse_delivery_id(text)
    if delivery_id is None:
        return Outcome("error", f"{text!r} is not a delivery id.")
    data = await operations.retry(state, delivery_id)
    previous = data["previous_status"]
    return Outcome("success", f"{data['id']} is due now (it was {previous}); it goes out "
                   "in a moment.", data["id"])


class ManageEndpoints:
    """The management pages and actions of `Dashboard`, which supplies `render`."""

    @abstractmethod
    def render(self, request: Request, ctx: Ctx, template: str, context: dict[str, Any],
               status: int = 200) -> Response:
        """A page of the dashboard."""

    def _form(self, request: Request, ctx: Ctx, *, name: str | None, values: dict[str, str],
              errors: FormErrors, status: int = 200) -> Response:
        return self.render(request, ctx, "endpoint_form.html", {
            "section": "endpoints", "name": name, "values": values, "errors": errors,
            "defaults": defaults(ctx.state), "catalog": list(ctx.state.config.events or ()),
            "fields": OPERATOR_FIELDS if name is None else _EDIT_FIELDS,
        }, status)

    def _secret(self, request: Request, ctx: Ctx, name: str, secret: str, *,
                created: bool, previous_until: str | None = None) -> Response:
        return self.render(request, ctx, "secret.html", {
            "section": "endpoints", "name": name, "secret": secret, "created": created,
            "previous_until": previous_until, "back": f"/ui/endpoints/{name}",
        })

    # -- create and edit -------------------------------------------------------------------

    async def new_endpoint_page(self, request: Request, ctx: Ctx) -> Response:
        return self._form(request, ctx, name=None, values={}, errors={})

    async def create_action(self, request: Request, ctx: Ctx,
                            form: dict[str, str]) -> Response:
        body, errors = endpoint_body(form, OPERATOR_FIELDS)
        body = {key: value for key, value in body.items() if value is not None}
        if form.get("secret", "").strip():
            body["secret"] = form["secret"].strip()
        if not errors:
            try:
                name, secret = await managed.create_endpoint(ctx.state, body)
            except Problem as exc:
                errors = ({"name": [exc.detail]} if exc.slug == "endpoint-exists"
                          else field_errors(exc, (*OPERATOR_FIELDS, "secret")))
            else:
                return self._secret(request, ctx, name, secret, created=True)
        return self._form(request, ctx, name=None, values=form, errors=errors, status=422)

    async def edit_endpoint_page(self, request: Request, ctx: Ctx) -> Response:
        name = request.path_params["name"]
        current = managed.api_endpoint(ctx.state, name)
        return self._form(request, ctx, name=name, values=form_values(current.spec,
                                                                      _EDIT_FIELDS), errors={})

    async def edit_action(self, request: Request, ctx: Ctx,
                          form: dict[str, str]) -> Outcome | Response:
        name = request.path_params["name"]
        managed.api_endpoint(ctx.state, name)  # 404 or 409 before reading the form
        body, errors = endpoint_body(form, _EDIT_FIELDS)
        if not errors:
            try:
                await managed.update_endpoint(ctx.state, name, body)
            except Problem as exc:
                errors = field_errors(exc, _EDIT_FIELDS)
            else:
                return Outcome("success", f"Saved {name}; the change applies from its next "
                               "delivery.")
        return self._form(request, ctx, name=name, values=form, errors=errors, status=422)

    # -- switches --------------------------------------------------------------------------

    async def enable_action(self, request: Request, ctx: Ctx, form: dict[str, str]) -> Outcome:
        return await self._enabled(request, ctx, True)

    async def disable_action(self, request: Request, ctx: Ctx, form: dict[str, str]) -> Outcome:
        return await self._enabled(request, ctx, False)

    async def _enabled(self, request: Request, ctx: Ctx, enabled: bool) -> Outcome:
        name = request.path_params["name"]
        await managed.update_endpoint(ctx.state, name, {"enabled": enabled})
        if enabled:
            return Outcome("success", f"Enabled {name}: events are routed to it again.")
        return Outcome("success", f"Disabled {name}: new events are not routed to it; "
                       "what waits for it is held until it is enabled.")

    async def rotate_action(self, request: Request, ctx: Ctx, form: dict[str, str]) -> Response:
        name = request.path_params["name"]
        overlap = form.get("expire_previous_in", "").strip() or None
        secret, previous = await managed.rotate_secret(ctx.state, name,
                                                       {"expire_previous_in": overlap})
        return self._secret(request, ctx, name, secret, created=False,
                            previous_until=iso(previous))

    # -- delete ----------------------------------------------------------------------------

    async def delete_page(self, request: Request, ctx: Ctx) -> Response:
        name = request.path_params["name"]
        managed.api_endpoint(ctx.state, name)
        endpoint = await operations.endpoint_data(ctx.state, name)
        return self.render(request, ctx, "endpoint_delete.html", {
            "section": "endpoints", "e": endpoint, "waiting": waiting_count(endpoint),
            "back": f"/ui/endpoints/{name}", "action": f"/ui/endpoints/{name}/delete",
        })

    async def delete_action(self, request: Request, ctx: Ctx, form: dict[str, str]) -> Outcome:
        name = request.path_params["name"]
        cancelled = await managed.delete_endpoint(ctx.state, name)
        noun = "waiting delivery" if cancelled == 1 else "waiting deliveries"
        return Outcome("success", f"Deleted {name}: {cancelled} {noun} cancelled. Its "
                       "delivery log stays until retention purges it.")
