"""What an attempt's answer makes of its delivery, and the request headers as stored."""

from __future__ import annotations

import email.utils
import random
from typing import Any

import pytest

from relay.config import EndpointConfig, parse_config
from relay.delivery.outcomes import (
    attempt_result,
    interrupted_result,
    mask,
    signature_masks,
    stored_headers,
)
from relay.delivery.runtime import EndpointRuntime
from relay.delivery.sender import SendResult
from relay.models import ClaimedDelivery, DeliveryStatus
from tests.conftest import endpoint_yaml

STARTED = 1_700_000_000.0
ENDED = STARTED + 0.25


def endpoint(**options: Any) -> EndpointConfig:
    """One endpoint: retries after 10s then 60s, no jitter unless asked."""
    options = {"retry_schedule": ["10s", "60s"], "jitter": 0, **options}
    config = parse_config("endpoints:\n" + endpoint_yaml("crm", "https://crm.test/hook",
                                                         **options), env={})
    return config.endpoints[0]


def claimed(attempt: int = 1) -> ClaimedDelivery:
    return ClaimedDelivery(7, "evt_1", "license.created", "crm", b"{}", attempt, STARTED + 70)


def answered(status: int | None, *, error: str | None = None, retry_after: str | None = None,
             permanent: bool = False) -> SendResult:
    return SendResult(status, b"answer", retry_after, error, 12.5, permanent)


def outcome(sent: SendResult, attempt: int = 1, rng: random.Random | None = None,
            **options: Any) -> Any:
    return attempt_result(claimed(attempt), endpoint(**options), sent, started=STARTED,
                          now=ENDED, request_headers={"x-h": "v"}, rng=rng)


@pytest.mark.parametrize("status", [200, 204, 299])
def test_a_2xx_delivers(status: int) -> None:
    """Any 2xx: delivered, nothing scheduled, the answer and headers kept."""
    result = outcome(answered(status))
    assert (result.new_status, result.next_attempt_at, result.error) == (
        DeliveryStatus.DELIVERED, None, None)
    assert (result.delivery_id, result.endpoint, result.attempt, result.status_code) == (
        7, "crm", 1, status)
    assert (result.started_at, result.duration_ms, result.response_body) == (
        STARTED, 12.5, b"answer")
    assert result.request_headers == {"x-h": "v"} and result.counts
    assert result.disable_reason is None


def test_410_fails_and_disables_the_endpoint() -> None:
    """410 Gone: failed at once, retries left or not, and the endpoint is to be disabled."""
    result = outcome(answered(410), disable_after="2d")
    assert result.new_status == DeliveryStatus.FAILED and result.next_attempt_at is None
    assert result.error == "endpoint answered 410 Gone"
    assert result.disable_reason == "endpoint answered 410 Gone"
    assert result.disable_after_s == 2 * 86400.0


def test_a_5xx_is_retried_after_the_schedule_counted_from_the_end() -> None:
    """The delay is the schedule's for this attempt, from when the attempt ended."""
    first = outcome(answered(500))
    assert first.new_status == DeliveryStatus.SCHEDULED
    assert first.next_attempt_at == ENDED + 10
    assert first.error == "endpoint answered 500"
    assert outcome(answered(500), attempt=2).next_attempt_at == ENDED + 60


def test_jitter_draws_from_the_given_random_source() -> None:
    """Same seed, same delay: the schedule's 10s within the jitter's ±50%."""
    delays = [outcome(answered(500), rng=random.Random(3), jitter=0.5).next_attempt_at
              for _ in range(2)]
    assert delays[0] == delays[1]
    assert delays[0] is not None and ENDED + 5 <= delays[0] <= ENDED + 15


def test_retry_after_asking_for_longer_than_the_schedule_is_honoured() -> None:
    """A 503 with Retry-After 120 (seconds or an HTTP-date) waits 120s, not 10s."""
    assert outcome(answered(503, retry_after="120")).next_attempt_at == ENDED + 120
    date = email.utils.formatdate(STARTED + 120, usegmt=True)  # read against the start
    assert outcome(answered(503, retry_after=date)).next_attempt_at == ENDED + 120
    assert outcome(answered(503, retry_after="2")).next_attempt_at == ENDED + 10


