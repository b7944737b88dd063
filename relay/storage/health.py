"""Endpoint health and the automatic disable: one rule, both backends.

After a batch of attempt results, each endpoint's state row records its
latest counted attempt: when it was made, the last success, and
`failing_since`, the start of its unbroken run of failures (cleared by a
success). The backends write that row in their own SQL (PostgreSQL merges it
with what other relays wrote meanwhile); what to write, and which endpoints
to disable once it is written, are decided here, from plain values:

- an endpoint whose latest attempt failed, that is not disabled already, and
  that has been failing for its `disable_after` is disabled;
- an endpoint that answered 410 Gone is disabled whatever its history, with
  that answer as the reason.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from relay.models import AttemptResult, DeliveryStatus
from relay.units import format_duration

__all__ = [
    "Health", "LatestAttempt", "disable_after_reason", "endpoints_to_disable", "latest_attempts",
]


@dataclass(frozen=True, slots=True)
class LatestAttempt:
    """An endpoint's last counted attempt in a batch: what its state row records."""

    endpoint: str
    at: float  # when the attempt started
    ok: bool  # delivered
    disable_after_s: float | None


class Health(NamedTuple):
    """An endpoint's state once its latest attempt is written."""

    failing_since: float | None
    disabled_reason: str | None


def latest_attempts(results: Iterable[AttemptResult]) -> list[LatestAttempt]:
    """The last counted attempt of each endpoint in `results`, in endpoint name order.

    An attempt cut short by a shutdown or a crash (`counts` false) says
    nothing about the endpoint. One row per endpoint, whatever the batch size.
    """
    latest: dict[str, AttemptResult] = {}
    for r in results:
        if r.counts:
            latest[r.endpoint] = r
    return [LatestAttempt(name, r.started_at, r.new_status == DeliveryStatus.DELIVERED,
                          r.disable_after_s)
            for name, r in sorted(latest.items())]


def endpoints_to_disable(
    results: Iterable[AttemptResult], latest: Iterable[LatestAttempt],
    health: Mapping[str, Health],
) -> dict[str, tuple[str, float]]:
    """The endpoints to disable after `results`: name -> (reason, when).

    `latest` is `latest_attempts(results)` and `health` each of those
    endpoints' state after its latest attempt was written.
    """
    disable: dict[str, tuple[str, float]] = {}
    for attempt in latest:
        failing_since, disabled_reason = health[attempt.endpoint]
        if (not attempt.ok and disabled_reason is None and attempt.disable_after_s is not None
                and failing_since is not None
                and attempt.at - failing_since >= attempt.disable_after_s):
            disable[attempt.endpoint] = (
                disable_after_reason(failing_since, attempt.disable_after_s), attempt.at)
    for r in results:
        if r.disable_reason:
            disable[r.endpoint] = (r.disable_reason, r.started_at)
    return disable


def disable_after_reason(failing_since: float, disable_after_s: float) -> str:
    """The reason recorded when an endpoint is disabled for failing too long."""
    since = datetime.datetime.fromtimestamp(failing_since, datetime.UTC)
    return (f"failing continuously since {since.strftime('%Y-%m-%d %H:%M:%SZ')} "
            f"(disable_after: {format_duration(disable_after_s)})")
