"""`EndpointRuntime`: what an endpoint's next attempts use, rebuilt on every reload.

A lane reads its runtime afresh for each attempt it starts, and an attempt keeps
the runtime it started with: a reload (SIGHUP) changes new attempts only, and
one in flight finishes with the secrets and timeout it was sent with.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from relay.config import EndpointConfig
from relay.delivery.limits import TokenBucket
from relay.delivery.outcomes import signature_masks, stored_headers
from relay.models import ClaimedDelivery
from relay.operational import is_operational
from relay.signing import Signer
from relay.slack import slack_body
from relay.wire import compact_body

__all__ = ["EndpointRuntime"]

log = structlog.get_logger("relay.delivery")


@dataclass
class EndpointRuntime:
    """An endpoint's config, signer and rate limit, and whether its lane holds."""

    endpoint: EndpointConfig
    signer: Signer
    bucket: TokenBucket | None
    held_reason: str | None = None  # paused or disabled: the lane claims nothing
    # The stored values of the headers that carry a signature (`signature_masks`).
    masks: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        sample = dict(self.endpoint.headers)
        sample.update(self.signer.headers("evt_sample", "sample.type", 0, b""))
        self.masks = signature_masks(sample)

    @classmethod
    def build(cls, endpoint: EndpointConfig, held_reason: str | None,
              previous: EndpointRuntime | None = None) -> EndpointRuntime:
        """The runtime for `endpoint`; a reload keeps the rate limit's tokens if it is unchanged."""
        if previous is not None and endpoint.rate_limit_per_s == previous.endpoint.rate_limit_per_s:
            bucket = previous.bucket
        else:
            bucket = TokenBucket(endpoint.rate_limit_per_s) if endpoint.rate_limit_per_s else None
        return cls(endpoint, Signer(endpoint.signature, endpoint.secrets), bucket, held_reason)

    def body(self, claimed: ClaimedDelivery) -> bytes:
        """The bytes this endpoint is sent (and that are signed) for `claimed`.

        `format: slack` first: a message describing the event, whatever `body`
        says (the two are refused together at load); then `body: compact`.
        """
        if self.endpoint.body_format == "slack":
            return slack_body(claimed.event_type, claimed.event_id, claimed.body,
                              is_operational(claimed.event_id))
        return claimed.body if self.endpoint.body == "exact" else self.compact(claimed)

    @staticmethod
    def compact(claimed: ClaimedDelivery) -> bytes:
        """The event as `JSON.stringify(JSON.parse(body))` (`body: compact`), to sign and send.

        Ingest parsed every stored event, so this reads it too; were it ever not
        to, the bytes go as received and the log says why.
        """
        try:
            return compact_body(claimed.body)
        except (ValueError, RecursionError) as exc:
            log.warning("compact_body_unreadable", event_id=claimed.event_id,
                        delivery_id=claimed.id, error=str(exc))
            return claimed.body

    def stored_headers(self, headers: dict[str, str]) -> dict[str, str]:
        """An attempt's request headers as stored for operators: signatures masked."""
        return stored_headers(headers, self.masks)