def test_a_network_error_is_retried_and_names_the_error() -> None:
    """No answer (timeout, refused): retried; the error is the sender's."""
    result = outcome(answered(None, error="timed out after 5s"))
    assert result.new_status == DeliveryStatus.SCHEDULED and result.status_code is None
    assert result.error == "timed out after 5s"


def test_a_permanent_refusal_fails_at_once() -> None:
    """A refused destination: failed on attempt 1 though the schedule has room."""
    result = outcome(answered(None, error="destination refused: 10.0.0.1 is private",
                              permanent=True))
    assert result.new_status == DeliveryStatus.FAILED and result.next_attempt_at is None
    assert result.error == "destination refused: 10.0.0.1 is private"
    assert result.disable_reason is None


def test_a_client_error_not_retried_for_the_endpoint_fails_with_the_reason() -> None:
    """retry_client_errors: false: a 400 fails at once, saying why."""
    result = outcome(answered(400), retry_client_errors=False)
    assert result.new_status == DeliveryStatus.FAILED
    assert result.error == ("endpoint answered 400; client errors are not retried "
                            "for this endpoint")


def test_the_schedule_spent_fails_with_the_last_error_and_the_count() -> None:
    """Attempt 3 of a two-delay schedule: failed, the answer and the give-up both named."""
    result = outcome(answered(502), attempt=3)
    assert result.new_status == DeliveryStatus.FAILED and result.next_attempt_at is None
    assert result.error == "endpoint answered 502; gave up after 3 attempts"
    timed_out = outcome(answered(None, error="timed out after 5s"), attempt=3)
    assert timed_out.error == "timed out after 5s; gave up after 3 attempts"


def test_an_interrupted_attempt_does_not_count_and_is_due_again_at_once() -> None:
    """Cut short by shutdown: pending now, not counted, the time it ran kept."""
    result = interrupted_result(claimed(2), started=STARTED, now=ENDED,
                                request_headers={"x-h": "v"})
    assert (result.new_status, result.next_attempt_at, result.counts) == (
        DeliveryStatus.PENDING, ENDED, False)
    assert result.attempt == 2 and result.status_code is None
    assert result.duration_ms == pytest.approx(250.0)
    assert result.error == "interrupted: the relay shut down during this attempt"
    assert result.request_headers == {"x-h": "v"}


@pytest.mark.parametrize(("signature", "stored"), [
    ("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "v1,…"),
    ("v1,abc= v1a,def=", "v1,… v1a,…"),  # two secrets during a rotation
    ("deadbeef", "…"),
])
def test_mask_keeps_only_each_signatures_scheme_prefix(signature: str, stored: str) -> None:
    """What an operator sees of a signature: which schemes were sent, nothing replayable."""
    assert mask(signature) == stored


@pytest.mark.parametrize("scheme", ["standard", "x-webhook", "babel"])
def test_stored_headers_mask_the_signature_of_every_scheme_and_nothing_else(
    scheme: str,
) -> None:
    """The endpoint's own headers and the id/timestamp stay; the signature is masked."""
    runtime = EndpointRuntime.build(endpoint(signature=scheme, headers={"X-Tenant": "acme"}),
                                    None)
    sent = {"X-Tenant": "acme",
            **runtime.signer.headers("evt_9", "license.created", int(STARTED), b"{}")}
    stored = runtime.stored_headers(sent)
    [signature_name] = [name for name in sent if name.lower().endswith("-signature")]
    assert stored[signature_name] == mask(sent[signature_name]) != sent[signature_name]
    assert {k: v for k, v in stored.items() if k != signature_name} == {
        k: v for k, v in sent.items() if k != signature_name}
    assert stored == stored_headers(sent, signature_masks(sent))
