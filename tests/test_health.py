"""The endpoint health rule both backends apply after a batch of attempt results."""

from __future__ import annotations

from relay.models import AttemptResult, DeliveryStatus
from relay.storage.health import (
    Health,
    LatestAttempt,
    disable_after_reason,
    endpoints_to_disable,
    latest_attempts,
)

DAY = 86400.0


def result(endpoint: str, at: float, status: DeliveryStatus = DeliveryStatus.SCHEDULED, *,
           counts: bool = True, disable_reason: str | None = None,
           disable_after_s: float | None = DAY) -> AttemptResult:
    return AttemptResult(
        delivery_id=1, endpoint=endpoint, attempt=1, started_at=at, duration_ms=5.0,
        status_code=200 if status == DeliveryStatus.DELIVERED else 500, response_body=b"",
        error=None, new_status=status, counts=counts, disable_reason=disable_reason,
        disable_after_s=disable_after_s)


def test_latest_attempts_keep_each_endpoints_last_counted_result_in_name_order() -> None:
    results = [
        result("b", 1.0), result("a", 2.0, DeliveryStatus.DELIVERED), result("b", 3.0),
        result("a", 4.0, counts=False),  # cut short by a shutdown: says nothing
        result("c", 5.0, counts=False),
    ]
    assert latest_attempts(results) == [
        LatestAttempt("a", 2.0, True, DAY), LatestAttempt("b", 3.0, False, DAY)]


def test_an_endpoint_failing_for_its_disable_after_is_disabled_at_its_latest_attempt() -> None:
    results = [result("a", 10.0 + DAY)]
    disable = endpoints_to_disable(results, latest_attempts(results),
                                   {"a": Health(failing_since=10.0, disabled_reason=None)})
    assert disable == {"a": (disable_after_reason(10.0, DAY), 10.0 + DAY)}
    assert disable["a"][0] == ("failing continuously since 1970-01-01 00:00:10Z "
                               "(disable_after: 1d)")


def test_no_disable_before_disable_after_when_healthy_already_disabled_or_unlimited() -> None:
    cases = [
        (result("a", 9.0 + DAY), Health(10.0, None)),  # one second short
        (result("a", 20.0 + DAY, DeliveryStatus.DELIVERED), Health(None, None)),
        (result("a", 20.0 + DAY), Health(10.0, "endpoint answered 410 Gone")),
        (result("a", 20.0 + DAY, disable_after_s=None), Health(10.0, None)),
    ]
    for attempt, health in cases:
        assert endpoints_to_disable([attempt], latest_attempts([attempt]),
                                    {"a": health}) == {}


def test_a_410_disables_whatever_the_history_and_its_reason_wins() -> None:
    results = [
        result("a", 10.0 + DAY),
        result("a", 11.0 + DAY, DeliveryStatus.FAILED, disable_reason="endpoint answered 410 Gone"),
        result("b", 12.0, DeliveryStatus.FAILED, disable_reason="endpoint answered 410 Gone"),
    ]
    disable = endpoints_to_disable(
        results, latest_attempts(results),
        {"a": Health(10.0, None), "b": Health(12.0, None)})
    assert disable == {"a": ("endpoint answered 410 Gone", 11.0 + DAY),
                       "b": ("endpoint answered 410 Gone", 12.0)}
