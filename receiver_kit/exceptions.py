"""Errors raised by the receiver kit.

Everything the kit raises on purpose derives from `ReceiverKitError`, so a
caller can catch the family without catching programming mistakes::

    ReceiverKitError
    ├── ConfigurationError (ValueError)  the kit was set up wrongly; raised at
    │   │                                construction, never per request
    │   └── InvalidSecretError           a secret is empty or not decodable
    ├── MissingDependencyError (ImportError)
    │                                    an optional integration's extra is not
    │                                    installed; names the `pip install` line
    ├── VerificationError                a request is not an authentic, fresh,
    │   │                                well-formed delivery
    │   ├── MissingHeaderError           401: a required header is absent
    │   ├── InvalidSignatureError        401: no signature matches any secret
    │   ├── StaleTimestampError          401: outside the tolerance window
    │   └── MalformedPayloadError        400: the body is not JSON, the
    │                                    timestamp is not an integer, ...
    └── IdempotencyError                 the idempotency store's answers
        ├── DuplicateEventError          200: already processed
        ├── EventInProgressError         409: another worker is processing it
        └── StoreError                   503: the store failed (driver error
                                         wrapped once, at the store boundary)

Each class carries the HTTP status the integrations answer with and a short
title, so every framework renders the same RFC 9457 problem. Messages never
contain a secret or an expected signature: they are safe to log and to send
back to the caller.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "ConfigurationError",
    "DuplicateEventError",
    "EventInProgressError",
    "IdempotencyError",
    "InvalidSecretError",
    "InvalidSignatureError",
    "MalformedPayloadError",
    "MissingDependencyError",
    "MissingHeaderError",
    "ReceiverKitError",
    "StaleTimestampError",
    "StoreError",
    "VerificationError",
]

PROBLEM_TYPE_BASE = "urn:receiver-kit:problem:"


class ReceiverKitError(Exception):
    """Base class of every error the receiver kit raises deliberately."""

    status_code: ClassVar[int] = 500
    title: ClassVar[str] = "Webhook receiver error"
    slug: ClassVar[str] = "error"

    @property
    def detail(self) -> str:
        """The human-readable explanation; safe to show to the sender."""
        return str(self)

    def problem(self) -> dict[str, Any]:
        """The RFC 9457 problem document the integrations answer with."""
        return {
            "type": PROBLEM_TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.status_code,
            "detail": self.detail,
        }


class ConfigurationError(ReceiverKitError, ValueError):
    """The kit was configured wrongly (bad scheme, tolerance, setting, URL).

    Raised when a `Verifier`, a store or an integration is built, so a broken
    deployment fails at start-up instead of answering 401 to every delivery.
    """

    slug = "configuration"
    title = "Webhook receiver misconfigured"


class InvalidSecretError(ConfigurationError):
    """A secret is empty, of the wrong type, or (`standard`) not base64 after an optional `whsec_`.

    The message says which secret (by position) and why, never its value.
    """

    slug = "invalid-secret"


class MissingDependencyError(ReceiverKitError, ImportError):
    """An optional integration was imported without its extra installed."""

    slug = "missing-dependency"

    def __init__(self, package: str, extra: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{package} is not installed; it is needed by this receiver_kit integration: "
            f"pip install 'license-webhook-relay[{extra}]'"
        )


class VerificationError(ReceiverKitError):
    """The request is not an authentic, fresh and well-formed delivery.

    Catch this one class to reject a request; the subclasses say why, and
    `status_code` says what to answer (401, or 400 for a malformed payload).
    """

    status_code = 401
    title = "Webhook verification failed"
    slug = "verification-failed"


class MissingHeaderError(VerificationError):
    """A header the scheme requires is absent or empty."""

    title = "Missing webhook header"
    slug = "missing-header"

    def __init__(self, header: str) -> None:
        self.header = header
        super().__init__(f"missing required header {header}")


class InvalidSignatureError(VerificationError):
    """No signature in the signature header matches any configured secret.

    Also raised for a signature header that cannot be parsed at all: to the
    sender the fix is the same (sign with the right secret and format).
    """

    title = "Invalid webhook signature"
    slug = "invalid-signature"


class StaleTimestampError(VerificationError):
    """The timestamp is further from now than the tolerance allows.

    This is the replay protection of the scheme: a captured delivery cannot be
    replayed once the window has passed. Too far in the future is rejected
    too, because a signed future timestamp would extend that window.
    """

    title = "Webhook timestamp outside tolerance"
    slug = "stale-timestamp"

    def __init__(self, timestamp: int, now: float, tolerance_s: float) -> None:
        self.timestamp = timestamp
        self.now = now
        self.tolerance_s = tolerance_s
        skew = timestamp - now
        direction = "in the future" if skew > 0 else "old"
        super().__init__(
            f"timestamp {timestamp} is {abs(skew):.0f} s {direction}; "
            f"the tolerance is {tolerance_s:g} s (check the sender's and receiver's clocks)"
        )


class MalformedPayloadError(VerificationError):
    """The request is readable but not a valid delivery: the body is not JSON,
    the timestamp header is not an integer, a header is not text."""

    status_code = 400
    title = "Malformed webhook"
    slug = "malformed"


class IdempotencyError(ReceiverKitError):
    """Base of the idempotency store's refusals and failures."""

    slug = "idempotency"

    def __init__(self, message: str, event_id: str | None = None) -> None:
        self.event_id = event_id
        super().__init__(message)


class DuplicateEventError(IdempotencyError):
    """The event was already processed successfully; do not process it again.

    Integrations answer 200, because the sender's job is done: a non-2xx
    answer would make it retry a delivery that has already succeeded.
    """

    status_code = 200
    title = "Duplicate webhook"
    slug = "duplicate"


class EventInProgressError(IdempotencyError):
    """Another worker holds the claim on this event right now.

    Integrations answer 409 so the sender retries later: by then the first
    worker has either finished (the retry is a duplicate) or failed and
    released its claim (the retry processes the event).
    """

    status_code = 409
    title = "Webhook already in progress"
    slug = "in-progress"


class StoreError(IdempotencyError):
    """The idempotency store failed (database locked, Redis unreachable, ...).

    Integrations answer 503 so the sender retries; the driver's exception is
    chained as `__cause__`.
    """

    status_code = 503
    title = "Idempotency store unavailable"
    slug = "store-unavailable"
