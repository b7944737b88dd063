"""relay.yaml: from YAML text to frozen, typed configuration objects.

Parsing is a pure function of the text and the environment (`parse_config`),
so tests and `relay check` run it without starting anything. Every problem is
collected with its key path (`endpoints[1].url`) and raised together in one
`ConfigError`, and unknown keys are errors: a typo such as `retry_shedule`
must not silently fall back to a default.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import yaml

from relay.exceptions import ConfigError
from relay.hosts import HOST_NAME_RE, is_address, split_host
from relay.units import format_duration, parse_duration, parse_rate, parse_size

__all__ = [
    "DEFAULT_TYPE_FIELDS",
    "AdminConfig",
    "Config",
    "DeliveryConfig",
    "EndpointConfig",
    "IngestConfig",
    "LimitsConfig",
    "LoggingConfig",
    "PostgresConfig",
    "load_config",
    "parse_config",
    "redact_url",
    "standard_secret_key",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Scheme = Literal["standard", "x-webhook", "babel"]
SCHEMES: tuple[Scheme, ...] = ("standard", "x-webhook", "babel")
DEFAULT_TYPE_FIELDS = ("type", "event", "event_type", "EventType")
DEFAULT_RETRY_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
PATTERN_RE = re.compile(r"[A-Za-z0-9_.*-]{1,128}")
TYPE_RE = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_ENV_RE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class IngestConfig:
    token: str | None = field(default=None, repr=False)
    max_body_bytes: int = 1024 * 1024
    type_fields: tuple[str, ...] = DEFAULT_TYPE_FIELDS
    id_field: str | None = None


@dataclass(frozen=True)
class AdminConfig:
    token: str | None = field(default=None, repr=False)
    # Host names, besides localhost and loopback addresses, that a tokenless
    # relay answers to (relay.http.auth explains the DNS-rebinding rule).
    allowed_hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class LimitsConfig:
    """Bounds on what one request may make the relay hold before it is refused."""

    max_header_bytes: int = 64 * 1024
    max_headers: int = 100


@dataclass(frozen=True)
class DeliveryConfig:
    timeout_s: float = 10.0
    retry_schedule_s: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    jitter: float = 0.1
    concurrency: int = 64
    allow_networks: tuple[Network, ...] = ()
    shutdown_grace_s: float = 30.0
    # A claimed delivery's lease is the endpoint's timeout plus this margin; when
    # it runs out (the process died) any relay sharing the store takes it over.
    lease_margin_s: float = 60.0


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "info"
    format: Literal["auto", "json", "console"] = "auto"


@dataclass(frozen=True)
class EndpointConfig:
    name: str
    url: str
    events: tuple[str, ...] = ("*",)
    secrets: tuple[str, ...] = field(default=(), repr=False)
    signature: Scheme = "standard"
    headers: tuple[tuple[str, str], ...] = ()
    enabled: bool = True
    allow_http: bool = False
    retry_client_errors: bool = True
    max_in_flight: int = 10
    rate_limit_per_s: float | None = None
    ordering: Literal["none", "fifo"] = "none"
    disable_after_s: float = 5 * 86400.0
    timeout_s: float = 10.0
    retry_schedule_s: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    jitter: float = 0.1


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


POSTGRES_OPTIONS = {"pool_size", "timeout"}


@dataclass(frozen=True)
class Config:
    listen_host: str = "127.0.0.1"
    listen_port: int = 8787
    storage: str = "sqlite:///./relay.db"
    ingest: IngestConfig = IngestConfig()
    admin: AdminConfig = AdminConfig()
    limits: LimitsConfig = LimitsConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    logging: LoggingConfig = LoggingConfig()
    retention_s: float = 30 * 86400.0
    events: tuple[str, ...] | None = None
    events_strict: bool = False
    endpoints: tuple[EndpointConfig, ...] = ()
    source: Path | None = None

    @property
    def sqlite_path(self) -> Path | None:
        """The database file for `sqlite:///` storage, resolved against the config's folder."""
        if not self.storage.startswith("sqlite:///"):
            return None
        path = Path(self.storage[len("sqlite:///"):])
        if not path.is_absolute() and self.source is not None:
            path = self.source.parent / path
        return path

    @property
    def postgres(self) -> PostgresConfig | None:
        """The connection settings for `postgresql://` storage, or None for SQLite."""
        if not self.storage.startswith(("postgresql://", "postgres://")):
            return None
        return _postgres(self.storage)

    def endpoint(self, name: str) -> EndpointConfig | None:
        return next((e for e in self.endpoints if e.name == name), None)

    def summary(self) -> str:
        """The human summary `relay check` prints: what this file will do, without secrets."""
        d = self.delivery
        lines = [
            f"listen     {self.listen_host}:{self.listen_port}",
            f"storage    {redact_url(self.storage)}",
            f"ingest     token {'set' if self.ingest.token else 'not set'}, "
            f"max body {self.ingest.max_body_bytes} bytes",
            f"admin      token {'set' if self.admin.token else 'not set'}",
            f"delivery   timeout {format_duration(d.timeout_s)}, retries "
            f"[{', '.join(format_duration(s) for s in d.retry_schedule_s)}], "
            f"jitter {d.jitter:g}, concurrency {d.concurrency}",
            f"retention  {format_duration(self.retention_s)}",
            f"events     {len(self.events)} in catalog{' (strict)' if self.events_strict else ''}"
            if self.events is not None else "events     no catalog",
            f"endpoints  {len(self.endpoints)}",
        ]
        for e in self.endpoints:
            state = "" if e.enabled else " (disabled)"
            secrets = f"{len(e.secrets)} secret{'s' if len(e.secrets) != 1 else ''}"
            lines.append(f"  - {e.name}{state}: {e.url}")
            lines.append(f"      events {', '.join(e.events)}; {e.signature} signature, {secrets}")
        return "\n".join(lines)


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Config:
    """Read and parse a relay.yaml file; raise `ConfigError` with every problem found."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{file}: no such file (pass -c PATH or set RELAY_CONFIG)"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{file}: cannot be read: {exc}"]) from None
    return parse_config(text, env=os.environ if env is None else env, source=file.resolve())


def parse_config(
    text: str, env: Mapping[str, str] | None = None, source: Path | None = None
) -> Config:
    """Parse relay.yaml text. Pure: the environment is passed in, nothing is opened."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{where}invalid YAML: {problem}"]) from None
    if raw is None:
        raw = {}
    parser = _Parser(env if env is not None else {})
    config = parser.config(raw, source)
    if parser.errors:
        raise ConfigError(parser.errors)
    return config


