"""A small HTTP client for the relay's own API, used by the CLI.

It reads the listener and the tokens from relay.yaml, so `relay send` and the
admin commands work with no flags on the host the relay runs on.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import httpx

from relay import __version__
from relay.config import ClientSettings, Config

__all__ = ["RelayClient", "RelayNotRunning", "base_url"]


class RelayNotRunning(Exception):
    """Nothing answers at the configured listener."""


def base_url(config: Config | ClientSettings) -> str:
    host = config.listen_host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and address.is_unspecified:
        host = "127.0.0.1" if address.version == 4 else "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{config.listen_port}"


class RelayClient:
    """The relay's own API, with the tokens of relay.yaml (`ClientSettings`)."""

    def __init__(self, settings: ClientSettings, timeout_s: float = 30.0) -> None:
        self.settings = settings
        self.url = base_url(settings)
        self._http = httpx.Client(base_url=self.url, timeout=timeout_s, trust_env=False,
                                  headers={"User-Agent": f"relay-cli/{__version__}"})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RelayClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self, method: str, path: str, *, token: str | None, **kwargs: Any
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            return self._http.request(method, path, headers=headers, **kwargs)
        except httpx.ConnectError:
            raise RelayNotRunning(
                f"no relay is answering at {self.url} (start it with `relay run`, or pass "
                "-c with the config of the relay you mean)"
            ) from None
        except httpx.TimeoutException:
            raise RelayNotRunning(f"the relay at {self.url} did not answer in time") from None

    def send_event(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        self.settings.need("ingest.token")
        return self.request("POST", "/v1/events", token=self.settings.ingest_token,
                            content=body, headers={"Content-Type": "application/json", **headers})

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.settings.need("admin.token")
        return self.request(method, path, token=self.settings.admin_token, **kwargs)

    def admin_json(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        """An admin call's status and parsed answer; a non-JSON answer becomes a `detail`."""
        response = self.admin(method, path, **kwargs)
        try:
            return response.status_code, response.json()
        except ValueError:
            text = response.text.strip() or response.reason_phrase
            return response.status_code, {"status": response.status_code, "detail": text}
