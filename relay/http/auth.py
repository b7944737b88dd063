"""Who may talk to the relay: bearer tokens, and the rules a browser's requests must pass.

The relay's API is for programs (the platform, scripts, the CLI), but a browser
on the operator's machine can reach a loopback listener too, and any web page
it opens may try to. Three rules keep such pages out:

- **Host** (DNS rebinding): without a token, a request is answered only when
  its `Host` names the relay as the operator would: `localhost`, a loopback
  address such as `127.0.0.1` or `[::1]`, the listen address, or a name listed
  in `admin.allowed_hosts`, with no port or the listener's. A page of
  `evil.example` whose name was re-pointed at 127.0.0.1 sends its own name and
  is refused. Names are compared whole and addresses parsed, never by prefix
  (`127.evil.example` is a name, not a loopback address).
- **Other-site signals**: a browser says where a request comes from
  (`Sec-Fetch-Site`, `Origin`); a request another site made is refused.
  Programs send neither header, so they are unaffected.
- **JSON bodies only** (admin POSTs, checked by the admin routes): a form or
  `text/plain` post, the requests a page may send across sites without asking,
  gets 415.

The dashboard adds sessions and CSRF tokens on top (`relay.http.dashboard`).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from relay.hosts import is_loopback_address, split_host
from relay.http.problems import Problem

__all__ = [
    "HOST_NOT_ALLOWED",
    "HostRule",
    "check_token",
    "from_other_site",
    "is_json_media_type",
]

HOST_NOT_ALLOWED = (
    "this relay has no token, so it answers only to the names a browser on this host "
    "would use (localhost, 127.0.0.1, [::1]) or those in admin.allowed_hosts; set "
    "admin.allowed_hosts, or a token, to reach it by another name"
)
_CACHE_LIMIT = 256
_SAME_SITE_FETCH = (None, "same-origin", "none")


def check_token(header: str, token: str | None, what: str) -> None:
    """Enforce `Authorization: Bearer <token>` (`header`) when a token is configured.

    The comparison is constant-time; the answer never says how close a guess was.
    """
    if not token:
        return
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise Problem(401, "unauthorized", f"send `Authorization: Bearer <{what}>`; "
                      "this relay requires a token", headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise Problem(401, "unauthorized", f"the bearer token is not the configured {what}",
                      headers={"WWW-Authenticate": "Bearer"})


class HostRule:
    """Decides whether a `Host` header names this relay (see the module docstring).

    Built once per config; answers are cached per header value, since the
    platform sends the same `Host` on every ingest.
    """

    def __init__(self, listen_host: str, listen_port: int, allowed: Iterable[str] = ()) -> None:
        self.port = str(listen_port)
        self.names = {"localhost", listen_host.lower().strip("[]")}
        self.exact: set[tuple[str, str | None]] = set()
        for entry in allowed:
            parts = split_host(entry)
            if parts is None:
                continue  # the config refuses malformed entries; nothing to match here
            if parts[1] is None:
                self.names.add(parts[0])
            else:
                self.exact.add(parts)
        self._cache: dict[str, bool] = {}

    def allows(self, host_header: str) -> bool:
        known = self._cache.get(host_header)
        if known is not None:
            return known
        answer = self._decide(host_header)
        if len(self._cache) < _CACHE_LIMIT:
            self._cache[host_header] = answer
        return answer

    def _decide(self, host_header: str) -> bool:
        parts = split_host(host_header)
        if parts is None:
            return False
        if parts in self.exact:
            return True
        name, port = parts
        if port is not None and port.lstrip("0") != self.port.lstrip("0"):
            return False
        return name in self.names or is_loopback_address(name)


def is_json_media_type(content_type: str) -> bool:
    """`application/json` or an `application/*+json` type, parameters ignored."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json"))


def from_other_site(headers: Mapping[str, str], *, null_origin_is_other: bool = True) -> bool:
    """True when the browser says another site made this request.

    `Sec-Fetch-Site` is the direct signal (anything but `same-origin` or
    `none`, which a typed URL or bookmark sends); `Origin` and `Referer`, when
    present, must name the host the request was sent to. Hosts are compared
    without the scheme, so a TLS-terminating proxy that does not forward the
    scheme does not lock operators out. `Origin: null` (a sandboxed frame, a
    `data:` page, a redirect across sites) is refused unless
    `null_origin_is_other` is off: the dashboard turns it off, because browsers
    send it on its own same-origin forms under `Referrer-Policy: no-referrer`,
    and its forms carry a CSRF token anyway.
    """
    if headers.get("sec-fetch-site") not in _SAME_SITE_FETCH:
        return True
    host = headers.get("host", "").strip().lower()
    for name in ("origin", "referer"):
        value = headers.get(name)
        if value is None:
            continue
        if value == "null":
            if null_origin_is_other:
                return True
            continue
        try:
            netloc = urlsplit(value).netloc.lower()
        except ValueError:
            return True
        if netloc != host:
            return True
    return False
