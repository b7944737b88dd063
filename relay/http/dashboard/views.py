"""The dashboard's pages and actions: the admin API, rendered for a browser.

Pages read through the operations the admin API calls (`relay.http.operations`),
and actions call the same functions its POST routes call, so a button and
`relay pause NAME` can never behave differently. An action is a POST that
answers with a redirect (POST/redirect/GET) and a signed flash cookie saying
what happened; a refused action (no session, wrong CSRF token, another
site's form) never reaches an operation.

The page script refreshes the lists by fetching the page itself with
`X-Relay-Refresh: 1` and swapping the regions marked `data-live`: one code
path renders a list, whether for the first load or the hundredth refresh.
"""

from __future__ import annotations

import hmac
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from relay.config.sources import DEFAULT_SOURCE
from relay.exceptions import StorageError
from relay.http import operations
from relay.http.auth import from_other_site
from relay.http.dashboard.context import Ctx, Outcome, Refused
from relay.http.dashboard.forms import read_form
from relay.http.dashboard.manage import ManageEndpoints, retry_outcome, send_test_outcome
from relay.http.dashboard.render import STATIC_DIR, absolute, environment, query_url
from relay.http.dashboard.security import (
    FLASH_COOKIE,
    SECURITY_HEADERS,
    SESSION_COOKIE,
    SESSION_TTL_S,
    SecurityHeaders,
    Session,
    Sessions,
    delete_cookie,
    set_cookie,
)
from relay.http.params import delivery_filter, event_filter
from relay.http.problems import Problem
from relay.http.serialization import parse_delivery_id
from relay.http.state import RelayState
from relay.models import DeliveryStatus

__all__ = ["Dashboard"]

log = structlog.get_logger("relay.dashboard")

PAGE_SIZE = 25
REFRESH_HEADER = "x-relay-refresh"
_SAFE_NEXT = re.compile(r"/ui(?:[/?][^\s\\]*)?")
_HOST_DETAIL = ("Without admin.token the dashboard only answers to a loopback address "
                "(localhost, 127.0.0.1, [::1]). Set admin.token to reach it by another name.")
_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


Page = Callable[[Request, Ctx], Awaitable[Response]]
Action = Callable[[Request, Ctx, dict[str, str]], Awaitable[Outcome | Response]]


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _all_counts(endpoint: dict[str, Any]) -> dict[str, Any]:
    """Every delivery state in `counts`, so a template never meets a missing one."""
    counts = endpoint.get("counts") or {}
    return {**endpoint, "counts": {s.value: int(counts.get(s.value, 0)) for s in DeliveryStatus}}


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def _rejected(state: RelayState) -> tuple[str, ...] | None:
    """The errors of the last reload when it was refused: every page says so until one takes."""
    outcome = state.last_reload
    return outcome.errors if outcome is not None and not outcome.applied else None


def _safe_next(value: str | None, default: str) -> str:
    """Only paths of the dashboard itself: a form cannot send the browser elsewhere."""
    if value and _SAFE_NEXT.fullmatch(value) and "//" not in value:
        return value
    return default


def _finish(response: Response, *, cache: str = "no-store") -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    response.headers["Cache-Control"] = cache
    return response


