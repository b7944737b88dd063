"""`storage:`: which database, and how its URL is shown without its password."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from relay.units import parse_duration

__all__ = ["POSTGRES_OPTIONS", "PostgresConfig", "postgres_settings", "redact_url", "to_storage"]

POSTGRES_OPTIONS = {"pool_size", "timeout"}


@dataclass(frozen=True)
class PostgresConfig:
    """`storage: postgresql://...` split into what the driver gets and what the relay uses.

    The relay's own query parameters (`pool_size`, `timeout`) are taken out of
    the URL; every other parameter (`sslmode`, `search_path`, ...) goes to the
    driver, which sends unknown ones to the server as settings.
    """

    dsn: str = field(repr=False)  # may hold a password
    pool_size: int = 10
    timeout_s: float = 10.0


def to_storage(value: Any) -> str:
    if isinstance(value, str) and value.startswith("sqlite:///") and len(value) > 10:
        return value
    if isinstance(value, str) and value.startswith(("postgresql://", "postgres://")):
        postgres_settings(value)  # raises ValueError naming what is wrong
        return value
    raise ValueError("expected sqlite:///PATH (e.g. sqlite:///./relay.db) or "
                     f"postgresql://USER@HOST:PORT/DB, got {redact_url(str(value))!r}")


def postgres_settings(url: str) -> PostgresConfig:
    """Validate a PostgreSQL URL and take the relay's own options out of its query."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError as exc:
        raise ValueError(f"{redact_url(url)!r} is not a valid URL: {exc}") from None
    if not parts.path.strip("/") and "dbname=" not in parts.query:
        raise ValueError(f"expected postgresql://USER@HOST:PORT/DB, got {redact_url(url)!r} "
                         "(no database name)")
    query = parse_qsl(parts.query, keep_blank_values=True)
    options = {k: v for k, v in query if k in POSTGRES_OPTIONS}
    pool_size = 10
    if "pool_size" in options:
        text = options["pool_size"]
        if not (text.isascii() and text.isdigit()) or not 2 <= int(text) <= 1000:
            raise ValueError(f"pool_size: expected a whole number from 2 to 1000, got {text!r}")
        pool_size = int(text)
    timeout_s = 10.0
    if "timeout" in options:
        try:
            timeout_s = parse_duration(options["timeout"])
        except ValueError as exc:
            raise ValueError(f"timeout: {exc}") from None
        if timeout_s <= 0:
            raise ValueError(f"timeout: must be greater than zero, got {options['timeout']!r}")
    rest = urlencode([(k, v) for k, v in query if k not in POSTGRES_OPTIONS])
    dsn = urlunsplit(("postgresql", parts.netloc, parts.path, rest, parts.fragment))
    return PostgresConfig(dsn=dsn, pool_size=pool_size, timeout_s=timeout_s)


def redact_url(url: str) -> str:
    """A storage URL fit for logs and `relay check`: any password replaced by `***`."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url.split("@", 1)[-1] if "@" in url else url
    query = parse_qsl(parts.query, keep_blank_values=True)
    if password is None and all(k != "password" for k, _ in query):
        return url
    if any(k == "password" for k, _ in query):
        query = [(k, "***" if k == "password" else v) for k, v in query]
        parts = parts._replace(query=urlencode(query, safe="*"))
    if password is None:
        return urlunsplit(parts)
    userinfo, host = parts.netloc.rsplit("@", 1)
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
