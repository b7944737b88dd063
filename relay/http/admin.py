"""The admin API's routes (SPEC sections 5 and 8): thin wrappers around `relay.http.operations`.

Every route first passes `check_admin_request` (the token, the browser rules
of `relay.http.auth`, JSON-only bodies), reading the live config so that a
reload that changes the token applies at once, and answers errors as problem
documents like ingest does. What a route does is an operation the dashboard
calls too; how records look is `relay.http.serialization`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from relay.config import TENANT_RE
from relay.config.sources import DEFAULT_SOURCE
from relay.exceptions import StorageError
from relay.http import managed_endpoints as managed
from relay.http import managed_sources, openapi, operations
from relay.http.auth import (
    HOST_NOT_ALLOWED,
    check_token,
    from_other_site,
    is_json_media_type,
)
from relay.http.dashboard.render import environment
from relay.http.dashboard.security import SECURITY_HEADERS
from relay.http.managed_sources import source_json
from relay.http.params import delivery_filter, endpoint_query, event_filter
from relay.http.portal import access as portal_access
from relay.http.problems import Problem
from relay.http.serialization import parse_delivery_id
from relay.http.state import RelayState
from relay.metrics import CONTENT_TYPE_LATEST
from relay.timefmt import iso

__all__ = ["BODY_LIMIT", "admin_routes", "check_admin_request"]

BODY_LIMIT = 256 * 1024  # an endpoint's fields, a rotation: far less than this

Handler = Callable[[Request, "RelayState"], Awaitable[Response]]


async def check_admin_request(request: Request, state: RelayState) -> None:
    """The admin token, the browser rules of `relay.http.auth`, and JSON-only POST bodies.

    Other-site requests are refused whatever the token: a browser cannot hold
    the token, but a tokenless relay would obey any page that posts to it.
    """
    token = state.config.admin.token
    headers = request.headers
    if from_other_site(headers):
        raise Problem(403, "cross-site-request",
                      "this request was sent by a page of another site (Origin or "
                      "Sec-Fetch-Site says so); the admin API answers programs and this "
                      "relay's own pages only")
    if not token and not state.host_rule.allows(headers.get("host", "")):
        raise Problem(403, "host-not-allowed", HOST_NOT_ALLOWED)
    check_token(headers.get("authorization", ""), token, "admin.token")
    if request.method not in ("GET", "HEAD"):
        content_type = headers.get("content-type")
        if content_type is None:
            if (await request.body()).strip():
                raise Problem(415, "unsupported-media-type",
                              "send the body as JSON with `Content-Type: application/json`")
        elif not is_json_media_type(content_type):
            media_type = content_type.split(";", 1)[0].strip() or "none"
            raise Problem(415, "unsupported-media-type",
                          f"admin actions take JSON: send `Content-Type: application/json` "
                          f"(got {media_type})")


def _admin(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Check who is asking, and answer 503 when the store fails underneath a route."""

    async def route(request: Request) -> Response:
        state: RelayState = request.app.state.relay
        await check_admin_request(request, state)
        try:
            return await handler(request, state)
        except StorageError as exc:
            raise Problem(503, "storage-unavailable", f"the store failed: {exc}; retry later",
                          headers={"Retry-After": "5"}) from None

    route.__name__ = handler.__name__
    route.__doc__ = handler.__doc__
    return route


async def _json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object ({} when there is no body), read up to `BODY_LIMIT`."""
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > BODY_LIMIT:
            raise Problem(413, "body-too-large",
                          f"an admin request's body is at most {BODY_LIMIT} bytes")
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise Problem(400, "invalid-json", "the body is not valid JSON") from None
    if not isinstance(value, dict):
        raise Problem(400, "invalid-json", "the body must be a JSON object")
    return value


def _json(data: Any, status_code: int = 200) -> Response:
    return JSONResponse(data, status_code=status_code)


async def list_sources(request: Request, state: RelayState) -> Response:
    """Every source, relay.yaml's first: paths and schemes (never a secret), counts."""
    return _json({"data": [source_json(state, s, "config") for s in state.config.sources]
                  + [source_json(state, s, "api") for s in state.api_sources]})


async def get_source(request: Request, state: RelayState) -> Response:
    """One source, as the list shows it."""
    name = request.path_params["name"]
    source = state.config.source_named(name)
    if source is not None:
        return _json(source_json(state, source, "config"))
    api = next((s for s in state.api_sources if s.name == name), None)
    if api is None:
        raise Problem(404, "unknown-source", f"no source {name!r}")
    return _json(source_json(state, api, "api"))


async def no_such_source(request: Request) -> Response:
    """POST to /v1/sources/{name} of no source (a source's own path is served before this)."""
    name = request.path_params["name"]
    raise Problem(404, "unknown-source", f"no source is named {name!r}: declare it in "
                  "relay.yaml's sources, or POST /v1/sources")


async def create_source(request: Request, state: RelayState) -> Response:
    """A source made at run time; its path takes requests at once."""
    source = await managed_sources.create_source(state, await _json_body(request))
    return JSONResponse(source_json(state, source, "api"), status_code=201,
                        headers={"Location": f"/v1/sources/{quote(source.name, safe='')}"})