T = TypeVar("T")


class _Missing:
    pass


_MISSING = _Missing()


class _Parser:
    """Walks the YAML tree, collecting `key.path: problem` lines instead of stopping."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.errors: list[str] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}" if path else message)

    # -- helpers ---------------------------------------------------------------------------

    def expand(self, path: str, value: Any) -> Any:
        """Expand `${VAR}` and `${VAR:-default}` in string scalars (`$$` is a literal `$`)."""
        if not isinstance(value, str) or "$" not in value:
            return value

        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            if name in self.env:
                return self.env[name]
            if default is not None:
                return default
            self.error(path, f"environment variable {name} is not set "
                             f"(write ${{{name}:-default}} to give a default)")
            return ""

        return _ENV_RE.sub(replace, value)

    def mapping(self, path: str, value: Any, known: set[str]) -> dict[str, Any] | None:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(path or "top level", f"expected a mapping, got {_kind(value)}")
            return None
        for key in value:
            if key not in known:
                hint = _closest(str(key), known)
                self.error(_join(path, str(key)),
                           "unknown key" + (f" (did you mean {hint!r}?)" if hint else ""))
        return {str(k): v for k, v in value.items() if k in known}

    def get(self, path: str, data: Mapping[str, Any], key: str, convert: Callable[[Any], T],
            default: T) -> T:
        if key not in data or data[key] is None:
            return default
        key_path = _join(path, key)
        value = self.expand(key_path, data[key])
        try:
            return convert(value)
        except (ValueError, TypeError) as exc:
            self.error(key_path, str(exc))
            return default

    # -- sections --------------------------------------------------------------------------

    def config(self, raw: Any, source: Path | None) -> Config:
        top = self.mapping("", raw, {
            "listen", "storage", "ingest", "admin", "limits", "delivery", "logging",
            "retention", "events", "events_strict", "endpoints",
        })
        if top is None:
            return Config(source=source)
        host, port = self.get("", top, "listen", _listen, ("127.0.0.1", 8787))
        storage = self.get("", top, "storage", _storage, "sqlite:///./relay.db")
        ingest = self.ingest(top.get("ingest"))
        admin = self.admin(top.get("admin"))
        limits = self.limits(top.get("limits"))
        delivery = self.delivery(top.get("delivery"))
        logging = self.logging(top.get("logging"))
        retention = self.get("", top, "retention", _positive(parse_duration), 30 * 86400.0)
        events = self.get("", top, "events", _patterns(exact=True), None)
        strict = self.get("", top, "events_strict", _bool, False)
        if strict and events is None:
            self.error("events_strict", "is true but no `events` catalog is given")
        endpoints = self.endpoints(top.get("endpoints"), delivery)
        if not _is_loopback(host) and not (ingest.token and admin.token):
            missing = [k for k, v in (("ingest.token", ingest.token),
                                      ("admin.token", admin.token)) if not v]
            self.error("listen", f"{host} is not a loopback address, so {' and '.join(missing)} "
                                 "must be set (anyone who can reach it could post events)")
        return Config(
            listen_host=host, listen_port=port, storage=storage, ingest=ingest, admin=admin,
            limits=limits, delivery=delivery, logging=logging, retention_s=retention, events=events,
            events_strict=strict, endpoints=endpoints, source=source,
        )

    def ingest(self, raw: Any) -> IngestConfig:
        data = self.mapping("ingest", raw, {"token", "max_body_bytes", "type_fields", "id_field"})
        if data is None:
            return IngestConfig()
        return IngestConfig(
            token=self.get("ingest", data, "token", _optional_str, None),
            max_body_bytes=self.get("ingest", data, "max_body_bytes", parse_size, 1024 * 1024),
            type_fields=self.get("ingest", data, "type_fields", _str_list(nonempty=True),
                                 DEFAULT_TYPE_FIELDS),
            id_field=self.get("ingest", data, "id_field", _optional_str, None),
        )

    def admin(self, raw: Any) -> AdminConfig:
        data = self.mapping("admin", raw, {"token", "allowed_hosts"})
        if data is None:
            return AdminConfig()
        return AdminConfig(
            token=self.get("admin", data, "token", _optional_str, None),
            allowed_hosts=self.get("admin", data, "allowed_hosts", _host_names, ()),
        )

    def limits(self, raw: Any) -> LimitsConfig:
        data = self.mapping("limits", raw, {"max_header_bytes", "max_headers"})
        if data is None:
            return LimitsConfig()
        d = LimitsConfig()
        return LimitsConfig(
            max_header_bytes=self.get("limits", data, "max_header_bytes",
                                      _size_range(1024, 16 * 1024 * 1024), d.max_header_bytes),
            max_headers=self.get("limits", data, "max_headers", _int_range(8, 10_000),
                                 d.max_headers),
        )

    def logging(self, raw: Any) -> LoggingConfig:
        data = self.mapping("logging", raw, {"level", "format"})
        if data is None:
            return LoggingConfig()
        return LoggingConfig(
            level=self.get("logging", data, "level",
                           _choice("debug", "info", "warning", "error"), "info"),
            format=self.get("logging", data, "format", _choice("auto", "json", "console"), "auto"),
        )

    def delivery(self, raw: Any) -> DeliveryConfig:
        data = self.mapping("delivery", raw, {
            "timeout", "retry_schedule", "jitter", "concurrency", "allow_networks",
            "shutdown_grace", "lease_margin",
        })
        if data is None:
            return DeliveryConfig()
        d = DeliveryConfig()
        return DeliveryConfig(
            timeout_s=self.get("delivery", data, "timeout", _positive(parse_duration), d.timeout_s),
            retry_schedule_s=self.get("delivery", data, "retry_schedule", _schedule,
                                      d.retry_schedule_s),
            jitter=self.get("delivery", data, "jitter", _jitter, d.jitter),
            concurrency=self.get("delivery", data, "concurrency", _int_range(1, 10_000),
                                 d.concurrency),
            allow_networks=self.get("delivery", data, "allow_networks", _networks, ()),
            shutdown_grace_s=self.get("delivery", data, "shutdown_grace", parse_duration,
                                      d.shutdown_grace_s),
            lease_margin_s=self.get("delivery", data, "lease_margin", _positive(parse_duration),
                                    d.lease_margin_s),
        )

    def endpoints(self, raw: Any, delivery: DeliveryConfig) -> tuple[EndpointConfig, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            self.error("endpoints", f"expected a list of endpoints, got {_kind(raw)}")
            return ()
        result: list[EndpointConfig] = []
        seen: set[str] = set()
        for index, item in enumerate(raw):
            endpoint = self.endpoint(f"endpoints[{index}]", item, delivery)
            if endpoint is None:
                continue
            if endpoint.name in seen:
                self.error(f"endpoints[{index}].name",
                           f"{endpoint.name!r} is used by another endpoint; names must be unique")
            seen.add(endpoint.name)
            result.append(endpoint)
        return tuple(result)

    def endpoint(self, path: str, raw: Any, delivery: DeliveryConfig) -> EndpointConfig | None:
        data = self.mapping(path, raw, {
            "name", "url", "events", "secret", "signature", "headers", "enabled", "allow_http",
            "retry_client_errors", "max_in_flight", "rate_limit", "ordering", "disable_after",
            "timeout", "retry_schedule", "jitter",
        })
        if data is None:
            return None
        errors_before = len(self.errors)
        name = self.get(path, data, "name", _name, "")
        if data.get("name") is None:
            self.error(_join(path, "name"), "is required")
        allow_http = self.get(path, data, "allow_http", _bool, False)
        url = self.get(path, data, "url", _url, "")
        if data.get("url") is None:
            self.error(_join(path, "url"), "is required")
        elif url.startswith("http://") and not allow_http:
            self.error(_join(path, "url"), "plain http:// needs `allow_http: true` on this "
                                           "endpoint (deliveries would travel unencrypted)")
        signature: Scheme = self.get(path, data, "signature", _choice(*SCHEMES), "standard")
        secrets = self.secrets(_join(path, "secret"), data.get("secret"), signature)
        endpoint = EndpointConfig(
            name=name,
            url=url,
            events=self.get(path, data, "events", _patterns(exact=False), ("*",)),
            secrets=secrets,
            signature=signature,
            headers=self.get(path, data, "headers", _headers, ()),
            enabled=self.get(path, data, "enabled", _bool, True),
            allow_http=allow_http,
            retry_client_errors=self.get(path, data, "retry_client_errors", _bool, True),
            max_in_flight=self.get(path, data, "max_in_flight", _int_range(1, 1000), 10),
            rate_limit_per_s=self.get(path, data, "rate_limit", parse_rate, None),
            ordering=self.get(path, data, "ordering", _choice("none", "fifo"), "none"),
            disable_after_s=self.get(path, data, "disable_after", _positive(parse_duration),
                                     5 * 86400.0),
            timeout_s=self.get(path, data, "timeout", _positive(parse_duration),
                               delivery.timeout_s),
            retry_schedule_s=self.get(path, data, "retry_schedule", _schedule,
                                      delivery.retry_schedule_s),
            jitter=self.get(path, data, "jitter", _jitter, delivery.jitter),
        )
        return endpoint if len(self.errors) == errors_before else None

    def secrets(self, path: str, raw: Any, scheme: Scheme) -> tuple[str, ...]:
        items: list[Any]
        if raw is None:
            items = []
        elif isinstance(raw, list):
            items = raw
        else:
            items = [raw]
        secrets: list[str] = []
        for index, item in enumerate(items):
            item_path = f"{path}[{index}]" if isinstance(raw, list) else path
            value = self.expand(item_path, item)
            if not isinstance(value, str):
                self.error(item_path, f"expected a string, got {_kind(value)}")
                continue
            if not value:
                continue  # an unset ${VAR:-} means "no secret"
            if scheme == "standard":
                problem = _standard_secret_problem(value)
                if problem:
                    self.error(item_path, problem)
                    continue
            secrets.append(value)
        if scheme == "standard" and not secrets and not any(
            e.startswith(path) for e in self.errors
        ):
            self.error(path, "the standard signature scheme needs a secret "
                             "(generate one with `relay keygen`)")
        return tuple(secrets)


# -- value converters: take the expanded YAML value, return the typed value or raise ----------


def _kind(value: object) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "nothing"}.get(type(value), "a value")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _closest(key: str, known: set[str]) -> str | None:
    import difflib

    matches = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.7)
    return matches[0] if matches else None


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "yes", "on", "1", "false", "no",
                                                     "off", "0"}:
        return value.lower() in {"true", "yes", "on", "1"}
    raise ValueError(f"expected true or false, got {value!r}")


def _optional_str(value: Any) -> str | None:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value) or None
    raise ValueError(f"expected a string, got {_kind(value)}")


def _choice(*choices: str) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if value in choices:
            return value
        raise ValueError(f"expected one of {', '.join(choices)}; got {value!r}")

    return convert


def _int_range(low: int, high: int) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"expected a whole number from {low} to {high}, got {value!r}")
        return value

    return convert


def _positive(convert: Callable[[Any], float]) -> Callable[[Any], float]:
    def positive(value: Any) -> float:
        result = convert(value)
        if result <= 0:
            raise ValueError(f"must be greater than zero, got {value!r}")
        return result

    return positive


def _jitter(value: Any) -> float:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"expected a fraction from 0 to 1 (0.1 means +-10 %), got {value!r}")
    return float(value)


def _schedule(value: Any) -> tuple[float, ...]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list of delays such as [5s, 5m, 30m], got {_kind(value)}")
    delays = []
    for index, item in enumerate(value):
        try:
            delays.append(parse_duration(item))
        except ValueError as exc:
            raise ValueError(f"item {index}: {exc}") from None
    if len(delays) > 100:
        raise ValueError("at most 100 retries can be scheduled")
    return tuple(delays)


def _str_list(nonempty: bool) -> Callable[[Any], tuple[str, ...]]:
    def convert(value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ValueError("expected a list of strings")
        if nonempty and not value:
            raise ValueError("must not be empty")
        return tuple(value)

    return convert


def _patterns(exact: bool) -> Callable[[Any], tuple[str, ...]]:
    regex = TYPE_RE if exact else PATTERN_RE

    def convert(value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ValueError(f"expected a list of event types, got {_kind(value)}")
        for item in value:
            if not isinstance(item, str) or not regex.fullmatch(item):
                kind = "event type" if exact else "event type or pattern such as license.*"
                raise ValueError(f"{item!r} is not a valid {kind}")
        return tuple(value)

    return convert


def _name(value: Any) -> str:
    if isinstance(value, str) and NAME_RE.fullmatch(value):
        return value
    raise ValueError(f"expected a name of letters, digits, '_', '.' or '-' "
                     f"(at most 64), got {value!r}")


def _url(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a URL, got {_kind(value)}")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL with a host, got {value!r}")
    if parts.username or parts.password:
        raise ValueError("credentials in the URL are not allowed; use `headers` instead")
    return value


def _headers(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping of header names to values, got {_kind(value)}")
    result = []
    for key, item in value.items():
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", key):
            raise ValueError(f"{key!r} is not a valid header name")
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise ValueError(f"header {key}: expected a string value")
        text = str(item)
        if "\r" in text or "\n" in text:
            raise ValueError(f"header {key}: line breaks are not allowed in a value")
        result.append((key, text))
    return tuple(result)


def _size_range(low: int, high: int) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        size = parse_size(value)
        if not low <= size <= high:
            raise ValueError(f"expected a size from {low} to {high} bytes, got {value!r}")
        return size

    return convert


def _host_names(value: Any) -> tuple[str, ...]:
    """Host names or addresses a browser may address the relay by, optionally with a port."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ValueError(f"expected a list of host names such as [relay.internal], "
                         f"got {_kind(value)}")
    hosts = []
    for item in value:
        parts = split_host(item) if isinstance(item, str) else None
        valid = parts is not None and (HOST_NAME_RE.fullmatch(parts[0]) is not None
                                       or is_address(parts[0]))
        if not valid:
            raise ValueError(f"{item!r} is not a host name, address or host:port "
                             "(no scheme, path or wildcard)")
        hosts.append(str(item).strip().lower())
    return tuple(hosts)