class Dashboard(ManageEndpoints):
    """The `/ui` routes, with one session key for the life of the app."""

    def __init__(self, sessions: Sessions | None = None) -> None:
        self.sessions = sessions or Sessions()
        self.env = environment()

    def routes(self) -> list[BaseRoute]:
        page, action = self._page, self._action
        static = SecurityHeaders(StaticFiles(directory=STATIC_DIR))
        return [
            Route("/ui", page(self.endpoints_page), methods=["GET"]),
            Route("/ui/", self.slash, methods=["GET"]),
            Route("/ui/login", self.login, methods=["GET", "POST"]),
            Route("/ui/logout", action(self.logout), methods=_ALL_METHODS),
            Route("/ui/new", page(self.new_endpoint_page), methods=["GET"]),
            Route("/ui/new", action(self.create_action), methods=["POST"]),
            Route("/ui/endpoints/{name}", page(self.endpoint_page), methods=["GET"]),
            Route("/ui/endpoints/{name}/edit", page(self.edit_endpoint_page), methods=["GET"]),
            Route("/ui/endpoints/{name}/edit", action(self.edit_action), methods=["POST"]),
            Route("/ui/endpoints/{name}/delete", page(self.delete_page), methods=["GET"]),
            Route("/ui/endpoints/{name}/delete", action(self.delete_action),
                  methods=["POST"]),
            Route("/ui/endpoints/{name}/enable", action(self.enable_action),
                  methods=_ALL_METHODS),
            Route("/ui/endpoints/{name}/disable", action(self.disable_action),
                  methods=_ALL_METHODS),
            Route("/ui/endpoints/{name}/rotate-secret", action(self.rotate_action),
                  methods=_ALL_METHODS),
            Route("/ui/endpoints/{name}/test", action(self.test_action), methods=_ALL_METHODS),
            Route("/ui/endpoints/{name}/pause", action(self.pause_action),
                  methods=_ALL_METHODS),
            Route("/ui/endpoints/{name}/resume", action(self.resume_action),
                  methods=_ALL_METHODS),
            Route("/ui/endpoints/{name}/recover", action(self.recover_action),
                  methods=_ALL_METHODS),
            Route("/ui/deliveries", page(self.deliveries_page), methods=["GET"]),
            Route("/ui/deliveries/{delivery_id}", page(self.delivery_page), methods=["GET"]),
            Route("/ui/deliveries/{delivery_id}/retry", action(self.retry_action),
                  methods=_ALL_METHODS),
            Route("/ui/events", page(self.events_page), methods=["GET"]),
            Route("/ui/events/{event_id:path}", page(self.event_page), methods=["GET"]),
            Mount("/ui/static", app=static, name="dashboard-static"),
            Route("/ui/{rest:path}", page(self.not_found), methods=_ALL_METHODS),
        ]

    # -- plumbing --------------------------------------------------------------------------

    def _session(self, request: Request, token: str | None) -> Session | None:
        return self.sessions.decode(request.cookies.get(SESSION_COOKIE), token)

    def render(self, request: Request, ctx: Ctx | None, template: str,
               context: dict[str, Any], status: int = 200) -> Response:
        """A page of the dashboard; shows (and clears) the flash left by the last action."""
        flash = None
        raw_flash = request.cookies.get(FLASH_COOKIE)
        if ctx is not None and not ctx.refresh and raw_flash:
            flash = self.sessions.decode_flash(raw_flash)
        state: RelayState = request.app.state.relay
        html = self.env.get_template(template).render(
            now=state.clock(),
            csrf=ctx.csrf if ctx else "",
            here=_here(request),
            token_required=bool(state.config.admin.token),
            signed_in=ctx is not None,
            rejected=_rejected(state) if ctx is not None else None,
            flash=flash,
            section=context.pop("section", ""),
            **context,
        )
        response = HTMLResponse(html, status_code=status)
        if ctx is not None and not ctx.refresh and raw_flash:
            delete_cookie(response, request, FLASH_COOKIE)
        return response

    def _error(self, request: Request, ctx: Ctx | None, status: int, title: str,
               detail: str) -> Response:
        return self.render(request, ctx, "error.html",
                           {"status": status, "title": title, "detail": detail}, status)

    def _page(self, handler: Page) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a page: log-in gate, session cookie, error pages, security headers."""

        async def route(request: Request) -> Response:
            state: RelayState = request.app.state.relay
            token = state.config.admin.token
            if not token and not state.host_rule.allows(request.headers.get("host", "")):
                return _finish(self._error(request, None, 403, "Host not allowed", _HOST_DETAIL))
            session = self._session(request, token)
            refresh = request.headers.get(REFRESH_HEADER) == "1"
            if token and (session is None or not session.authenticated):
                if refresh:
                    return _finish(PlainTextResponse("log in again", status_code=401))
                target = query_url("/ui/login", {"next": _here(request)})
                return _finish(RedirectResponse(target, status_code=303))
            fresh = session is None
            if session is None:  # no admin token: open, but forms still need a session
                session = self.sessions.issue(authenticated=False)
            ctx = Ctx(state, session, self.sessions.csrf_token(session), refresh)
            try:
                response = await handler(request, ctx)
            except Problem as exc:
                response = self._error(request, ctx, exc.status, _title(exc.status), exc.detail)
            except StorageError as exc:
                response = self._error(request, ctx, 503, "Store unavailable",
                                       f"The store failed: {exc}. Try again shortly.")
            except Refused as exc:
                response = self._error(request, ctx, exc.status, exc.title, exc.detail)
            if fresh:
                set_cookie(response, request, SESSION_COOKIE,
                           self.sessions.encode(session, token), SESSION_TTL_S)
            return _finish(response)

        route.__name__ = handler.__name__
        return route

    def _action(self, handler: Action) -> Callable[[Request], Awaitable[Response]]:
        """Wrap an action: POST only, session, same site, CSRF token; then redirect with a flash.

        Every check happens before the handler runs, so a refused request has no
        effect at all.
        """

        async def route(request: Request) -> Response:
            state: RelayState = request.app.state.relay
            token = state.config.admin.token
            session = self._session(request, token)
            ctx = None
            if session is not None and (session.authenticated or not token):
                ctx = Ctx(state, session, self.sessions.csrf_token(session), False)
            try:
                if not token and not state.host_rule.allows(request.headers.get("host", "")):
                    raise Refused(403, "Host not allowed", _HOST_DETAIL)
                if request.method != "POST":
                    response = self._error(request, ctx, 405, "Method not allowed",
                                           "Actions are buttons: they only take a POST.")
                    response.headers["Allow"] = "POST"
                    return _finish(response)
                if ctx is None:
                    raise Refused(403, "Not signed in", "Your session is missing or has "
                                   "expired. Open the dashboard again and sign in.")
                form = await read_form(request)
                if from_other_site(request.headers, null_origin_is_other=False):
                    raise Refused(403, "Refused", "This form was sent from another site.")
                if not self.sessions.check_csrf(session, form.get("csrf")):
                    raise Refused(403, "Refused", "The form's CSRF token is missing or "
                                   "wrong. Reload the page and try again.")
            except Refused as exc:
                log.warning("dashboard_action_refused", path=request.url.path,
                            status=exc.status, reason=exc.detail)
                return _finish(self._error(request, ctx, exc.status, exc.title, exc.detail))
            target = _safe_next(form.get("next"), "/ui")
            try:
                outcome = await handler(request, ctx, form)
            except Problem as exc:
                outcome = Outcome("error", exc.detail)
            except StorageError as exc:
                outcome = Outcome("error", f"The store failed: {exc}. Try again shortly.")
            if isinstance(outcome, Response):  # a page of its own: a form's errors, a secret
                return _finish(outcome)
            if outcome.anchor:
                target = f"{target.split('#', 1)[0]}#{outcome.anchor}"
            response = RedirectResponse(target, status_code=303)
            flash = {"kind": outcome.kind, "text": outcome.text}
            set_cookie(response, request, FLASH_COOKIE, self.sessions.encode_flash(flash), 120)
            return _finish(response)

        route.__name__ = handler.__name__
        return route

    # -- login -----------------------------------------------------------------------------

    async def slash(self, request: Request) -> Response:
        return _finish(RedirectResponse("/ui", status_code=308))

    async def login(self, request: Request) -> Response:
        """The token form; only shown when `admin.token` is set.

        The form itself is CSRF-protected by an anonymous session, and a
        successful login starts a new session rather than upgrading that one.
        """
        state: RelayState = request.app.state.relay
        token = state.config.admin.token
        query_next = request.query_params.get("next")
        if not token:
            return _finish(RedirectResponse(_safe_next(query_next, "/ui"), status_code=303))
        session = self._session(request, token)
        if request.method == "GET":
            if session is not None and session.authenticated:
                return _finish(RedirectResponse(_safe_next(query_next, "/ui"),
                                                status_code=303))
            return self._login_form(request, token, session, query_next, None, 200)
        try:
            form = await read_form(request)
        except Refused as exc:
            return self._login_form(request, token, None, query_next, exc.detail, exc.status)
        next_url = _safe_next(form.get("next"), "/ui")
        if (from_other_site(request.headers, null_origin_is_other=False)
                or not self.sessions.check_csrf(session, form.get("csrf"))):
            return self._login_form(request, token, None, next_url,
                                    "The form expired. Enter the token again.", 403)
        given = form.get("token", "").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            log.warning("dashboard_login_failed", client=request.client.host
                        if request.client else None)
            return self._login_form(request, token, session, next_url,
                                    "That is not the admin token.", 401)
        assert session is not None  # check_csrf refused a missing one
        self.sessions.revoke(session)
        signed_in = self.sessions.issue(authenticated=True)
        response = RedirectResponse(next_url, status_code=303)
        set_cookie(response, request, SESSION_COOKIE,
                   self.sessions.encode(signed_in, token), SESSION_TTL_S)
        log.info("dashboard_login")
        return _finish(response)

    def _login_form(self, request: Request, token: str, session: Session | None,
                    next_url: str | None, error: str | None, status: int) -> Response:
        fresh = session is None
        if session is None:
            session = self.sessions.issue(authenticated=False)
        html = self.env.get_template("login.html").render(
            csrf=self.sessions.csrf_token(session), next=_safe_next(next_url, "/ui"),
            error=error, token_required=True, signed_in=False, rejected=None, flash=None,
            section="", here="/ui/login", now=0,
        )
        response = HTMLResponse(html, status_code=status)
        if fresh:
            set_cookie(response, request, SESSION_COOKIE, self.sessions.encode(session, token),
                       SESSION_TTL_S)
        return _finish(response)

    async def logout(self, request: Request, ctx: Ctx, form: dict[str, str]) -> Outcome:
        self.sessions.revoke(ctx.session)
        return Outcome("info", "Signed out.")

    # -- pages -----------------------------------------------------------------------------

    async def endpoints_page(self, request: Request, ctx: Ctx) -> Response:
        """Every endpoint with its status, last send, next retry and counts by state."""
        query = request.query_params.get("q", "").strip()
        status = request.query_params.get("status", "").strip()
        tenant = request.query_params.get("tenant", "").strip()
        endpoints = [_all_counts(e) for e in await operations.endpoints_data(ctx.state)]
        needle = query.lower()
        shown = [
            e for e in endpoints
            if (not status or e["status"] == status)
            and (not tenant or e.get("tenant") == tenant)
            and (not needle or needle in e["name"].lower() or needle in (e["url"] or "").lower())
        ]
        totals = Counter[str]()
        for e in endpoints:
            totals.update(e["counts"])
        return self.render(request, ctx, "endpoints.html", {
            "section": "endpoints",
            "endpoints": shown,
            "total_endpoints": len(endpoints),
            "by_status": Counter(e["status"] for e in endpoints),
            "totals": totals,
            "q": query,
            "status": status,
            "tenant": tenant,
            "tenants": sorted({e["tenant"] for e in endpoints if e.get("tenant")}),
            "managed": ctx.state.registry.box is not None,
        })

    async def endpoint_page(self, request: Request, ctx: Ctx) -> Response:
        """One endpoint: its health, its actions and its deliveries, newest first."""
        name = request.path_params["name"]
        endpoint = _all_counts(await operations.endpoint_data(ctx.state, name))
        listing = await self._listing(request, ctx, endpoint=name)
        return self.render(request, ctx, "endpoint.html", {
            "section": "endpoints", "endpoint": endpoint, **listing,
        }, 400 if listing["error"] else 200)

    async def deliveries_page(self, request: Request, ctx: Ctx) -> Response:
        """The whole delivery log, filterable by endpoint, status and event type."""
        listing = await self._listing(request, ctx, endpoint=None)
        names = [e.name for e in ctx.state.registry]
        return self.render(request, ctx, "deliveries.html", {
            "section": "deliveries", "endpoint_names": names, **listing,
        }, 400 if listing["error"] else 200)

    async def _listing(self, request: Request, ctx: Ctx, endpoint: str | None) -> dict[str, Any]:
        """A page of deliveries through the admin API's filter and keyset pagination."""
        params = request.query_params
        filters = {key: params.get(key, "").strip() for key in ("status", "type")}
        if endpoint is None:
            filters["endpoint"] = params.get("endpoint", "").strip()
        cursor = params.get("cursor", "").strip()
        query = {k: v for k, v in filters.items() if v}
        if endpoint is not None:
            query["endpoint"] = endpoint
        if cursor:
            query["cursor"] = cursor
        query["limit"] = str(PAGE_SIZE)
        error = None
        page: dict[str, Any] = {"data": [], "has_more": False, "next_cursor": None}
        try:
            where, limit = delivery_filter(query, ctx.state.clock())
            page = await operations.deliveries_page(ctx.state, where, limit)
        except Problem as exc:
            error = exc.detail
        path = request.url.path
        types = set(ctx.state.config.events or ()) | {d["event_type"] for d in page["data"]}
        return {
            "page": page,
            "filters": filters,
            "paged": bool(cursor),
            "error": error,
            "newest_url": query_url(path, filters) if cursor else None,
            "older_url": (query_url(path, {**filters, "cursor": page["next_cursor"]})
                          if page["next_cursor"] else None),
            "event_types": sorted(types),
        }

    async def delivery_page(self, request: Request, ctx: Ctx) -> Response:
        """One delivery with every attempt; also the source of the rows' expanded attempts."""
        text = request.path_params["delivery_id"]
        delivery_id = parse_delivery_id(text)
        if delivery_id is None:
            raise Problem(404, "unknown-delivery", f"{text!r} is not a delivery id "
                          "(they look like dlv_42)")
        delivery = await operations.delivery_data(ctx.state, delivery_id)
        event = await ctx.state.storage.get_event(delivery["event_id"])
        return self.render(request, ctx, "delivery.html", {
            "section": "deliveries", "d": delivery,
            "source": (event.source if event is not None else None) or DEFAULT_SOURCE,
        })

    async def events_page(self, request: Request, ctx: Ctx) -> Response:
        """The events received, newest first, by tenant, type and source (GET /v1/events)."""
        params = request.query_params
        filters = {key: params.get(key, "").strip() for key in ("tenant", "type", "source")}
        cursor = params.get("cursor", "").strip()
        query = {**{k: v for k, v in filters.items() if v}, "limit": str(PAGE_SIZE),
                 **({"cursor": cursor} if cursor else {})}
        error = None
        page: dict[str, Any] = {"data": [], "has_more": False, "next_cursor": None}
        try:
            where, limit = event_filter(query, ctx.state.clock(), DEFAULT_SOURCE)
            page = await operations.events_page(ctx.state, where, limit)
        except Problem as exc:
            error = exc.detail
        path = request.url.path
        sources = [DEFAULT_SOURCE, *(s.name for s in ctx.state.config.sources),
                   *(s.name for s in ctx.state.api_sources)]
        return self.render(request, ctx, "events.html", {
            "section": "events", "page": page, "filters": filters, "paged": bool(cursor),
            "error": error, "sources": sources,
            "event_types": sorted(set(ctx.state.config.events or ())
                                  | {e["type"] for e in page["data"]}),
            "newest_url": query_url(path, filters) if cursor else None,
            "older_url": (query_url(path, {**filters, "cursor": page["next_cursor"]})
                          if page["next_cursor"] else None),
        }, 400 if error else 200)

    async def event_page(self, request: Request, ctx: Ctx) -> Response:
        """One event: the payload as received, where it went, and the headers it went with."""
        event = await operations.event_data(ctx.state, request.path_params["event_id"])
        sent = []
        for delivery in event["deliveries"][:20]:
            delivery_id = parse_delivery_id(delivery["id"])
            if delivery_id is None:  # pragma: no cover - ids come from delivery_json
                continue
            detail = await operations.delivery_data(ctx.state, delivery_id)
            if detail["attempts"]:
                sent.append((delivery, detail["attempts"][-1]))
        return self.render(request, ctx, "event.html", {
            "section": "deliveries", "event": event, "sent": sent,
        })

    async def not_found(self, request: Request, ctx: Ctx) -> Response:
        return self._error(request, ctx, 404, "Not found",
                           f"There is no dashboard page at {request.url.path}.")

    # -- actions ---------------------------------------------------------------------------

    async def test_action(self, request: Request, ctx: Ctx, form: dict[str, str]) -> Outcome:
        return await send_test_outcome(ctx.state, request.path_params["name"])

    async def pause_action(self, request: Request, ctx: Ctx, form: dict[str, str]) -> Outcome:
        return await self._counted(
            request, ctx, operations.pause, "held", ("waiting delivery", "waiting deliveries"),
            "Paused {name}: {count} held. Nothing is sent to it until you resume it.")

    async def resume_action(self, request: Request, ctx: Ctx, form: dict[str, str]) -> Outcome:
        return await self._counted(
            request, ctx, operations.resume, "released", ("held delivery", "held deliveries"),
            "Resumed {name}: {count} released, sent in their original order.")

    @staticmethod
    async def _counted(request: Request, ctx: Ctx,
                       operation: Callable[[RelayState, str], Awaitable[dict[str, Any]]],
                       key: str, nouns: tuple[str, str], message: str) -> Outcome:
        """An endpoint operation whose answer counts deliveries, said in a sentence."""
        name = request.path_params["name"]
        data = await operation(ctx.state, name)
        return Outcome("success", message.format(name=name, count=_plural(data[key], *nouns)))

    async def recover_action(self, request: Request, ctx: Ctx, form: dict[str, str]) -> Outcome:
        name = request.path_params["name"]
        data = await operations.recover(ctx.state, name, form.get("since", ""))
        since = absolute(data["since"])
        if not data["requeued"]:
            return Outcome("info", f"No delivery of {name} failed since {since}; "
                           "nothing to requeue.")
        requeued = _plural(data["requeued"], "failed delivery", "failed deliveries")
        return Outcome("success", f"Requeued {requeued} of {name} (failed since {since}).")

    async def retry_action(self, request: Request, ctx: Ctx, form: dict[str, str]) -> Outcome:
        return await retry_outcome(ctx.state, request.path_params["delivery_id"])


def _title(status: int) -> str:
    return {400: "Bad request", 404: "Not found", 409: "Not possible right now",
            503: "Unavailable"}.get(status, "Error")
