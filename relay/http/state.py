"""`RelayState`: what every route and the lifespan share, and the SIGHUP reload.

Kept apart from the app that builds it (`relay.http.app`) so that the routes
(`ingest`, `admin`, the dashboard) can import it without importing the app,
which imports them: the HTTP package has no import cycle.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from relay.config import Config, load_config
from relay.delivery.dispatcher import Dispatcher
from relay.exceptions import ConfigError
from relay.http.auth import HostRule
from relay.metrics import RelayMetrics
from relay.routing import Router
from relay.storage import Storage

__all__ = ["RelayState", "active_endpoints", "host_rule"]

log = structlog.get_logger("relay")


@dataclass
class RelayState:
    """What every route needs, reached as `request.app.state.relay`."""

    config: Config
    storage: Storage
    dispatcher: Dispatcher
    router: Router
    clock: Callable[[], float] = field(default=time.time)
    started_at: float = field(default_factory=time.time)
    metrics: RelayMetrics = field(default_factory=RelayMetrics)
    host_rule: HostRule = field(init=False)

    def __post_init__(self) -> None:
        self.host_rule = host_rule(self.config)

    async def reload(self) -> bool:
        """Re-read relay.yaml (SIGHUP); keep the running config if the new one is invalid.

        In-flight attempts finish with the config they started with; new attempts
        use the new endpoints, secrets and limits. `listen` and `storage` need a
        restart, so changes to them are reported and ignored.
        """
        if self.config.source is None:
            log.error("reload_rejected", reason="the config was not loaded from a file")
            return False
        try:
            new = load_config(self.config.source)
        except ConfigError as exc:
            log.error("reload_rejected", path=str(self.config.source), errors=exc.errors)
            return False
        old = self.config
        fixed = {"listen": old.listen, "storage": old.storage}
        ignored = [key for key, value in fixed.items() if getattr(new, key) != value]
        if ignored:
            log.warning("reload_needs_restart", keys=ignored)
        self.config = new.model_copy(update=fixed)
        self.host_rule = host_rule(self.config)
        self.router = Router(self.config.endpoints)
        await self.storage.sync_endpoints(active_endpoints(self.config), self.clock())
        self.dispatcher.reload(self.config, await self.storage.held_endpoints())
        log.info("config_reloaded", path=str(self.config.source),
                 endpoints=len(self.config.endpoints))
        return True


def host_rule(config: Config) -> HostRule:
    return HostRule(config.listen_host, config.listen_port, config.admin.allowed_hosts)


def active_endpoints(config: Config) -> list[str]:
    """The endpoints deliveries may go to: configured and enabled."""
    return [e.name for e in config.endpoints if e.enabled]