def _networks(value: Any) -> tuple[Network, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ValueError(f"expected a list of CIDRs such as 127.0.0.0/8, got {_kind(value)}")
    networks = []
    for item in value:
        try:
            networks.append(ipaddress.ip_network(str(item), strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not a CIDR such as 10.0.0.0/8 or ::1/128") from None
    return tuple(networks)


def _listen(value: Any) -> tuple[str, int]:
    if not isinstance(value, str):
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:8787, got {value!r}")
    match = re.fullmatch(r"(?:\[([0-9A-Fa-f:.]+)\]|([^:\s]+)):(\d{1,5})", value.strip())
    if not match or not 0 <= int(match.group(3)) <= 65535:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:8787, got {value!r}")
    return match.group(1) or match.group(2), int(match.group(3))


def _storage(value: Any) -> str:
    if isinstance(value, str) and value.startswith("sqlite:///") and len(value) > 10:
        return value
    if isinstance(value, str) and value.startswith(("postgresql://", "postgres://")):
        _postgres(value)  # raises ValueError naming what is wrong
        return value
    raise ValueError("expected sqlite:///PATH (e.g. sqlite:///./relay.db) or "
                     f"postgresql://USER@HOST:PORT/DB, got {redact_url(str(value))!r}")


def _postgres(url: str) -> PostgresConfig:
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
        if not text.isdigit() or not 2 <= int(text) <= 1000:
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


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def standard_secret_key(secret: str) -> bytes:
    """The HMAC key of a `standard` secret, as the Standard Webhooks libraries derive it.

    They strip an optional `whsec_` and base64-decode the rest, padding optional, so an
    operator can paste a receiver's existing secret in either form. Decoding is strict
    (ValueError), because the Python reference silently drops characters outside the
    alphabet while the Go one refuses them: such a secret would verify at some receivers
    only.
    """
    encoded = secret.removeprefix("whsec_").rstrip("=")
    return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)


def _standard_secret_problem(secret: str) -> str | None:
    if secret != secret.strip():
        return "has leading or trailing whitespace (a newline from a file?)"
    try:
        key = standard_secret_key(secret)
    except (binascii.Error, ValueError):
        return ("is not valid: the standard scheme needs base64, optionally prefixed "
                "with whsec_ (generate one with `relay keygen`)")
    if len(key) < 16:
        return (f"is too short: the key decodes to {len(key)} bytes; the relay needs at "
                "least 16 (128 bits), below which a captured signature lets it be guessed "
                "offline (`relay keygen` makes 24)")
    return None