async def replace_source(request: Request, state: RelayState) -> Response:
    """Replace an API source; a `verify` without secrets keeps the stored ones."""
    source = await managed_sources.replace_source(state, request.path_params["name"],
                                                  await _json_body(request))
    return _json(source_json(state, source, "api"))


async def delete_source(request: Request, state: RelayState) -> Response:
    """Delete an API source: its path answers 404 from now on; its events stay."""
    await managed_sources.delete_source(state, request.path_params["name"])
    return Response(status_code=204)


async def list_endpoints(request: Request, state: RelayState) -> Response:
    """Endpoints, relay.yaml's first, one page at a time; filters tenant, source, status."""
    return _json(await operations.endpoints_page(state, endpoint_query(request.query_params)))


async def create_endpoint(request: Request, state: RelayState) -> Response:
    """Create an endpoint; its secret is in this answer only."""
    name, secret = await managed.create_endpoint(state, await _json_body(request))
    answer = await operations.endpoint_data(state, name)
    return JSONResponse({**answer, "secret": secret}, status_code=201,
                        headers={"Location": f"/v1/endpoints/{quote(name, safe='')}"})


async def update_endpoint(request: Request, state: RelayState) -> Response:
    """Change an API endpoint's fields; null resets one to its default."""
    name = request.path_params["name"]
    await managed.update_endpoint(state, name, await _json_body(request))
    return _json(await operations.endpoint_data(state, name))


async def delete_endpoint(request: Request, state: RelayState) -> Response:
    """Delete an API endpoint; its waiting deliveries are cancelled."""
    await managed.delete_endpoint(state, request.path_params["name"])
    return Response(status_code=204)


async def rotate_secret(request: Request, state: RelayState) -> Response:
    """A new secret; the previous one keeps signing until it expires."""
    name = request.path_params["name"]
    secret, previous = await managed.rotate_secret(state, name, await _json_body(request))
    answer = await operations.endpoint_data(state, name)
    return _json({**answer, "secret": secret, "previous_expires_at": iso(previous)})


async def reload_config(request: Request, state: RelayState) -> Response:
    """Re-read relay.yaml now, as SIGHUP does, and say whether it was applied."""
    applied = await state.reload()
    outcome = state.last_reload
    return _json({"applied": applied, "errors": list(outcome.errors) if outcome else [],
                  "reloaded_at": iso(outcome.at) if outcome else None,
                  "endpoints": len(state.registry)})


async def openapi_document(request: Request, state: RelayState) -> Response:
    """The OpenAPI 3.1 document of this API."""
    return _json(openapi.document())


_DOCS_ENV = environment()


async def api_docs(request: Request) -> Response:
    """The API reference, rendered from the OpenAPI document; no data, so no token.

    Still a page a browser reaches: a tokenless relay serves it only under its
    own names, with the dashboard's headers (no script, no framing).
    """
    state: RelayState = request.app.state.relay
    if not state.config.admin.token and not state.host_rule.allows(
            request.headers.get("host", "")):
        raise Problem(403, "host-not-allowed", HOST_NOT_ALLOWED)
    html = _DOCS_ENV.get_template("api_docs.html").render(**openapi.docs_context())
    response = HTMLResponse(html)
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    response.headers["Cache-Control"] = "no-cache"
    return response


async def get_endpoint(request: Request, state: RelayState) -> Response:
    """One endpoint with its status and counts."""
    return _json(await operations.endpoint_data(state, request.path_params["name"]))


async def pause_endpoint(request: Request, state: RelayState) -> Response:
    """Stop sending to an endpoint; its waiting deliveries are held, never dropped."""
    return _json(await operations.pause(state, request.path_params["name"]))


async def resume_endpoint(request: Request, state: RelayState) -> Response:
    """Send again: held deliveries are due as before, in their old order; lifts a disable."""
    return _json(await operations.resume(state, request.path_params["name"]))


async def recover_endpoint(request: Request, state: RelayState) -> Response:
    """Requeue the endpoint's deliveries that failed since a time, after its receiver is fixed."""
    name = request.path_params["name"]
    operations.configured(state, name)  # an unknown endpoint: 404 before a bad body is 400
    body = await _json_body(request)
    return _json(await operations.recover(state, name, body.get("since")))


async def send_test_event(request: Request, state: RelayState) -> Response:
    """Send a `webhook.test` event the way any event goes out, and answer with the outcome.

    Answers 200 once attempted, whatever the outcome, or 202 when the lane has
    not reached it yet (a fifo backlog).
    """
    data, attempted = await operations.send_test(state, request.path_params["name"])
    return _json(data, 200 if attempted else 202)


async def list_deliveries(request: Request, state: RelayState) -> Response:
    """The delivery log, newest first, one page at a time."""
    where, limit = delivery_filter(request.query_params, state.clock())
    return _json(await operations.deliveries_page(state, where, limit))


def _delivery_path_id(request: Request) -> int:
    text = request.path_params["delivery_id"]
    delivery_id = parse_delivery_id(text)
    if delivery_id is None:
        raise Problem(404, "unknown-delivery",
                      f"{text!r} is not a delivery id (they look like dlv_42)")
    return delivery_id


