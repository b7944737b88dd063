"""What an attempt's answer makes of its delivery, and its headers as stored. Pure functions.

From the claimed delivery, the endpoint's settings, what the sender saw, the
time and a random source (the retry jitter), `attempt_result` builds the
`AttemptResult` that the store records: delivered, scheduled again (when), or
failed, with the error an operator reads and whether the endpoint is to be
disabled. The retry policy itself is `relay.retry.decide`.

Stored request headers never hold a signature: `mask` cuts each to its scheme
prefix (`v1,…`), so an operator sees which schemes were sent, and a leaked
database or admin answer gives nothing to replay.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from relay.config import EndpointConfig
from relay.delivery.sender import SendResult
from relay.models import AttemptResult, ClaimedDelivery, DeliveryStatus
from relay.retry import decide
from relay.signing import HEADER_NAMES

__all__ = ["attempt_result", "interrupted_result", "mask", "signature_masks", "stored_headers"]

# Lowercased names of the signature headers of every scheme.
_SIGNATURE_HEADERS = frozenset(names[3].lower() for names in HEADER_NAMES.values())
INTERRUPTED = "interrupted: the relay shut down during this attempt"


def attempt_result(claimed: ClaimedDelivery, endpoint: EndpointConfig, sent: SendResult, *,
                   started: float, now: float, request_headers: dict[str, str],
                   rng: random.Random | None = None) -> AttemptResult:
    """The outcome of an attempt that ran to its end (an answer, an error or its timeout).

    `started` is when the attempt began (it reads an HTTP-date `Retry-After`),
    `now` when it ended (a retry's delay counts from then); `request_headers`
    are already as stored (`stored_headers`).
    """
    code = sent.status
    if code is not None and 200 <= code < 300 and sent.error is None and not sent.permanent:
        # The common case, without the retry policy's general path.
        return AttemptResult(claimed.id, endpoint.name, claimed.attempt, started,
                             sent.duration_ms, code, sent.body, None, request_headers)
    decision = decide(
        status=sent.status if sent.error is None else None,
        attempts_made=claimed.attempt,
        schedule=endpoint.retry_schedule_s,
        jitter=endpoint.jitter,
        retry_client_errors=endpoint.retry_client_errors,
        retry_after=sent.retry_after,
        now=started,
        rng=rng,
    )
    if sent.permanent:  # e.g. a refused destination: no retry can change the outcome
        status, next_at = DeliveryStatus.FAILED, None
    elif decision.outcome == "delivered":
        status, next_at = DeliveryStatus.DELIVERED, None
    elif decision.outcome == "retry":
        status, next_at = DeliveryStatus.SCHEDULED, now + decision.delay_s
    else:
        status, next_at = DeliveryStatus.FAILED, None
    error = sent.error
    if error is None and decision.outcome != "delivered":
        error = f"endpoint answered {sent.status}"
    reason = decision.reason
    if reason is not None and error is not None:
        # Reasons about the answer already name the status; others add to it.
        error = reason if reason.startswith("endpoint answered") else f"{error}; {reason}"
    return AttemptResult(
        delivery_id=claimed.id, endpoint=endpoint.name, attempt=claimed.attempt,
        started_at=started, duration_ms=sent.duration_ms, status_code=sent.status,
        response_body=sent.body, error=error, request_headers=request_headers,
        new_status=status, next_attempt_at=next_at,
        disable_reason="endpoint answered 410 Gone" if decision.disable_endpoint else None,
        disable_after_s=endpoint.disable_after_s,
    )


def interrupted_result(claimed: ClaimedDelivery, *, started: float, now: float,
                       request_headers: dict[str, str]) -> AttemptResult:
    """An attempt cut short by shutdown: it does not count, the delivery is due again now.

    As far as the retry schedule is concerned the attempt did not happen; it is
    stored all the same, so an operator sees that a request may have reached the
    endpoint.
    """
    return AttemptResult(
        delivery_id=claimed.id, endpoint=claimed.endpoint, attempt=claimed.attempt,
        started_at=started, duration_ms=(now - started) * 1000, status_code=None,
        response_body=b"", error=INTERRUPTED, request_headers=request_headers,
        new_status=DeliveryStatus.PENDING, next_attempt_at=now, counts=False,
    )


def signature_masks(headers: Mapping[str, str]) -> dict[str, str]:
    """The signature headers among `headers`, each with its stored (masked) value.

    Computed once per endpoint from a sample request: every attempt of an
    endpoint sends the same header names, and a masked value keeps only the
    scheme prefixes, which the signatures of every attempt share.
    """
    return {name: mask(value) for name, value in headers.items()
            if name.lower() in _SIGNATURE_HEADERS}


def stored_headers(headers: dict[str, str], masks: dict[str, str]) -> dict[str, str]:
    """An attempt's request headers as stored for operators, `masks` over the signatures."""
    return {**headers, **masks}


def mask(value: str) -> str:
    """A signature header as stored for operators: each signature cut to its scheme prefix."""
    return " ".join((part.split(",", 1)[0] + ",…") if "," in part else "…"
                    for part in value.split(" "))
