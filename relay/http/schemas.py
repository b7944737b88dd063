"""The admin API's answers as pydantic models: the OpenAPI document's schemas, and a check.

The answers themselves are built by `relay.http.serialization` as plain dicts
(cheap, and the dashboard renders the same dicts); these models describe
them. Every model forbids extra fields and the tests validate real answers
against them, so a field added to an answer without its schema, or the other
way round, fails a test instead of drifting. Request bodies are the config's
own models (`EndpointConfig`), so what relay.yaml accepts and what the API
accepts are one schema.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AttemptOut",
    "BatchOut",
    "CreatedEndpointOut",
    "DeletedOut",
    "DeliveryDetailOut",
    "DeliveryOut",
    "DeliveryPageOut",
    "EndpointOut",
    "EndpointPageOut",
    "EventOut",
    "EventPageOut",
    "EventSummaryOut",
    "HealthOut",
    "IngestOut",
    "PortalSessionIn",
    "PortalSessionOut",
    "PortalSessionsEndedOut",
    "ProblemOut",
    "ReadyOut",
    "RecoverOut",
    "ReloadOut",
    "RetriedOut",
    "RotateSecretIn",
    "RotatedSecretOut",
    "SourceListOut",
    "SourceOut",
    "TestOut",
]

Status = Literal["pending", "delivering", "scheduled", "delivered", "failed", "held",
                 "cancelled"]
Time = str  # ISO 8601, UTC, milliseconds: 2025-01-03T14:25:30.000Z


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class ProblemOut(_Answer):
    """RFC 9457 problem details: the one error format. `type` is stable, `detail` says what
    to fix; some problems add fields (`errors`, `endpoint`, `parameter`...)."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(examples=["urn:relay:problem:unknown-endpoint"])
    title: str
    status: int
    detail: str
    instance: str | None = None


class FieldError(_Answer):
    field: str
    message: str


class InvalidEndpointOut(ProblemOut):
    errors: list[FieldError]


class DeliveryOut(_Answer):
    id: str = Field(examples=["dlv_42"])
    event_id: str
    event_type: str
    endpoint: str
    status: Status
    attempt_count: int
    created_at: Time
    updated_at: Time
    next_attempt_at: Time | None
    last_attempt_at: Time | None
    last_status_code: int | None
    last_error: str | None
    tenant: str | None = None


class AttemptOut(_Answer):
    attempt: int
    started_at: Time
    duration_ms: float | None
    status_code: int | None
    response: str
    """The first 4 KiB of the endpoint's answer, invalid UTF-8 replaced."""
    error: str | None
    request_headers: dict[str, str]
    """What was sent, signatures cut to their scheme and credentials masked."""


class DeliveryDetailOut(DeliveryOut):
    attempts: list[AttemptOut]


class RetriedOut(DeliveryOut):
    previous_status: Status | None


class DeliveryPageOut(_Answer):
    data: list[DeliveryOut]
    has_more: bool
    next_cursor: str | None


class EventOut(_Answer):
    id: str
    type: str
    received_at: Time
    tenant: str | None = None
    source: str = "default"
    """The `sources:` entry it came through; `default` is /v1/events."""
    payload: Any
    """The body parsed, or null when it does not read back as JSON (see payload_text)."""
    payload_text: str | None
    size_bytes: int
    deliveries: list[DeliveryOut]


class EventSummaryOut(_Answer):
    """An event of the event list: GET /v1/events/{id} has its payload and deliveries."""

    id: str
    type: str
    received_at: Time
    tenant: str | None
    source: str
    """The `sources:` entry it came through; `default` is /v1/events."""
    size_bytes: int
    delivery_count: int
    """Deliveries made of it: one per endpoint it was routed to (0: none wanted it)."""


class EventPageOut(_Answer):
    data: list[EventSummaryOut]
    has_more: bool
    next_cursor: str | None


