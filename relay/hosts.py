"""Host names and addresses as the relay compares them: whole, never by prefix.

Shared by the config (what `admin.allowed_hosts` may hold) and the HTTP layer
(whether a request's `Host` names this relay).
"""

from __future__ import annotations

import ipaddress
import re

__all__ = ["HOST_NAME_RE", "is_address", "is_loopback_address", "split_host"]

_PORT = re.compile(r"[0-9]{1,5}")
# A DNS name, lowercased: labels of letters, digits and inner hyphens, a final dot allowed.
HOST_NAME_RE = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)(?:\.(?!-)[a-z0-9-]{1,63}(?<!-))*\.?")


def split_host(value: str) -> tuple[str, str | None] | None:
    """`Host` as (lowercased name or address, port or None); None when it is malformed."""
    text = value.strip(" \t").lower()
    if text.startswith("["):
        address, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        name, port = address, (rest[1:] if rest else None)
    elif text.count(":") == 1:
        name, _, port = text.partition(":")
    elif ":" in text:
        return None  # an IPv6 address must be in brackets
    else:
        name, port = text, None
    if not name or (port is not None and not _PORT.fullmatch(port)):
        return None
    return name, port


def is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def is_loopback_address(text: str) -> bool:
    """True for a parsed loopback address (127.0.0.0/8, ::1); a name never is."""
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False
