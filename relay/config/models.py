"""The configuration's models: every key of relay.yaml, its type and its default, once.

These pydantic models are the one schema of the relay's settings: relay.yaml
is validated against them (`relay.config.loading`), the endpoint API
validates its bodies with `EndpointConfig` and publishes its JSON schema in
the OpenAPI document, and the rest of the relay reads them as frozen, typed
objects with unit-suffixed fields (`timeout_s`). YAML keys are the fields'
aliases (`timeout`), and what is serialized reads as what was written (`10s`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PlainSerializer, PrivateAttr

from relay.config.portal import Accent, BaseUrl, FrameAncestors, LinkTtl, SessionTtl, Title
from relay.config.proxy import NoProxy, ProxyUrl, redact_proxy
from relay.config.section import Section
from relay.config.sources import SourceConfig, SourceNames
from relay.config.storage_url import PostgresConfig, postgres_settings, redact_url, to_storage
from relay.config.values import (
    Bool,
    Concurrency,
    Description,
    Duration,
    EventPatterns,
    FieldPath,
    HeaderBytes,
    Headers,
    HostNames,
    Jitter,
    Listen,
    LogFormat,
    LogLevel,
    MaxHeaders,
    MaxInFlight,
    Name,
    Networks,
    OptionalCount,
    OptionalEventTypes,
    OptionalRate,
    OptionalStr,
    Ordering,
    PositiveDuration,
    Schedule,
    SchemeField,
    Secrets,
    SecretsKey,
    Size,
    Tenant,
    TypeFields,
    Url,
    choice,
    kind,
    to_name,
)
from relay.filters import Filter, parse_filter
from relay.units import format_duration

__all__ = [
    "DEFAULT_TYPE_FIELDS",
    "OPERATIONAL_KINDS",
    "AdminConfig",
    "Config",
    "DeliveryConfig",
    "EndpointConfig",
    "IngestConfig",
    "LimitsConfig",
    "LoggingConfig",
    "OperationsConfig",
    "PortalConfig",
    "Section",
    "SourceConfig",
    "TelemetryConfig",
]

# The standard variables that turn the OTLP exporter on without relay.yaml saying so.
OTLP_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")

DEFAULT_TYPE_FIELDS = ("type", "event", "event_type", "EventType")


BodyForm = Annotated[Literal["exact", "compact"],
                     BeforeValidator(choice("exact", "compact"),
                                     json_schema_input_type=Literal["exact", "compact"])]
ContentFilter = Annotated[
    Filter | None, BeforeValidator(parse_filter, json_schema_input_type=str | None),
    PlainSerializer(lambda f: None if f is None else f.text, return_type=str | None)]
Storage = Annotated[str, BeforeValidator(to_storage, json_schema_input_type=str),
                    PlainSerializer(redact_url, when_used="json")]


class IngestConfig(Section):
    token: OptionalStr = Field(default=None, repr=False)
    """When set, ingest needs `Authorization: Bearer <token>`."""
    max_body_bytes: Size = 1024 * 1024
    type_fields: TypeFields = DEFAULT_TYPE_FIELDS
    id_field: OptionalStr = None
    tenant_field: FieldPath = None
    """Where an event's tenant is read when no `X-Tenant` header is sent: a dotted path."""


class AdminConfig(Section):
    token: OptionalStr = Field(default=None, repr=False)
    allowed_hosts: HostNames = ()
    """Host names, besides localhost and loopback addresses, a tokenless relay answers to."""


class LimitsConfig(Section):
    """Bounds on what one request may make the relay hold before it is refused."""

    max_header_bytes: HeaderBytes = 64 * 1024
    max_headers: MaxHeaders = 100
    endpoints_per_tenant: OptionalCount = None
    """How many API endpoints one tenant may have (the seeds' plans: 10, 50); none: no limit."""


class DeliveryConfig(Section):
    timeout_s: PositiveDuration = Field(default=10.0, alias="timeout")
    retry_schedule_s: Schedule = Field(
        default=(5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0), alias="retry_schedule")
    """Delays after the 1st, 2nd... failed attempt (Svix's schedule)."""
    jitter: Jitter = 0.1
    concurrency: Concurrency = 64
    allow_networks: Networks = ()
    shutdown_grace_s: Duration = Field(default=30.0, alias="shutdown_grace")
    lease_margin_s: PositiveDuration = Field(default=60.0, alias="lease_margin")
    """A claimed delivery's lease is the endpoint's timeout plus this; when it runs out
    (the process died) any relay sharing the store takes the delivery over."""
    proxy: ProxyUrl = Field(default=None, repr=False)
    """An HTTP proxy every delivery goes through (`http://user:password@host:port`);
    https:// endpoints are reached by CONNECT, the relay still checks their addresses."""
    no_proxy: NoProxy = ()
    """Host names, domains (`.internal`), addresses or CIDRs reached without the proxy."""


