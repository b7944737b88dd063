"""Who is in the tenant portal: single-use sign-in links, sessions, CSRF, headers.

The platform's backend asks for a link (`POST /v1/tenants/{tenant}/portal-sessions`,
admin token) and sends its customer's browser to it. The link's token and the
session's token are 32 random bytes each; the store keeps only their SHA-256
(`Storage.open_portal_link` uses a link once, atomically, on every replica).
The session token lives in an HttpOnly cookie scoped to `/portal`; every
request looks the session up, so a sign-out or `DELETE .../portal-sessions`
ends it on every replica at once, and it ends by itself at its expiry.

CSRF tokens and flash messages are HMACs keyed by the session token: nothing
to share between replicas, and useless without the cookie they derive from.

Framing: the portal alone may be framed, by the origins `portal.frame_ancestors`
lists; its cookie is then `SameSite=None; Secure; Partitioned`, the only kind a
browser sends inside another site's iframe (and kept apart per embedding site).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from relay.config import Config
from relay.config.portal import MAX_LINK_TTL_S, duration_up_to
from relay.http.dashboard.security import SECURITY_HEADERS
from relay.http.problems import Problem
from relay.http.state import RelayState
from relay.storage.base import PortalSession
from relay.timefmt import iso
from relay.units import format_duration

__all__ = [
    "COOKIE",
    "FLASH_COOKIE",
    "PATH",
    "PortalCtx",
    "csrf_token",
    "decode_flash",
    "delete_cookie",
    "encode_flash",
    "end_tenant_sessions",
    "headers",
    "hmac_equal",
    "issue_link",
    "new_token",
    "session_of",
    "set_cookie",
    "token_hash",
]

COOKIE = "relay_portal"
FLASH_COOKIE = "relay_portal_flash"
PATH = "/portal"
START_PATH = "/portal/start"
_LINK_TTL = duration_up_to(MAX_LINK_TTL_S)


@dataclass(frozen=True, slots=True)
class PortalCtx:
    """What a portal page or action is handed: the relay, and the one tenant it serves."""

    state: RelayState
    tenant: str
    token: str  # the session's, from the cookie: keys the CSRF token and flashes
    expires_at: float
    refresh: bool

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _mac(key: str, purpose: str, text: str = "") -> str:
    digest = hmac.new(key.encode(), f"{purpose}\x1f{text}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def csrf_token(session_token: str) -> str:
    return _mac(session_token, "csrf")


def hmac_equal(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())


def encode_flash(session_token: str, flash: dict[str, Any]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(flash).encode()).decode().rstrip("=")
    return f"{body}.{_mac(session_token, 'flash', body)}"


def decode_flash(session_token: str, value: str | None) -> dict[str, Any] | None:
    if not value or "." not in value:
        return None
    body, mac = value.rsplit(".", 1)
    if not hmac.compare_digest(mac.encode(), _mac(session_token, "flash", body).encode()):
        return None
    try:
        flash = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except ValueError:
        return None
    return flash if isinstance(flash, dict) else None


def framed(config: Config) -> bool:
    return bool(config.portal.frame_ancestors)


def headers(config: Config) -> dict[str, str]:
    """The dashboard's headers, but framing as `portal.frame_ancestors` allows."""
    ancestors = " ".join(config.portal.frame_ancestors) or "'none'"
    policy = SECURITY_HEADERS["Content-Security-Policy"].replace(
        "frame-ancestors 'none'", f"frame-ancestors {ancestors}")
    answer = {**SECURITY_HEADERS, "Content-Security-Policy": policy}
    if framed(config):
        del answer["X-Frame-Options"]  # DENY would override the CSP in older browsers
    return answer


def set_cookie(response: Response, request: Request, config: Config, name: str, value: str,
               max_age: int) -> None:
    if framed(config):
        # Written by hand: Python's http.cookies knows `Partitioned` from 3.14 on. The
        # values are tokens and base64 text, nothing a cookie would need quoted.
        response.headers.append("set-cookie", f"{name}={value}; Max-Age={max_age}; "
                                f"Path={PATH}; HttpOnly; SameSite=none; Secure; Partitioned")
    else:
        # Lax, not Strict: the browser arrives from the platform's site, and a Strict
        # cookie set on that redirect would not be sent on the page it leads to.
        response.set_cookie(name, value, max_age=max_age, path=PATH, httponly=True,
                            samesite="lax", secure=request.url.scheme == "https")


def delete_cookie(response: Response, request: Request, config: Config, name: str) -> None:
    set_cookie(response, request, config, name, "", 0)


async def session_of(request: Request, state: RelayState) -> tuple[str, PortalSession] | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    session = await state.storage.portal_session(token_hash(token), state.clock())
    return (token, session) if session is not None else None


# -- the admin API's side ------------------------------------------------------------------


async def issue_link(state: RelayState, tenant: str, base_url: str,
                     ttl: Any) -> dict[str, Any]:
    """A single-use sign-in link for `tenant`'s portal, valid `ttl` (default `portal.link_ttl`)."""
    portal = state.config.portal
    link_s = portal.link_ttl_s
    if ttl is not None:
        try:
            link_s = _LINK_TTL(ttl)
        except ValueError as exc:
            raise Problem(422, "invalid-parameter", f"ttl: {exc}", parameter="ttl",
                          errors=[{"field": "ttl", "message": str(exc)}]) from None
    token = new_token()
    now = state.clock()
    await state.storage.create_portal_link(token_hash(token), tenant, now, now + link_s,
                                           portal.session_ttl_s)
    base = portal.public_url or base_url.rstrip("/")
    return {"url": f"{base}{START_PATH}?token={token}", "expires_at": iso(now + link_s),
            "tenant": tenant, "session_ttl": format_duration(portal.session_ttl_s)}


async def end_tenant_sessions(state: RelayState, tenant: str) -> int:
    """Sign every browser of `tenant` out, and void its links not yet opened."""
    return await state.storage.end_portal_sessions(state.clock(), tenant=tenant)
