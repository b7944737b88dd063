"""The retry rules of SPEC section 3, as a pure function."""

from __future__ import annotations

import email.utils
import random

import pytest

from relay.retry import decide, parse_retry_after

SCHEDULE = (5.0, 300.0, 1800.0)


def test_success_is_any_2xx() -> None:
    """200, 202 and 204 all deliver."""
    for status in (200, 202, 204, 299):
        assert decide(status=status, attempts_made=1, schedule=SCHEDULE, jitter=0).outcome \
            == "delivered"


@pytest.mark.parametrize("status", [None, 301, 400, 404, 429, 500, 503])
def test_everything_else_retries_on_schedule(status: int | None) -> None:
    """Network errors, 3xx, 4xx and 5xx wait for the next delay of the schedule."""
    for attempt, delay in enumerate(SCHEDULE, start=1):
        decision = decide(status=status, attempts_made=attempt, schedule=SCHEDULE, jitter=0)
        assert (decision.outcome, decision.delay_s) == ("retry", delay)
    last = decide(status=status, attempts_made=4, schedule=SCHEDULE, jitter=0)
    assert last.outcome == "failed"
    assert last.reason == "gave up after 4 attempts"


def test_gone_fails_at_once_and_disables() -> None:
    """410 Gone means the endpoint is gone: fail now, disable the endpoint."""
    decision = decide(status=410, attempts_made=1, schedule=SCHEDULE, jitter=0)
    assert decision.outcome == "failed" and decision.disable_endpoint


def test_client_errors_can_fail_at_once() -> None:
    """retry_client_errors: false fails 4xx at once, except 408, 425 and 429."""
    for status in (400, 401, 404, 422):
        assert decide(status=status, attempts_made=1, schedule=SCHEDULE, jitter=0,
                      retry_client_errors=False).outcome == "failed"
    for status in (408, 425, 429, 500):
        assert decide(status=status, attempts_made=1, schedule=SCHEDULE, jitter=0,
                      retry_client_errors=False).outcome == "retry"


def test_jitter_stays_within_bounds() -> None:
    """Jitter 0.1 keeps each delay within +-10 % and actually varies it."""
    rng = random.Random(7)
    delays = {decide(status=500, attempts_made=2, schedule=SCHEDULE, jitter=0.1,
                     rng=rng).delay_s for _ in range(200)}
    assert min(delays) >= 270 and max(delays) <= 330
    assert len(delays) > 100


def test_retry_after_is_honoured_when_longer_and_capped() -> None:
    """Retry-After on 429/502/503/504 wins when longer than the schedule, up to 1 h."""
    assert decide(status=429, attempts_made=1, schedule=SCHEDULE, jitter=0,
                  retry_after="120").delay_s == 120
    assert decide(status=503, attempts_made=1, schedule=SCHEDULE, jitter=0,
                  retry_after="1").delay_s == 5  # shorter than the schedule: schedule wins
    assert decide(status=503, attempts_made=1, schedule=SCHEDULE, jitter=0,
                  retry_after="999999").delay_s == 3600
    assert decide(status=500, attempts_made=1, schedule=SCHEDULE, jitter=0,
                  retry_after="120").delay_s == 5  # not a Retry-After status
    date = email.utils.formatdate(1000 + 90, usegmt=True)
    assert decide(status=429, attempts_made=1, schedule=SCHEDULE, jitter=0, retry_after=date,
                  now=1000).delay_s == pytest.approx(90)


def test_bad_retry_after_is_ignored() -> None:
    """A garbage Retry-After never breaks the decision."""
    assert parse_retry_after("soon", 0) is None
    assert decide(status=429, attempts_made=1, schedule=SCHEDULE, jitter=0,
                  retry_after="soon").delay_s == 5