def _delivery_default(name: str) -> Any:
    return DeliveryConfig.model_fields[name].default


OPERATIONAL_KINDS = ("endpoint.disabled", "endpoint.failing", "endpoint.recovered",
                     "delivery.failed", "endpoint.created", "endpoint.updated", "endpoint.deleted")
BodyFormat = Annotated[Literal["raw", "slack"],
                       BeforeValidator(choice("raw", "slack"),
                                       json_schema_input_type=Literal["raw", "slack"])]


def names_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"expected a list of endpoint names, got {kind(value)}")
    return tuple(to_name(item) for item in value)


EndpointNames = Annotated[tuple[str, ...],
                          BeforeValidator(names_list, json_schema_input_type=list[str])]


class OperationsConfig(Section):
    """The relay's own events about itself (README, "Operational events")."""

    notify: EndpointNames = ()
    """relay.yaml endpoints that get the operational events (none: none are made)."""
    events: EventPatterns = ("*",)
    """Which kinds: exact names or globs such as `endpoint.*`."""
    failing_after_s: PositiveDuration = Field(default=3600.0, alias="failing_after")
    """`endpoint.failing` once an endpoint has had no success for this long."""
    min_interval_s: PositiveDuration = Field(default=900.0, alias="min_interval")
    """At most one event per endpoint and kind this often (health kinds); the others
    are counted in the next one's `suppressed`."""


class LoggingConfig(Section):
    level: LogLevel = "info"
    format: LogFormat = "auto"


class PortalConfig(Section):
    """The tenant portal (`/portal`): its sign-in links, its sessions, how it looks."""

    title: Title = "Webhooks"
    """The portal's heading and page title, in the platform's words."""
    accent_color: Accent = None
    """Buttons and links in the platform's colour, `#rrggbb`; none: the dashboard's blue."""
    frame_ancestors: FrameAncestors = ()
    """Origins allowed to show the portal in an iframe (CSP frame-ancestors); none: no one."""
    link_ttl_s: LinkTtl = Field(default=300.0, alias="link_ttl")
    """How long a sign-in link can be opened (once); at most 1h."""
    session_ttl_s: SessionTtl = Field(default=3600.0, alias="session_ttl")
    """How long a session lasts after the link was opened; at most 1d."""
    public_url: BaseUrl = None
    """The relay's address as customers' browsers reach it, for links; none: the caller's."""
    allow_http: Bool = False
    """Let tenants add plain http:// URLs (a local trial); their deliveries travel unencrypted."""


class TelemetryConfig(Section):
    """OpenTelemetry tracing (relay/telemetry.py, the `[otel]` extra); off unless an
    endpoint is set here or in OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT."""

    otlp_endpoint: BaseUrl = None
    """The collector's OTLP/HTTP address, e.g. `http://collector:4318`: spans go to
    `<otlp_endpoint>/v1/traces` (a URL already ending so is used as it is)."""
    service_name: Name = "relay"
    """`service.name` of the relay's spans."""

    def enabled(self, environ: Mapping[str, str]) -> bool:
        """Tracing is on: an endpoint here, or in the standard OTLP variables."""
        return self.otlp_endpoint is not None or any(
            environ.get(name, "").strip() for name in OTLP_ENDPOINT_VARIABLES)

    def traces_url(self) -> str | None:
        """Where the exporter posts spans; None: let it read the OTEL_* variables."""
        url = self.otlp_endpoint
        if url is None or url.endswith("/v1/traces"):
            return url
        return url + "/v1/traces"


