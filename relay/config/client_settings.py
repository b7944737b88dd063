"""`ClientSettings`: what a CLI command that talks to a running relay reads of relay.yaml.

`loading.load_client_settings` builds it leniently (the listener and the
tokens only), so a secret in an unset environment variable or a typo in an
endpoint does not stop `relay endpoints` or `relay reload`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from relay.exceptions import ConfigError

__all__ = ["ClientSettings"]


@dataclass(frozen=True)
class ClientSettings:
    """The listener and tokens a CLI command uses; `unresolved` names keys it could not read."""

    listen_host: str
    listen_port: int
    ingest_token: str | None = field(default=None, repr=False)
    admin_token: str | None = field(default=None, repr=False)
    unresolved: dict[str, str] = field(default_factory=dict)

    def need(self, key: str) -> None:
        """Raise `ConfigError` if `key` (e.g. `admin.token`) could not be read."""
        if key in self.unresolved:
            raise ConfigError([f"{key}: {self.unresolved[key]}"])
