"""Sessions, CSRF and response headers of the dashboard.

The dashboard is a browser client of the admin API, so it must not weaken it:

- **Sessions** are stateless signed cookies: `v1.<sid>.<expiry>.<auth>.<mac>`,
  the MAC an HMAC-SHA256 under a key drawn at random when the app is built.
  The cookie never holds the admin token; the MAC also covers a fingerprint of
  the token in force, so changing `admin.token` (SIGHUP) logs every session
  out, and a restart does too (the key dies with the process). Logout revokes
  the session id in memory until its expiry.
- **CSRF**: every state-changing request is a POST carrying a per-session token
  (an HMAC of the session id, compared with `hmac.compare_digest`), and is
  refused when `Sec-Fetch-Site`, `Origin` or `Referer` says it came from
  another site. The login form is protected too (by an anonymous session), so
  another site cannot log a browser into a session of its choosing.
- **Headers**: a strict Content-Security-Policy (scripts and styles only from
  /ui/static, nothing inline, no framing), `X-Frame-Options: DENY`,
  `Referrer-Policy: no-referrer`, `nosniff`, and `no-store` on pages, which
  show payloads an operator would not want left in a shared browser's cache.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "COOKIE_PATH",
    "FLASH_COOKIE",
    "SECURITY_HEADERS",
    "SESSION_COOKIE",
    "SESSION_TTL_S",
    "SecurityHeaders",
    "Session",
    "Sessions",
]

SESSION_COOKIE = "relay_session"
FLASH_COOKIE = "relay_flash"
COOKIE_PATH = "/ui"
SESSION_TTL_S = 12 * 3600  # a working day; then the token is asked again
FLASH_TTL_S = 120

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
])

SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


@dataclass(frozen=True, slots=True)
class Session:
    """A browser's dashboard session; `authenticated` once the admin token was given."""

    sid: str
    expires_at: int
    authenticated: bool


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _fingerprint(token: str | None) -> str:
    return hashlib.sha256((token or "").encode()).hexdigest()


class Sessions:
    """Issues and checks session cookies, CSRF tokens and signed flash messages.

    One instance per app, so the key is per process: nothing to configure, no
    secret on disk, and a stolen cookie dies with the process at the latest.
    The cost is that a restart logs operators out, and relay processes behind
    one load balancer (PostgreSQL scale-out) do not share sessions.
    """

    def __init__(self, key: bytes | None = None, clock: Callable[[], float] = time.time,
                 ttl_s: int = SESSION_TTL_S) -> None:
        self._key = key if key is not None else secrets.token_bytes(32)
        self._clock = clock
        self._ttl_s = ttl_s
        self._revoked: dict[str, int] = {}  # sid -> expiry, until the cookie would die anyway

    def _mac(self, purpose: str, *parts: str) -> str:
        message = "\x1f".join((purpose, *parts)).encode()
        return _b64(hmac.new(self._key, message, hashlib.sha256).digest())

    # -- sessions --------------------------------------------------------------------------

    def issue(self, *, authenticated: bool) -> Session:
        """A new session with a fresh id (never reuse the pre-login id: session fixation)."""
        return Session(secrets.token_urlsafe(18), int(self._clock()) + self._ttl_s,
                       authenticated)

    def encode(self, session: Session, token: str | None) -> str:
        auth = "1" if session.authenticated else "0"
        mac = self._mac("session", session.sid, str(session.expires_at), auth,
                        _fingerprint(token))
        return f"v1.{session.sid}.{session.expires_at}.{auth}.{mac}"

    def decode(self, value: str | None, token: str | None) -> Session | None:
        """The session a cookie carries, or None if forged, expired, revoked or stale.

        Stale means signed while another admin token was configured.
        """
        if not value:
            return None
        parts = value.split(".")
        if len(parts) != 5 or parts[0] != "v1" or not parts[2].isdigit():
            return None
        if parts[3] not in ("0", "1"):
            return None
        _, sid, expiry, auth, mac = parts
        expected = self._mac("session", sid, expiry, auth, _fingerprint(token))
        if not hmac.compare_digest(mac.encode(), expected.encode()):
            return None
        expires_at = int(expiry)
        if expires_at <= self._clock() or sid in self._revoked:
            return None
        return Session(sid, expires_at, auth == "1")

    def revoke(self, session: Session) -> None:
        """Logout: this session id is refused from now on, in this process."""
        now = self._clock()
        self._revoked = {sid: exp for sid, exp in self._revoked.items() if exp > now}
        self._revoked[session.sid] = session.expires_at

    # -- CSRF ------------------------------------------------------------------------------

    def csrf_token(self, session: Session) -> str:
        """The token forms of this session carry; derived, so nothing is stored."""
        return self._mac("csrf", session.sid)

    def check_csrf(self, session: Session | None, given: str | None) -> bool:
        if session is None or not given:
            return False
        return hmac.compare_digest(given.encode(), self.csrf_token(session).encode())

    # -- flash messages --------------------------------------------------------------------

    def encode_flash(self, flash: Mapping[str, Any]) -> str:
        """A message for the page after a redirect, signed so no one else can plant one."""
        body = _b64(json.dumps({**flash, "exp": int(self._clock()) + FLASH_TTL_S}).encode())
        return f"{body}.{self._mac('flash', body)}"

    def decode_flash(self, value: str | None) -> dict[str, Any] | None:
        if not value or "." not in value:
            return None
        body, mac = value.rsplit(".", 1)
        if not hmac.compare_digest(mac.encode(), self._mac("flash", body).encode()):
            return None
        try:
            flash = json.loads(_unb64(body))
        except ValueError:
            return None
        if not isinstance(flash, dict) or flash.get("exp", 0) < self._clock():
            return None
        return flash


def set_cookie(response: Response, request: Request, name: str, value: str,
               max_age: int) -> None:
    """HttpOnly, SameSite=Strict, scoped to /ui, and Secure when the page came over https."""
    response.set_cookie(name, value, max_age=max_age, path=COOKIE_PATH, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")


def delete_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(name, path=COOKIE_PATH, httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")


class SecurityHeaders:
    """ASGI wrapper adding the dashboard's security headers (for the static files)."""

    def __init__(self, app: ASGIApp, cache_control: str = "no-cache") -> None:
        self.app = app
        self.cache_control = cache_control

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                headers["Cache-Control"] = self.cache_control
            await send(message)

        await self.app(scope, receive, send_with_headers)
