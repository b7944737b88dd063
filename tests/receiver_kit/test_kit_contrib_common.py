"""The claim-or-refuse decisions every framework integration shares (contrib/_common)."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3

import pytest
from conftest import FakeClock

from receiver_kit import (
    InvalidSignatureError,
    MemoryStore,
    SQLiteStore,
    WebhookEvent,
)
from receiver_kit.contrib._common import (
    PROBLEM_CONTENT_TYPE,
    Admission,
    Answer,
    aclaim_event,
    claim_event,
    handler_raised,
)

EVENT = WebhookEvent(id="evt_1", type="license.created", timestamp=None, payload={}, body=b"{}")


def settle(admission: Admission, succeeded: bool, mode: str) -> None:
    if mode == "sync":
        admission.settle(succeeded)
    else:
        asyncio.run(admission.asettle(succeeded))


def claim(store: MemoryStore | SQLiteStore | None, event_id: str, mode: str) -> Admission:
    if mode == "sync":
        return claim_event(store, event_id)
    return asyncio.run(aclaim_event(store, event_id))


MODES = pytest.mark.parametrize("mode", ["sync", "async"])


@MODES
def test_acquired_runs_and_success_completes(mode):
    """An acquired claim refuses nothing; settling it as a success makes the id a duplicate."""
    store = MemoryStore()
    admission = claim(store, "evt_1", mode)
    assert admission.refused is None
    settle(admission, True, mode)
    answer = Answer.of(claim(store, "evt_1", mode).refused)  # type: ignore[arg-type]
    assert (answer.status, answer.content_type) == (200, "application/json")
    assert json.loads(answer.body) == {"id": "evt_1", "status": "duplicate", "duplicate": True}


@MODES
def test_in_flight_claim_is_refused_with_409(mode):
    """A second claim while the first is held answers the 409 problem."""
    store = MemoryStore()
    assert claim(store, "evt_1", mode).refused is None
    refused = claim(store, "evt_1", mode).refused
    assert refused is not None
    answer = Answer.of(refused)
    assert (answer.status, answer.content_type) == (409, PROBLEM_CONTENT_TYPE)
    assert json.loads(answer.body)["detail"].startswith("event evt_1 is being processed")


@MODES
def test_failure_releases_once(mode):
    """Settling as a failure releases the claim; settling again does nothing."""
    store = MemoryStore()
    admission = claim(store, "evt_1", mode)
    settle(admission, False, mode)
    settle(admission, True, mode)  # already settled: must not complete the event
    assert claim(store, "evt_1", mode).refused is None


@MODES
def test_without_a_store_nothing_is_claimed(mode):
    """No store: nothing is refused and settling is a no-op."""
    admission = claim(None, "evt_1", mode)
    assert admission.refused is None
    settle(admission, True, mode)


@MODES
def test_store_failure_is_a_logged_503(mode, tmp_path, caplog):
    """A store that cannot claim answers 503, and the failure is logged."""
    db = tmp_path / "claims.db"
    db.mkdir()  # SQLite cannot open a directory
    with caplog.at_level(logging.ERROR, logger="receiver_kit"):
        admission = claim(SQLiteStore(db), "evt_1", mode)
    assert admission.refused is not None
    assert Answer.of(admission.refused).status == 503
    assert "evt_1: idempotency store failed" in caplog.text


@MODES
def test_a_lost_claim_is_logged_and_left_alone(mode, clock: FakeClock, caplog):
    """Completing after the lease passed to another worker warns and keeps that worker's claim."""
    store = MemoryStore(lease_s=1, clock=clock)
    first = claim(store, "evt_1", mode)
    clock.advance(2)
    assert claim(store, "evt_1", mode).refused is None  # another worker takes it
    with caplog.at_level(logging.WARNING, logger="receiver_kit"):
        settle(first, True, mode)
    assert "consider a longer lease" in caplog.text
    assert Answer.of(claim(store, "evt_1", mode).refused).status == 409  # type: ignore[arg-type]


@MODES
def test_store_failure_when_settling_is_logged_not_raised(mode, tmp_path, caplog):
    """The handler has run: a store that cannot record the outcome is logged, not raised."""
    db = tmp_path / "claims.db"
    store = SQLiteStore(db, busy_timeout_s=0.05)
    admission = claim(store, "evt_1", mode)
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        with caplog.at_level(logging.ERROR, logger="receiver_kit"):
            settle(admission, True, mode)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        store.close()
    assert "evt_1: could not record the outcome in the store" in caplog.text


def test_verification_error_answers_its_problem():
    """A VerificationError answers its own status as an RFC 9457 problem."""
    answer = Answer.of(InvalidSignatureError("no signature matches"))
    assert (answer.status, answer.content_type) == (401, PROBLEM_CONTENT_TYPE)
    assert json.loads(answer.body)["detail"] == "no signature matches"


def test_handler_exception_is_a_logged_500(caplog):
    """An exception nothing else answers becomes the kit's 500, logged with its traceback."""
    with caplog.at_level(logging.ERROR, logger="receiver_kit"):
        try:
            raise RuntimeError("boom")
        except RuntimeError as exc:
            document = handler_raised(EVENT, exc, passes_through=False)
    assert document is not None
    assert document["status"] == 500
    assert caplog.records[-1].exc_info is not None
    assert caplog.records[-1].getMessage() == "webhook handler failed for event evt_1"


@pytest.mark.parametrize(
    ("exc", "passes_through"),
    [
        (RuntimeError("answered by the framework"), True),
        (asyncio.CancelledError(), False),
        (KeyboardInterrupt(), False),
    ],
)
def test_other_exceptions_propagate(exc, passes_through):
    """Framework-handled exceptions, cancellation and interrupts are not turned into a 500."""
    assert handler_raised(EVENT, exc, passes_through=passes_through) is None
