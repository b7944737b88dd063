"""`delivery.proxy` and `delivery.no_proxy`: where deliveries leave through, and which do not.

The proxy URL may carry credentials (`http://${PROXY_USER}:${PROXY_PASSWORD}@
proxy.internal:3128`, read from the environment by relay.yaml's `${VAR}`),
so what the relay shows of it (`relay check`, logs, the admin API) has the
password masked, as `storage:` URLs have.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

from pydantic import BeforeValidator, PlainSerializer

from relay.hosts import HOST_NAME_RE, is_address

__all__ = ["NoProxy", "ProxyTarget", "ProxyUrl", "bypasses", "proxy_target", "redact_proxy"]

_USERINFO_RE = re.compile(r"[^@/?#\s]*")


@dataclass(frozen=True, slots=True)
class ProxyTarget:
    """A proxy URL taken apart: where to connect, and the Basic credentials if any."""

    host: str
    port: int
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def proxy_target(value: str) -> ProxyTarget:
    """Parse `http://[user[:password]@]host:port`; `ValueError` says what is wrong."""
    shown = redact_proxy(value)
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{shown!r} is not a valid URL: {exc}") from None
    if parts.scheme != "http":
        raise ValueError(f"expected an http:// proxy URL such as http://proxy.internal:3128, "
                         f"got {shown!r} (https:// to the proxy itself is not supported; "
                         "deliveries to https:// endpoints stay encrypted through it)")
    host = (parts.hostname or "").lower()
    if not host or not (HOST_NAME_RE.fullmatch(host) or is_address(host)):
        raise ValueError(f"expected a proxy host name or address, got {shown!r}")
    if port is None:
        raise ValueError(f"the proxy URL needs its port, e.g. http://{host}:3128 "
                         f"(got {shown!r})")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"a proxy URL is only http://host:port, got {shown!r}")
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else None
    if userinfo is not None and not _USERINFO_RE.fullmatch(userinfo):
        raise ValueError("the proxy URL's credentials must be percent-encoded")
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return ProxyTarget(host, port, user, password)


def redact_proxy(value: str) -> str:
    """The URL with its password (when it has one) as `***`."""
    scheme, sep, rest = value.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return value
    userinfo, _, host = rest.partition("@")
    user = userinfo.partition(":")[0]
    return f"{scheme}://{user}:***@{host}" if ":" in userinfo else value


def _to_proxy(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected an http:// proxy URL, got {type(value).__name__}")
    proxy_target(value)
    return value


def _to_no_proxy(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple):
        raise ValueError("expected a list of host names, .domains, addresses or CIDRs")
    entries: list[str] = []
    for item in value:
        text = str(item).strip().lower() if isinstance(item, str) else None
        if text is None:
            raise ValueError(f"expected host names, .domains, addresses or CIDRs, got {item!r}")
        name = text.removeprefix("*.").removeprefix(".")
        if HOST_NAME_RE.fullmatch(name) and not is_address(name):
            entries.append(name.rstrip("."))
            continue
        try:
            entries.append(str(ipaddress.ip_network(text, strict=False)))
        except ValueError:
            raise ValueError(f"{item!r} is not a host name (crm.internal), a domain "
                             "(.internal), an address or a CIDR (10.0.0.0/8)") from None
    return tuple(entries)


def bypasses(no_proxy: tuple[str, ...], host: str) -> bool:
    """Whether a delivery to `host` goes direct: the host, or a domain it is in, is listed.

    An address or CIDR entry matches a URL whose host is an address in it; a
    name entry matches that name and every name under it (`internal` matches
    `crm.internal`), never a name that merely ends with the same letters.
    """
    host = host.lower().rstrip(".")
    if is_address(host):
        address = ipaddress.ip_address(host)
        for entry in no_proxy:
            if "/" in entry:
                network = ipaddress.ip_network(entry)
                if address.version == network.version and address in network:
                    return True
        return False
    return any(host == entry or host.endswith("." + entry)
               for entry in no_proxy if "/" not in entry)


ProxyUrl = Annotated[str | None, BeforeValidator(_to_proxy, json_schema_input_type=str | None),
                     PlainSerializer(lambda v: None if v is None else redact_proxy(v),
                                     return_type=str | None, when_used="json")]
NoProxy = Annotated[tuple[str, ...],
                    BeforeValidator(_to_no_proxy, json_schema_input_type=list[str])]