class EndpointOut(_Answer):
    """An endpoint: its settings (as relay.yaml spells them), where it comes from, its health."""

    name: str
    source: Literal["config", "api"] | None
    """config: declared in relay.yaml (read-only here); api: made through this API; null:
    only deliveries of a removed endpoint are left."""
    configured: bool
    url: str | None
    events: list[str]
    signature: str | None
    headers: dict[str, str] = Field(default_factory=dict)
    enabled: bool | None = None
    rate_limit: str | None = None
    max_in_flight: int | None = None
    ordering: str | None
    body: Literal["exact", "compact"] | None = None
    timeout: str | None = None
    retry_schedule: list[str] | None = None
    retry_client_errors: bool | None = None
    allow_http: bool | None = None
    disable_after: str | None = None
    jitter: float | None = None
    description: str | None = None
    tenant: str | None = None
    sources: list[str] | None = None
    """Only events of these sources (`default`: /v1/events); null: of every source."""
    filter: str | None = None
    """The content filter: only events it is true for are delivered; null: every event."""
    format: Literal["raw", "slack"] | None = None
    """slack: deliveries are Slack/Teams incoming-webhook messages describing each event."""
    trace_context: bool | None = None
    """Attempts carry W3C `traceparent` while tracing is on; false: never."""
    status: Literal["ok", "error", "paused", "disabled"]
    status_reason: str | None
    paused: bool
    disabled_reason: str | None
    failing_since: Time | None
    last_error: str | None
    last_sent_at: Time | None
    last_delivered_at: Time | None
    next_retry_at: Time | None
    counts: dict[str, int]
    held: int | None = None
    released: int | None = None


class CreatedEndpointOut(EndpointOut):
    secret: str
    """The endpoint's signing secret. Shown in this answer only: store it now."""


class RotatedSecretOut(CreatedEndpointOut):
    previous_expires_at: Time | None
    """Until then the previous secret signs too (standard sends both signatures)."""


class EndpointPageOut(_Answer):
    data: list[EndpointOut]
    has_more: bool
    next_cursor: str | None


class RotateSecretIn(_Answer):
    expire_previous_in: str | float = Field(default="24h", examples=["24h"])
    """How long the previous secret keeps signing: up to 7d; 0 stops it at once."""
    secret: str | None = None
    """The new secret; generated when absent."""


class DeletedOut(_Answer):
    name: str
    cancelled: int


class TestOut(_Answer):
    endpoint: str
    event_id: str
    outcome: Literal["delivered", "failed", "pending"]
    delivery: DeliveryDetailOut


class RecoverOut(_Answer):
    endpoint: str
    since: Time
    requeued: int


class IngestOut(_Answer):
    id: str
    type: str
    deliveries: int
    duplicate: bool


class BatchOut(_Answer):
    results: list[IngestOut]


class HealthOut(_Answer):
    status: Literal["ok"]
    version: str


class ReadyOut(_Answer):
    status: Literal["ready"]
    config: dict[str, Any] | None = None
    """The last reload of relay.yaml: `{"reloaded_at", "rejected": [errors]}`."""


class ReloadOut(_Answer):
    applied: bool
    errors: list[str]
    """When the file was rejected: every problem, with its key path."""
    reloaded_at: Time | None
    endpoints: int


class PortalSessionIn(_Answer):
    ttl: str | float | None = Field(default=None, examples=["5m"])
    """How long the link can be opened (once): up to 1h; default portal.link_ttl."""


class PortalSessionOut(_Answer):
    """A single-use sign-in link to one tenant's portal."""

    url: str
    """Absolute (portal.public_url, else the address this request was sent to)."""
    expires_at: Time
    """After this the link no longer opens; a session it opened lasts session_ttl."""
    tenant: str
    session_ttl: str
    """How long the session it opens lasts (portal.session_ttl)."""


class PortalSessionsEndedOut(_Answer):
    tenant: str
    ended: int
    """Sessions signed out and links voided."""


class VerifyOut(_Answer):
    """A source's `verify`, as relay.yaml spells it; secrets, tokens and passwords left out."""

    scheme: Literal["babel", "x-webhook", "standard", "hmac", "bearer", "basic", "none"]
    header: str | None
    algorithm: Literal["sha256", "sha512"]
    encoding: Literal["hex", "base64"]
    prefix: str
    signed: Literal["body", "timestamp.body"]
    timestamp_header: str | None
    tolerance: str
    username: str | None


class SourceOut(_Answer):
    """One of `sources:`: where the platform posts, how it is verified, what it sent."""

    name: str
    path: str
    verify: VerifyOut
    type_from: str | None
    id_from: str | None
    tenant_from: str | None
    origin: Literal["config", "api"]
    """config: declared in relay.yaml (read-only here); api: made through this API."""
    accepted: int
    """Requests verified and stored since the relay started (duplicates included)."""
    refused: dict[str, int]
    """Requests refused since the relay started, by reason: missing, signature, timestamp."""


class SourceListOut(_Answer):
    data: list[SourceOut]
