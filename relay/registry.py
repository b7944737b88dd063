"""The relay's endpoints as one set: those relay.yaml declares and those made through the API.

Both kinds are `EndpointConfig`s, validated by the same schema, routed and
delivered to alike; what differs is where they live. relay.yaml's are read
at start and on SIGHUP and cannot be changed over the API (`source:
"config"`). The API's live in the database (`source: "api"`), their secrets
sealed, and are read back at start, after each change, and on PostgreSQL
when another replica announces one.

An API endpoint keeps the fields its creator gave (`spec`), not their
defaults, so that what it inherits from `delivery` (timeout, retry schedule,
jitter) follows relay.yaml. A secret being rotated out stays beside the new
one until its `expires_at`; the registry hands out only unexpired secrets,
newest first, and says when the next one expires so the caller can refresh.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import structlog

from relay.config import Config, EndpointConfig, validate_endpoint
from relay.secrets_at_rest import SecretBox, SecretsUnreadable
from relay.storage.base import StoredEndpoint

__all__ = ["ApiEndpoint", "Registry", "SecretVersion", "Source", "open_secrets", "seal_secrets"]

log = structlog.get_logger("relay")

Source = Literal["config", "api"]


@dataclass(frozen=True, slots=True)
class SecretVersion:
    """One of an API endpoint's secrets; `expires_at` is set once it has been rotated out."""

    value: str
    expires_at: float | None = None

    def __repr__(self) -> str:
        return f"SecretVersion(<secret>, expires_at={self.expires_at!r})"


@dataclass(frozen=True, slots=True)
class ApiEndpoint:
    """An endpoint made through the API: its stored form and its running config."""

    row: StoredEndpoint
    secrets: tuple[SecretVersion, ...]
    config: EndpointConfig  # spec resolved against `delivery`, with the unexpired secrets

    @property
    def spec(self) -> dict[str, Any]:
        """The fields its creator gave, read from the stored row when a change needs them.

        Not kept parsed: ten thousand endpoints' dicts were ~10 MB of a relay
        that reads them only to apply a PATCH or a rotation.
        """
        spec: dict[str, Any] = json.loads(self.row.spec)
        return spec


def seal_secrets(box: SecretBox, name: str, secrets: Sequence[SecretVersion]) -> str:
    data = [[s.value, s.expires_at] for s in secrets]
    return box.seal(json.dumps(data).encode(), name)


def open_secrets(box: SecretBox, name: str, sealed: str) -> tuple[SecretVersion, ...]:
    data = json.loads(box.open(sealed, name))
    return tuple(SecretVersion(str(value), expires) for value, expires in data)


class Registry:
    """Every endpoint the relay knows, by name; rebuilt from its two sources."""

    def __init__(self, config: Config, box: SecretBox | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._box = box
        self._clock = clock
        self._declared: dict[str, EndpointConfig] = {e.name: e for e in config.endpoints}
        self._api: dict[str, ApiEndpoint] = {}

    # -- reading -------------------------------------------------------------------------

    def __iter__(self) -> Iterator[EndpointConfig]:
        """relay.yaml's endpoints in file order, then the API's by name."""
        yield from self._declared.values()
        for name in sorted(self._api):
            if name not in self._declared:
                yield self._api[name].config

    def __len__(self) -> int:
        return len(self._declared) + sum(1 for n in self._api if n not in self._declared)

    def get(self, name: str) -> EndpointConfig | None:
        declared = self._declared.get(name)
        if declared is not None:
            return declared
        api = self._api.get(name)
        return api.config if api is not None else None

    def source(self, name: str) -> Source | None:
        if name in self._declared:
            return "config"
        return "api" if name in self._api else None

    def api(self, name: str) -> ApiEndpoint | None:
        return None if name in self._declared else self._api.get(name)

    def active(self) -> list[str]:
        """The endpoints deliveries may go to: known and enabled."""
        return [e.name for e in self if e.enabled]

    def tenant_count(self, tenant: str) -> int:
        return sum(1 for a in self._api.values() if a.row.tenant == tenant)

    @property
    def box(self) -> SecretBox | None:
        return self._box

    def next_expiry(self, now: float) -> float | None:
        """When the next rotated-out secret stops being used; None if none is waiting."""
        times = [s.expires_at for a in self._api.values() for s in a.secrets
                 if s.expires_at is not None and s.expires_at > now]
        return min(times, default=None)

    # -- changing ------------------------------------------------------------------------

    def with_config(self, config: Config) -> Registry:
        """The registry under a reloaded relay.yaml: its endpoints, the API's re-resolved."""
        registry = Registry(config, self._box, self._clock)
        registry.load(a.row for a in self._api.values())
        return registry

    def load(self, rows: Iterable[StoredEndpoint]) -> set[str]:
        """Replace the API endpoints with `rows`; returns the names that changed."""
        fresh: dict[str, ApiEndpoint] = {}
        for row in rows:
            endpoint = self.resolve(row)
            if endpoint is not None:
                fresh[row.name] = endpoint
        old = self._api
        changed = {name for name in old.keys() | fresh.keys()
                   if name not in old or name not in fresh
                   or old[name].config != fresh[name].config}
        self._api = fresh
        return changed

    def put(self, endpoint: ApiEndpoint) -> None:
        self._api[endpoint.row.name] = endpoint

    def drop(self, name: str) -> None:
        self._api.pop(name, None)

    def resolve(self, row: StoredEndpoint,
                secrets: Sequence[SecretVersion] | None = None) -> ApiEndpoint | None:
        """A stored endpoint made runnable; None (logged) when it cannot be.

        A row stops resolving when its secrets do not open under this relay's
        key, or when relay.yaml's `delivery` makes it invalid; it is skipped
        rather than allowed to stop the relay, and deliveries to it are held.
        """
        try:
            spec = json.loads(row.spec)
            if secrets is None:
                if self._box is None:
                    raise SecretsUnreadable("no secrets_key is configured")
                secrets = open_secrets(self._box, row.name, row.secrets)
        except (ValueError, SecretsUnreadable) as exc:
            log.error("api_endpoint_unreadable", endpoint=row.name, error=str(exc))
            return None
        now = self._clock()
        active = [s.value for s in secrets if s.expires_at is None or s.expires_at > now]
        endpoint, problems = validate_endpoint({**spec, "secret": active}, self._config.delivery)
        if endpoint is None:
            log.error("api_endpoint_invalid", endpoint=row.name,
                      errors=[f"{path}: {message}" for path, message in problems])
            return None
        return ApiEndpoint(row, tuple(secrets), endpoint)
