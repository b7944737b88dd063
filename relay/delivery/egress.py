"""How deliveries leave: straight to the endpoint, or through `delivery.proxy`.

With a proxy, the SSRF rules still judge the destination, not the proxy:
the relay resolves the endpoint's name itself and refuses it as it would a
direct delivery (`GuardedResolver.checked`) before the proxy hears of it. An
https:// delivery then asks the proxy to `CONNECT` to the checked address,
not to the name, so the proxy cannot resolve it to something else (TLS SNI,
the certificate check and `Host` stay on the name, as they do direct). A
plain http:// delivery is sent to the proxy in absolute form with its name,
because a proxy takes the target's host from the request line: the relay has
checked the name's addresses, but the proxy resolves it once more.

The proxy itself is the operator's: its address is reachable whatever
`delivery.allow_networks` says (proxies live on private networks), and only
at its own port.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
from yarl import URL

from relay.config.proxy import ProxyTarget, bypasses, proxy_target

__all__ = ["Egress", "proxy_answer_error", "proxy_status_error"]


@dataclass(frozen=True, slots=True)
class Egress:
    """The proxy of the moment (None: deliveries go direct) and what bypasses it."""

    proxy: ProxyTarget | None = None
    no_proxy: tuple[str, ...] = ()

    @classmethod
    def of(cls, proxy: str | None, no_proxy: tuple[str, ...] = ()) -> Egress:
        return cls(proxy_target(proxy) if proxy else None, no_proxy)

    @property
    def url(self) -> URL | None:
        return URL(self.proxy.url) if self.proxy is not None else None

    @property
    def authorization(self) -> str | None:
        """The `Proxy-Authorization` value (Basic) when the proxy URL has credentials."""
        if self.proxy is None or self.proxy.user is None:
            return None
        return aiohttp.encode_basic_auth(self.proxy.user, self.proxy.password or "")

    def applies(self, host: str) -> bool:
        """Whether a delivery to `host` goes through the proxy."""
        return self.proxy is not None and not bypasses(self.no_proxy, host)

    def is_proxy(self, host: str | None, port: int | None) -> bool:
        proxy = self.proxy
        return proxy is not None and host == proxy.host and port == proxy.port


def proxy_answer_error(status: int, reason: str | None, *, connect: bool = False,
                       proxy_status: str | None = None) -> str:
    """The error of an attempt the proxy itself refused, rather than the endpoint.

    That is the proxy's answer to CONNECT, a 407, or an answer carrying a
    `Proxy-Status` error (RFC 9209), with which proxies say that they, not
    the destination, failed.
    """
    text = f"proxy error: the proxy answered {status} {reason or ''}".rstrip()
    if connect:
        text += " to CONNECT"
    if proxy_status:
        shown = "".join(c if c.isprintable() else "?" for c in proxy_status[:200])
        text += f" (Proxy-Status: {shown})"
    if status == 407:
        text += "; check delivery.proxy's credentials"
    return text


def proxy_status_error(value: str | None) -> str | None:
    """The `Proxy-Status` of an answer when it reports a proxy error, else None."""
    if value is None or "error=" not in value.lower():
        return None
    return value
