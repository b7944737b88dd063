"""The tenant portal's pages and actions: one tenant's endpoints and deliveries, nothing else.

Every page and action resolves what it names through `scope.own_endpoint` or
`scope.own_delivery`, which answer 404 with the words a missing one gets, whether
the name is unknown, relay.yaml's, or another tenant's: a tenant cannot learn
what it may not see by editing a URL or a form. Writes go through the same
operations as the admin API (`managed_endpoints`, `operations`), with the
tenant forced onto what is created and only `PORTAL_FIELDS` taken from a form,
so a tenant can change where its events go but not the operator's limits.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from relay.exceptions import StorageError
from relay.http import managed_endpoints as managed
from relay.http import operations
from relay.http.auth import HOST_NOT_ALLOWED, from_other_site
from relay.http.dashboard.context import Outcome, Refused
from relay.http.dashboard.forms import (
    PORTAL_FIELDS,
    endpoint_body,
    field_errors,
    form_values,
    read_form,
)
from relay.http.dashboard.manage import retry_outcome, send_test_outcome, waiting_count
from relay.http.dashboard.render import environment
from relay.http.params import delivery_filter
from relay.http.portal import access
from relay.http.portal.access import PortalCtx
from relay.http.portal.scope import own_delivery, own_endpoint, own_endpoints, own_tenant
from relay.http.problems import Problem
from relay.http.serialization import stored_payload
from relay.http.state import RelayState
from relay.timefmt import iso

__all__ = ["Portal"]

log = structlog.get_logger("relay.portal")

PAGE_SIZE = 25
_SAFE_NEXT = re.compile(r"/portal(?:[/?][^\s\\]*)?")
_ALL = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_ENDED = ("Your session has ended (it expired, you signed out, or it was revoked). Open "
          "the webhooks page again from the site that sent you here.")

Page = Callable[[Request, PortalCtx], Awaitable[Response]]
Action = Callable[[Request, PortalCtx, dict[str, str]], Awaitable[Outcome | Response]]


def _safe_next(value: str | None) -> str:
    if value and _SAFE_NEXT.fullmatch(value) and "//" not in value:
        return value
    return access.PATH


class Portal:
    """The `/portal` routes."""

    def __init__(self) -> None:
        self.env = environment()

    def routes(self) -> list[BaseRoute]:
        page, action = self._page, self._action
        return [
            Route("/portal", page(self.endpoints_page), methods=["GET"]),
            Route("/portal/", page(self.endpoints_page), methods=["GET"]),
            Route("/portal/start", self.start, methods=["GET"]),
            Route("/portal/theme.css", self.theme, methods=["GET"]),
            Route("/portal/logout", action(self.logout), methods=_ALL),
            Route("/portal/new", page(self.new_page), methods=["GET"]),
            Route("/portal/new", action(self.create_action), methods=["POST"]),
            Route("/portal/endpoints/{name}", page(self.endpoint_page), methods=["GET"]),
            Route("/portal/endpoints/{name}/edit", page(self.edit_page), methods=["GET"]),
            Route("/portal/endpoints/{name}/edit", action(self.edit_action), methods=["POST"]),
            Route("/portal/endpoints/{name}/delete", page(self.delete_page), methods=["GET"]),
            Route("/portal/endpoints/{name}/delete", action(self.delete_action),
                  methods=["POST"]),
            Route("/portal/endpoints/{name}/{switch:str}", action(self.switch_action),
                  methods=_ALL),
            Route("/portal/deliveries/{delivery_id}", page(self.delivery_page),
                  methods=["GET"]),
            Route("/portal/deliveries/{delivery_id}/retry", action(self.retry_action),
                  methods=_ALL),
            Route("/portal/{rest:path}", page(self.not_found), methods=_ALL),
        ]

    # -- plumbing --------------------------------------------------------------------------

    def render(self, request: Request, ctx: PortalCtx | None, template: str,
               context: dict[str, Any], status: int = 200) -> Response:
        state: RelayState = request.app.state.relay
        raw_flash = request.cookies.get(access.FLASH_COOKIE)
        flash = None
        if ctx is not None and not ctx.refresh and raw_flash:
            flash = access.decode_flash(ctx.token, raw_flash)
        query = request.url.query
        html = self.env.get_template(template).render(
            now=state.clock(), csrf=ctx.csrf if ctx else "", flash=flash,
            here=request.url.path + (f"?{query}" if query else ""),
            portal=state.config.portal, tenant=ctx.tenant if ctx else None,
            signed_in=ctx is not None, layout="portal_base.html", base=access.PATH,
            token_required=False, section="", **context)
        response = Response(html, status_code=status, media_type="text/html")
        if ctx is not None and not ctx.refresh and raw_flash:
            access.delete_cookie(response, request, state.config, access.FLASH_COOKIE)
        return response

    def _error(self, request: Request, ctx: PortalCtx | None, status: int, title: str,
               detail: str) -> Response:
        return self.render(request, ctx, "portal_error.html",
                           {"status": status, "title": title, "detail": detail}, status)

    def _finish(self, request: Request, response: Response) -> Response:
        state: RelayState = request.app.state.relay
        for name, value in access.headers(state.config).items():
            response.headers[name] = value
        response.headers["Cache-Control"] = "no-store"
        return response

    def _host_refused(self, request: Request) -> Response | None:
        state: RelayState = request.app.state.relay
        if state.config.admin.token or state.host_rule.allows(request.headers.get("host", "")):
            return None
        return self._finish(request, self._error(request, None, 403, "Host not allowed",
                                                 HOST_NOT_ALLOWED))

    async def _ctx(self, request: Request, refresh: bool) -> PortalCtx | None:
        state: RelayState = request.app.state.relay
        found = await access.session_of(request, state)
        if found is None:
            return None
        token, session = found
        return PortalCtx(state, session.tenant, token, session.expires_at, refresh)

    def _page(self, handler: Page) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a page: the session, error pages, the portal's headers."""

        async def route(request: Request) -> Response:
            refused = self._host_refused(request)
            if refused is not None:
                return refused
            refresh = request.headers.get("x-relay-refresh") == "1"
            try:
                ctx = await self._ctx(request, refresh)
                if ctx is None:
                    if refresh:
                        return self._finish(request, PlainTextResponse("signed out", 401))
                    response = self._error(request, None, 401, "Signed out", _ENDED)
                else:
                    response = await self._run_page(handler, request, ctx)
            except StorageError as exc:
                response = self._error(request, None, 503, "Unavailable",
                                       f"The store failed: {exc}. Try again shortly.")
            return self._finish(request, response)

        route.__name__ = handler.__name__
        return route

    async def _run_page(self, handler: Page, request: Request, ctx: PortalCtx) -> Response:
        try:
            return await handler(request, ctx)
        except Problem as exc:
            title = "Not found" if exc.status == 404 else "Not possible"
            return self._error(request, ctx, exc.status, title, exc.detail)

    def _action(self, handler: Action) -> Callable[[Request], Awaitable[Response]]:
        """Wrap an action: POST, a live session, this site, the CSRF token; then redirect."""

        async def route(request: Request) -> Response:
            refused = self._host_refused(request)
            if refused is not None:
                return refused
            state: RelayState = request.app.state.relay
            ctx = None
            try:
                ctx = await self._ctx(request, False)
                if request.method != "POST":
                    response = self._error(request, ctx, 405, "Method not allowed",
                                           "Actions are buttons: they only take a POST.")
                    response.headers["Allow"] = "POST"
                    return self._finish(request, response)
                if ctx is None:
                    raise Refused(401, "Signed out", _ENDED)
                form = await read_form(request)
                if from_other_site(request.headers, null_origin_is_other=False):
                    raise Refused(403, "Refused", "This form was sent from another site.")
                if not access.hmac_equal(form.get("csrf"), ctx.csrf):
                    raise Refused(403, "Refused", "The form's CSRF token is missing or "
                                  "wrong. Reload the page and try again.")
                outcome = await handler(request, ctx, form)
            except Refused as exc:
                log.warning("portal_action_refused", path=request.url.path, status=exc.status,
                            reason=exc.detail)
                return self._finish(request, self._error(request, ctx, exc.status, exc.title,
                                                         exc.detail))
            except Problem as exc:
                if exc.status == 404:
                    assert ctx is not None  # a Problem comes from a handler, after the checks
                    return self._finish(request, self._error(request, ctx, 404, "Not found",
                                                             exc.detail))
                outcome = Outcome("error", exc.detail)
            except StorageError as exc:
                if ctx is None:
                    return self._finish(request, self._error(request, None, 503, "Unavailable",
                                                             f"The store failed: {exc}."))
                outcome = Outcome("error", f"The store failed: {exc}. Try again shortly.")
            if isinstance(outcome, Response):
                return self._finish(request, outcome)
            assert ctx is not None
            target = _safe_next(form.get("next"))
            if outcome.anchor:
                target = f"{target.split('#', 1)[0]}#{outcome.anchor}"
            response = RedirectResponse(target, status_code=303)
            access.set_cookie(response, request, state.config, access.FLASH_COOKIE,
                              access.encode_flash(ctx.token, {"kind": outcome.kind,
                                                              "text": outcome.text}), 120)
            return self._finish(request, response)

        route.__name__ = handler.__name__
        return route

    # -- signing in and out ----------------------------------------------------------------

    async def start(self, request: Request) -> Response:
        """The link: used once, it starts a session and sends the browser to the portal."""
        refused = self._host_refused(request)
        if refused is not None:
            return refused
        state: RelayState = request.app.state.relay
        token = request.query_params.get("token", "")
        session_token = access.new_token()
        try:
            opened = (await state.storage.open_portal_link(
                access.token_hash(token), access.token_hash(session_token), state.clock())
                if token else None)
        except StorageError as exc:
            return self._finish(request, self._error(request, None, 503, "Unavailable",
                                                     f"The store failed: {exc}."))
        if opened is None:
            log.info("portal_link_refused")
            return self._finish(request, self._error(
                request, None, 403, "This link cannot be used",
                "Sign-in links work once, for a few minutes. Open the webhooks page again "
                "from the site that sent you here to get a new one."))
        response = RedirectResponse(access.PATH, status_code=303)
        access.set_cookie(response, request, state.config, access.COOKIE, session_token,
                          max(int(opened.expires_at - state.clock()), 1))
        log.info("portal_signed_in", tenant=opened.tenant)
        return self._finish(request, response)

    async def logout(self, request: Request, ctx: PortalCtx, form: dict[str, str]) -> Response:
        await ctx.state.storage.end_portal_sessions(ctx.state.clock(),
                                                    session_hash=access.token_hash(ctx.token))
        response = self._error(request, None, 200, "Signed out",
                               "You are signed out of the webhooks page.")
        access.delete_cookie(response, request, ctx.state.config, access.COOKIE)
        return response

    async def theme(self, request: Request) -> Response:
        """The platform's accent colour as a stylesheet (the CSP allows no inline style)."""
        state: RelayState = request.app.state.relay
        color = state.config.portal.accent_color  # fullmatched #rgb / #rrggbb
        css = (f":root, :root:where(*) {{ --accent: {color}; --accent-hover: {color}; "
               f"--focus: {color}; }}\n" if color else "")
        response = Response(css, media_type="text/css")
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    # -- pages -----------------------------------------------------------------------------

    async def endpoints_page(self, request: Request, ctx: PortalCtx) -> Response:
        own = own_endpoints(ctx)
        stats = await ctx.state.storage.endpoint_stats(names=[e.name for e in own])
        endpoints = [operations.endpoint_answer(ctx.state, e.name, stats.get(e.name))
                     for e in own]
        return self.render(request, ctx, "portal_endpoints.html", {"endpoints": endpoints})

    async def endpoint_page(self, request: Request, ctx: PortalCtx) -> Response:
        name = request.path_params["name"]
        own_endpoint(ctx, name)
        endpoint = await operations.endpoint_data(ctx.state, name)
        query = {"endpoint": name, "limit": str(PAGE_SIZE)}
        cursor = request.query_params.get("cursor", "").strip()
        if cursor:
            query["cursor"] = cursor
        where, limit = delivery_filter(query, ctx.state.clock())
        page = await operations.deliveries_page(ctx.state, where, limit)
        page["data"] = [d for d in page["data"] if own_tenant(ctx, d)]
        return self.render(request, ctx, "portal_endpoint.html", {
            "e": endpoint, "page": page, "paged": bool(cursor),
        })

    async def delivery_page(self, request: Request, ctx: PortalCtx) -> Response:
        delivery = await own_delivery(ctx, request.path_params["delivery_id"])
        event = await ctx.state.storage.get_event(delivery["event_id"])
        payload = None
        if event is not None:
            parsed, text = stored_payload(event.body)
            payload = {"parsed": parsed, "text": text}
        return self.render(request, ctx, "portal_delivery.html", {"d": delivery,
                                                                  "payload": payload})

    async def not_found(self, request: Request, ctx: PortalCtx) -> Response:
        return self._error(request, ctx, 404, "Not found", "There is no such page.")

    # -- forms -----------------------------------------------------------------------------

    def _form(self, request: Request, ctx: PortalCtx, name: str | None,
              values: dict[str, str], errors: dict[str, list[str]],
              status: int = 200) -> Response:
        return self.render(request, ctx, "portal_form.html", {
            "name": name, "values": values, "errors": errors,
            "catalog": list(ctx.state.config.events or ()),
        }, status)

    def _secret(self, request: Request, ctx: PortalCtx, name: str, secret: str, *,
                created: bool, previous_until: float | None = None) -> Response:
        endpoint = ctx.state.registry.get(name)
        return self.render(request, ctx, "secret.html", {
            "name": name, "label": endpoint.description if endpoint else "",
            "secret": secret, "created": created,
            "previous_until": iso(previous_until), "back": f"/portal/endpoints/{name}",
        })

    async def new_page(self, request: Request, ctx: PortalCtx) -> Response:
        return self._form(request, ctx, None, {"enabled": "true"}, {})

    async def create_action(self, request: Request, ctx: PortalCtx,
                            form: dict[str, str]) -> Response:
        body, errors = endpoint_body(form, PORTAL_FIELDS)
        body = {key: value for key, value in body.items() if value is not None}
        body["tenant"] = ctx.tenant  # whatever the form says: it cannot say another
        if ctx.state.config.portal.allow_http:
            body["allow_http"] = True
        if not errors:
            try:
                name, secret = await managed.create_endpoint(ctx.state, body)
            except Problem as exc:
                if exc.status == 404:
                    raise
                errors = field_errors(exc, PORTAL_FIELDS)
            else:
                return self._secret(request, ctx, name, secret, created=True)
        return self._form(request, ctx, None, form, errors, 422)

    async def edit_page(self, request: Request, ctx: PortalCtx) -> Response:
        name = request.path_params["name"]
        own_endpoint(ctx, name)
        spec = managed.api_endpoint(ctx.state, name).spec
        return self._form(request, ctx, name, form_values(spec, PORTAL_FIELDS), {})

    async def edit_action(self, request: Request, ctx: PortalCtx,
                          form: dict[str, str]) -> Outcome | Response:
        name = request.path_params["name"]
        own_endpoint(ctx, name)
        body, errors = endpoint_body(form, PORTAL_FIELDS)
        if not errors:
            try:
                await managed.update_endpoint(ctx.state, name, body)
            except Problem as exc:
                errors = field_errors(exc, PORTAL_FIELDS)
            else:
                return Outcome("success", "Saved.")
        return self._form(request, ctx, name, form, errors, 422)

    async def delete_page(self, request: Request, ctx: PortalCtx) -> Response:
        name = request.path_params["name"]
        own_endpoint(ctx, name)
        endpoint = await operations.endpoint_data(ctx.state, name)
        return self.render(request, ctx, "endpoint_delete.html", {
            "e": endpoint, "waiting": waiting_count(endpoint), "done": access.PATH,
            "back": f"/portal/endpoints/{name}", "action": f"/portal/endpoints/{name}/delete",
        })

    async def delete_action(self, request: Request, ctx: PortalCtx,
                            form: dict[str, str]) -> Outcome:
        name = request.path_params["name"]
        own_endpoint(ctx, name)
        cancelled = await managed.delete_endpoint(ctx.state, name)
        noun = "waiting delivery" if cancelled == 1 else "waiting deliveries"
        return Outcome("success", f"Deleted the endpoint; {cancelled} {noun} cancelled.")

    # -- buttons ---------------------------------------------------------------------------

    async def switch_action(self, request: Request, ctx: PortalCtx,
                            form: dict[str, str]) -> Outcome | Response:
        """Enable, disable, send a test event, rotate the secret: one endpoint's buttons."""
        name, switch = request.path_params["name"], request.path_params["switch"]
        endpoint = own_endpoint(ctx, name)
        if switch in ("enable", "disable"):
            await managed.update_endpoint(ctx.state, name, {"enabled": switch == "enable"})
            return Outcome("success", "Enabled: events go to it again." if switch == "enable"
                           else "Disabled: no events go to it until you enable it.")
        if switch == "test":
            return await send_test_outcome(ctx.state, name, endpoint.description)
        if switch == "rotate-secret":
            secret, previous = await managed.rotate_secret(ctx.state, name, {})
            return self._secret(request, ctx, name, secret, created=False,
                                previous_until=previous)
        raise Problem(404, "not-found", "There is no such page.")

    async def retry_action(self, request: Request, ctx: PortalCtx,
                           form: dict[str, str]) -> Outcome:
        text = request.path_params["delivery_id"]
        await own_delivery(ctx, text)
        return await retry_outcome(ctx.state, text)