class EndpointConfig(Section):
    """One destination. `timeout`, `retry_schedule` and `jitter` default to `delivery`'s."""

    name: Name
    url: Url
    events: EventPatterns = ("*",)
    secrets: Secrets = Field(default=(), alias="secret", repr=False, exclude=True)
    signature: SchemeField = "standard"
    headers: Headers = ()
    enabled: Bool = True
    allow_http: Bool = False
    retry_client_errors: Bool = True
    max_in_flight: MaxInFlight = 10
    rate_limit_per_s: OptionalRate = Field(default=None, alias="rate_limit")
    ordering: Ordering = "none"
    body: BodyForm = "exact"
    """exact: the bytes the platform sent; compact: `JSON.stringify(JSON.parse(body))`, for
    receivers that verify the signature over their own re-serialisation of the event."""
    disable_after_s: PositiveDuration = Field(default=5 * 86400.0, alias="disable_after")
    timeout_s: PositiveDuration = Field(default=_delivery_default("timeout_s"), alias="timeout")
    retry_schedule_s: Schedule = Field(default=_delivery_default("retry_schedule_s"),
                                       alias="retry_schedule")
    jitter: Jitter = _delivery_default("jitter")
    description: Description = ""
    tenant: Tenant = None
    """The platform's customer this endpoint belongs to: it gets only that tenant's events."""
    sources: SourceNames = None
    """Only events from these sources (`default` is /v1/events); none: from every source."""
    body_format: BodyFormat = Field(default="raw", alias="format")
    """`slack`: the body is a Slack/Teams incoming-webhook message (`{"text": ...}`)
    describing the event, instead of the event itself."""
    content_filter: ContentFilter = Field(default=None, alias="filter")
    """An expression over the event's fields (`data.productId == "prod_42"`); only the
    events it is true for are delivered. See README, "Content filters"."""
    trace_context: Bool = True
    """Send W3C `traceparent` (and `tracestate`) with each attempt while tracing is on;
    false: never. Headers only: the signed bytes are the same either way."""


class Config(Section):
    """Everything relay.yaml says; `source` is the file it came from, if any."""

    listen: Listen = ("127.0.0.1", 8787)
    storage: Storage = "sqlite:///./relay.db"
    ingest: IngestConfig = IngestConfig()
    admin: AdminConfig = AdminConfig()
    limits: LimitsConfig = LimitsConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    logging: LoggingConfig = LoggingConfig()
    portal: PortalConfig = PortalConfig()
    operations: OperationsConfig = OperationsConfig()
    telemetry: TelemetryConfig = TelemetryConfig()
    retention_s: PositiveDuration = Field(default=30 * 86400.0, alias="retention")
    events: OptionalEventTypes = None
    events_strict: Bool = False
    secrets_key: SecretsKey = Field(default=None, repr=False)
    """Seals API endpoints' secrets in the database (32 bytes, base64)."""
    endpoints: tuple[EndpointConfig, ...] = ()
    sources: tuple[SourceConfig, ...] = ()
    """The platforms' own webhooks, each verified its own way at its own path."""
    _source: Path | None = PrivateAttr(None)

    @property
    def source(self) -> Path | None:
        return self._source

    def with_source(self, source: Path | None) -> Config:
        copy = self.model_copy()
        copy._source = source
        return copy

    @property
    def listen_host(self) -> str:
        return self.listen[0]

    @property
    def listen_port(self) -> int:
        return self.listen[1]

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
        return postgres_settings(self.storage)

    def endpoint(self, name: str) -> EndpointConfig | None:
        return next((e for e in self.endpoints if e.name == name), None)

    def source_named(self, name: str) -> SourceConfig | None:
        return next((s for s in self.sources if s.name == name), None)

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
            f"jitter {d.jitter:g}, concurrency {d.concurrency}"
            + (f", proxy {redact_proxy(d.proxy)}" if d.proxy else ""),
            f"retention  {format_duration(self.retention_s)}",
            f"events     {len(self.events)} in catalog{' (strict)' if self.events_strict else ''}"
            if self.events is not None else "events     no catalog",
            f"sources    {len(self.sources)}",
            *(f"  - {s.name}: POST {s.ingest_path}, {s.verify.scheme} verification"
              for s in self.sources),
            f"endpoints  {len(self.endpoints)}",
        ]
        if self.operations.notify:
            lines.insert(-1, f"operations notify {', '.join(self.operations.notify)}")
        for e in self.endpoints:
            state = "" if e.enabled else " (disabled)"
            secrets = f"{len(e.secrets)} secret{'s' if len(e.secrets) != 1 else ''}"
            lines.append(f"  - {e.name}{state}: {e.url}")
            body = ", compact body" if e.body == "compact" else ""
            lines.append(f"      events {', '.join(e.events) or 'none'}; {e.signature} signature, "
                         f"{secrets}{body}")
            if e.content_filter is not None or e.body_format != "raw":
                extra = [f"filter {e.content_filter.text}"] if e.content_filter else []
                extra += [f"format {e.body_format}"] if e.body_format != "raw" else []
                lines.append(f"      {'; '.join(extra)}")
        return "\n".join(lines)
