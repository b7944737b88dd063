"""What to do after an attempt: deliver, retry (when), or fail. Pure functions.

The rules are SPEC section 3: any 2xx succeeds; 410 fails at once and disables
the endpoint; with `retry_client_errors: false` a 4xx other than 408/425/429
fails at once; everything else (network error, timeout, 3xx, 4xx, 5xx) waits for
the next delay of the schedule, with jitter, or fails when the schedule is spent.
`Retry-After` on 429/502/503/504 is honoured when it asks for longer than the
schedule, capped at one hour so a hostile receiver cannot park a delivery forever.
"""

from __future__ import annotations

import email.utils
import random
from dataclasses import dataclass
from typing import Literal

__all__ = ["Decision", "decide", "parse_retry_after"]

RETRY_AFTER_STATUSES = frozenset({429, 502, 503, 504})
RETRYABLE_CLIENT_ERRORS = frozenset({408, 425, 429})
RETRY_AFTER_CAP_S = 3600.0


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Literal["delivered", "retry", "failed"]
    delay_s: float = 0.0
    reason: str | None = None
    disable_endpoint: bool = False


def decide(
    *,
    status: int | None,
    attempts_made: int,
    schedule: tuple[float, ...],
    jitter: float,
    retry_client_errors: bool = True,
    retry_after: str | None = None,
    now: float = 0.0,
    rng: random.Random | None = None,
) -> Decision:
    """Decide after attempt number `attempts_made` (1-based) ended with `status`.

    `status` is None for a network error or timeout. `now` is only used to read
    an HTTP-date `Retry-After`.
    """
    if status is not None and 200 <= status < 300:
        return Decision("delivered")
    if status == 410:
        return Decision("failed", reason="endpoint answered 410 Gone", disable_endpoint=True)
    if (status is not None and 400 <= status < 500 and not retry_client_errors
            and status not in RETRYABLE_CLIENT_ERRORS):
        return Decision("failed", reason=f"endpoint answered {status}; client errors are "
                                         "not retried for this endpoint")
    if attempts_made > len(schedule):
        return Decision("failed", reason=f"gave up after {attempts_made} attempts")
    delay = schedule[attempts_made - 1]
    if jitter:
        delay *= 1 + (rng or random).uniform(-jitter, jitter)
    if status in RETRY_AFTER_STATUSES and retry_after is not None:
        asked = parse_retry_after(retry_after, now)
        if asked is not None and asked > delay:
            delay = min(asked, RETRY_AFTER_CAP_S)
    return Decision("retry", delay_s=max(delay, 0.0))


def parse_retry_after(value: str, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date)."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(when.timestamp() - now, 0.0)