async def get_delivery(request: Request, state: RelayState) -> Response:
    """One delivery with every attempt: when, how long, the answer, the error."""
    return _json(await operations.delivery_data(state, _delivery_path_id(request)))


async def retry_delivery(request: Request, state: RelayState) -> Response:
    """Make one delivery due now: a failed, scheduled, held or even delivered one."""
    return _json(await operations.retry(state, _delivery_path_id(request)))


async def list_events(request: Request, state: RelayState) -> Response:
    """The events received, newest first, one page at a time; filters tenant, type, source."""
    where, limit = event_filter(request.query_params, state.clock(), DEFAULT_SOURCE)
    return _json(await operations.events_page(state, where, limit))


async def get_event(request: Request, state: RelayState) -> Response:
    """One event as received, with its deliveries."""
    return _json(await operations.event_data(state, request.path_params["event_id"]))


def _tenant(request: Request) -> str:
    tenant: str = request.path_params["tenant"]
    if not TENANT_RE.fullmatch(tenant):
        raise Problem(404, "not-found", f"{tenant!r} cannot be a tenant id (1 to 128 printable "
                      "ASCII characters)")
    return tenant


async def create_portal_session(request: Request, state: RelayState) -> Response:
    """A single-use link that signs a browser in to this tenant's portal."""
    body = await _json_body(request)
    unknown = sorted(set(body) - {"ttl"})
    if unknown:
        raise Problem(422, "invalid-parameter", f"{unknown[0]}: unknown field (this route "
                      "takes ttl)", errors=[{"field": key, "message": "unknown field"}
                                            for key in unknown])
    link = await portal_access.issue_link(state, _tenant(request), str(request.base_url),
                                          body.get("ttl"))
    return _json(link, 201)


async def end_portal_sessions(request: Request, state: RelayState) -> Response:
    """Sign every browser of this tenant out of the portal; unused links stop working."""
    tenant = _tenant(request)
    return _json({"tenant": tenant, "ended": await portal_access.end_tenant_sessions(state,
                                                                                     tenant)})


async def metrics(request: Request, state: RelayState) -> Response:
    """Prometheus text exposition."""
    known = [(e.name, state.registry.source(e.name) or "", e.tenant or "")
             for e in state.registry]
    text = await state.metrics.render(state.storage, known, state.clock())
    return Response(text, media_type=CONTENT_TYPE_LATEST)


def admin_routes() -> list[Route]:
    """The routes to mount on the relay's app, next to ingest."""
    return [
        Route("/v1/endpoints", _admin(list_endpoints), methods=["GET"]),
        Route("/v1/sources", _admin(list_sources), methods=["GET"]),
        Route("/v1/sources", _admin(create_source), methods=["POST"]),
        Route("/v1/sources/{name}", _admin(get_source), methods=["GET"]),
        Route("/v1/sources/{name}", _admin(replace_source), methods=["PUT"]),
        Route("/v1/sources/{name}", _admin(delete_source), methods=["DELETE"]),
        Route("/v1/sources/{name}", no_such_source, methods=["POST"]),
        Route("/v1/endpoints", _admin(create_endpoint), methods=["POST"]),
        Route("/v1/endpoints/{name}", _admin(get_endpoint), methods=["GET"]),
        Route("/v1/endpoints/{name}", _admin(update_endpoint), methods=["PATCH"]),
        Route("/v1/endpoints/{name}", _admin(delete_endpoint), methods=["DELETE"]),
        Route("/v1/endpoints/{name}/rotate-secret", _admin(rotate_secret), methods=["POST"]),
        Route("/v1/endpoints/{name}/test", _admin(send_test_event), methods=["POST"]),
        Route("/v1/endpoints/{name}/pause", _admin(pause_endpoint), methods=["POST"]),
        Route("/v1/endpoints/{name}/resume", _admin(resume_endpoint), methods=["POST"]),
        Route("/v1/endpoints/{name}/recover", _admin(recover_endpoint), methods=["POST"]),
        Route("/v1/deliveries", _admin(list_deliveries), methods=["GET"]),
        Route("/v1/deliveries/{delivery_id}", _admin(get_delivery), methods=["GET"]),
        Route("/v1/deliveries/{delivery_id}/retry", _admin(retry_delivery), methods=["POST"]),
        Route("/v1/events", _admin(list_events), methods=["GET"]),
        Route("/v1/events/{event_id:path}", _admin(get_event), methods=["GET"]),
        Route("/v1/tenants/{tenant:path}/portal-sessions", _admin(create_portal_session),
              methods=["POST"]),
        Route("/v1/tenants/{tenant:path}/portal-sessions", _admin(end_portal_sessions),
              methods=["DELETE"]),
        Route("/metrics", _admin(metrics), methods=["GET"]),
        Route("/v1/reload", _admin(reload_config), methods=["POST"]),
        Route("/openapi.json", _admin(openapi_document), methods=["GET"]),
        Route("/docs", api_docs, methods=["GET"]),
    ]
