"""Sources made through the admin API, to and from their stored rows.

The row holds the source's fields as JSON, which never include a secret
(`VerifyConfig` excludes them from every dump), and its secrets, tokens and
passwords sealed under `secrets_key` with the source's own context, so a
sealed value cannot be moved to another source or to an endpoint.
"""

from __future__ import annotations

import json

import structlog
from pydantic import ValidationError

from relay.config.sources import SourceConfig
from relay.secrets_at_rest import SecretBox, SecretsUnreadable
from relay.storage.base import StoredSource

__all__ = ["open_source", "seal_source"]

log = structlog.get_logger("relay")
_SECRET_KEYS = (("secret", "secrets"), ("token", "tokens"), ("password", "passwords"))


def _context(name: str) -> str:
    return f"source:{name}"


def seal_source(box: SecretBox, source: SourceConfig, created_at: float,
                updated_at: float) -> StoredSource:
    verify = source.verify
    sealed = {key: list(getattr(verify, field)) for key, field in _SECRET_KEYS}
    return StoredSource(source.name, json.dumps(source.model_dump(mode="json")),
                        box.seal(json.dumps(sealed).encode(), _context(source.name)),
                        created_at, updated_at)


def open_source(box: SecretBox | None, row: StoredSource) -> SourceConfig | None:
    """The source of a stored row, or None (logged) when this relay cannot read it."""
    if box is None:
        log.error("source_unreadable", source=row.name, reason="no secrets_key")
        return None
    try:
        secrets = json.loads(box.open(row.secrets, _context(row.name)))
        spec = json.loads(row.spec)
        spec["verify"] = {**spec["verify"], **secrets}
        return SourceConfig.model_validate(spec)
    except (SecretsUnreadable, ValueError, KeyError, TypeError, ValidationError) as exc:
        log.error("source_unreadable", source=row.name, reason=str(exc)[:200])
        return None
