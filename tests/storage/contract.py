"""The `Storage` contract: what every backend must do, as a test base class.

Each backend's test module subclasses `StorageContract` (saq's `TestQueue`,
the receiver kit's `HTTPContract`) and provides `make_store`, a fixture that
returns a factory of unopened stores on one fresh database of the test's own.
Every method of `relay.storage.base.Storage` is called here directly, with
the documented semantics as the expected result.

Time is explicit: every `now` is passed in, counted from `T0` (a moment in the
past, so a backend that compares with the wall clock sees it as overdue), and
no test sleeps. Where the interface leaves a choice to the backend, the
subclass declares the one it made as a class attribute, and the test checks
that choice rather than skipping.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import replace
from typing import ClassVar

import anyio
import pytest

from relay.exceptions import StorageUnavailable
from relay.models import (
    AttemptResult,
    ClaimedDelivery,
    DeliveryStatus,
    IngestOutcome,
    NewEvent,
)
from relay.storage.base import (
    DeliveryFilter,
    DeliveryRecord,
    EventFilter,
    PortalSession,
    Storage,
    StoredEndpoint,
    StoredSource,
)
from relay.storage.health import disable_after_reason

__all__ = ["T0", "StorageContract"]

T0 = 1_700_000_000.0
LEASE_S = 30.0
BODY = b'{"type": "license.created", "data": {"licenseKey": "ABCD-1234"}}'
PENDING, SCHEDULED, DELIVERING = (
    DeliveryStatus.PENDING, DeliveryStatus.SCHEDULED, DeliveryStatus.DELIVERING)
DELIVERED, FAILED, HELD = DeliveryStatus.DELIVERED, DeliveryStatus.FAILED, DeliveryStatus.HELD
GONE = "the endpoint answered 410 Gone"


def event(key: str, *endpoints: str, at: float = T0, body: bytes = BODY,
          event_type: str = "license.created") -> NewEvent:
    """An event with a client-chosen id (so duplicates are detected)."""
    return NewEvent(key, event_type, body, endpoints, at, True)


def delivered(claimed: ClaimedDelivery, at: float) -> AttemptResult:
    return AttemptResult(claimed.id, claimed.endpoint, claimed.attempt, at, 12.5, 200,
                         b"ok", None, {"webhook-id": claimed.event_id})


def failing(claimed: ClaimedDelivery, at: float, retry_at: float | None = None, *,
            disable_after_s: float | None = None, code: int = 503,
            error: str | None = None, disable_reason: str | None = None) -> AttemptResult:
    """A failed attempt: scheduled for `retry_at`, or failed for good without one."""
    return AttemptResult(
        claimed.id, claimed.endpoint, claimed.attempt, at, 40.0, code, b"down",
        error or f"HTTP {code}", new_status=SCHEDULED if retry_at is not None else FAILED,
        next_attempt_at=retry_at, disable_after_s=disable_after_s,
        disable_reason=disable_reason)


async def ingest(store: Storage, key: str, *endpoints: str, at: float = T0,
                 event_type: str = "license.created") -> list[int]:
    """Store one new event; the ids of its deliveries, in endpoint order."""
    [outcome] = await store.ingest([event(key, *endpoints, at=at, event_type=event_type)])
    assert not outcome.duplicate and not outcome.conflict
    return [d.id for d in await store.event_deliveries(key)]


async def claim_one(store: Storage, endpoint: str, now: float = T0,
                    lease_s: float = LEASE_S) -> ClaimedDelivery:
    [claimed] = await store.claim(endpoint, 1, now, lease_s)
    return claimed


async def claim_in_id_order(store: Storage, endpoint: str, limit: int, now: float = T0,
                            lease_s: float = LEASE_S) -> list[ClaimedDelivery]:
    """Claims sorted by id, so that no test but the one on ordering depends on it."""
    return sorted(await store.claim(endpoint, limit, now, lease_s), key=lambda c: c.id)


async def status(store: Storage, delivery_id: int) -> DeliveryStatus:
    record = await store.get_delivery(delivery_id)
    assert record is not None
    return record.status


async def statuses(store: Storage, ids: Iterable[int]) -> list[DeliveryStatus]:
    return [await status(store, i) for i in ids]


async def disable(store: Storage, endpoint: str, at: float = T0) -> None:
    """Disable `endpoint` the way a 410 Gone does, through an attempt of its own."""
    await ingest(store, f"evt_gone_{endpoint}", endpoint, at=at)
    claimed = await claim_one(store, endpoint, at)
    assert await store.record([failing(claimed, at, code=410, disable_reason=GONE)]) == {
        endpoint: GONE}


def ids_of(records: Sequence[DeliveryRecord]) -> list[int]:
    return [r.id for r in records]


@pytest.mark.anyio
class StorageContract:
    """Every documented behaviour of every `Storage` method, for one backend."""

    # Whether `claim` itself enforces `max_in_flight` and `rate_per_s`, counting
    # every relay's leases (a store several processes share), or leaves them to
    # the lane; this is the backend's `leases_count_as_in_flight`.
    shares_limits: ClassVar[bool]
    # Whether `recover_interrupted` requeues unexpired leases too: safe only for a
    # store one process owns; a shared one requeues expired leases only.
    recovers_live_leases: ClassVar[bool]
    # Whether another store instance's ingest calls this one's `set_wakeup` callback.
    wakes_other_instances: ClassVar[bool]

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture
    def make_store(self) -> Callable[[], Storage]:
        raise NotImplementedError("a backend's test class provides make_store")

    async def opened(self, store: Storage) -> Storage:
        """Open `store` and return it once it is ready for every method."""
        await store.open()
        return store

    @pytest.fixture
    async def store(self, make_store: Callable[[], Storage]) -> AsyncIterator[Storage]:
        store = await self.opened(make_store())
        try:
            yield store
        finally:
            await store.close()

    # -- open, close -----------------------------------------------------------------

    async def test_the_backend_declares_how_it_counts_leases(self, store: Storage) -> None:
        """`leases_count_as_in_flight` is what the limit tests below expect of claims."""
        assert type(store).leases_count_as_in_flight is self.shares_limits

    async def test_what_was_stored_survives_close_and_reopen(
            self, make_store: Callable[[], Storage]) -> None:
        """Open migrates and connects; close finishes writes; a new instance sees them."""
        first = await self.opened(make_store())
        try:
            await ingest(first, "evt_kept", "a", "b")
        finally:
            await first.close()
        second = await self.opened(make_store())
        try:
            stored = await second.get_event("evt_kept")
            assert stored is not None and stored.body == BODY and stored.delivery_count == 2
            assert [d.status for d in await second.event_deliveries("evt_kept")] == [
                PENDING, PENDING]
        finally:
            await second.close()

    async def test_a_closed_store_answers_storage_unavailable(
            self, make_store: Callable[[], Storage]) -> None:
        """After close, writes and reads raise `StorageUnavailable`, not a driver error."""
        store = await self.opened(make_store())
        await store.close()
        with pytest.raises(StorageUnavailable):
            await store.ingest([event("evt_late", "a")])
        with pytest.raises(StorageUnavailable):
            await store.check_writable()
        with pytest.raises(StorageUnavailable):
            await store.get_delivery(1)

    # -- ingest ----------------------------------------------------------------------

    async def test_ingest_stores_each_event_and_one_pending_delivery_per_endpoint(
            self, store: Storage) -> None:
        """New events: their outcomes, the body byte for byte, deliveries due at receipt."""
        outcomes = await store.ingest([
            event("evt_1", "a", "b", at=T0 + 1),
            event("evt_2", "b", at=T0 + 2, body=b'{"n":2}', event_type="order.created"),
        ])
        assert outcomes == [IngestOutcome("evt_1", "license.created", 2),
                            IngestOutcome("evt_2", "order.created", 1)]
        stored = await store.get_event("evt_2")
        assert stored is not None
        assert (stored.id, stored.type, stored.body, stored.received_at,
                stored.delivery_count) == ("evt_2", "order.created", b'{"n":2}', T0 + 2, 1)
        deliveries = await store.event_deliveries("evt_1")
        assert [(d.endpoint, d.status, d.attempts, d.next_attempt_at, d.created_at)
                for d in deliveries] == [("a", PENDING, 0, T0 + 1, T0 + 1),
                                         ("b", PENDING, 0, T0 + 1, T0 + 1)]

    async def test_ingest_of_a_stored_id_with_the_same_body_is_a_duplicate(
            self, store: Storage) -> None:
        """A duplicate reports the stored event and stores nothing more."""
        await ingest(store, "evt_dup", "a", "b")
        [outcome] = await store.ingest([event("evt_dup", "a", "b", at=T0 + 5)])
        assert outcome == IngestOutcome("evt_dup", "license.created", 2, duplicate=True)
        assert len(await store.event_deliveries("evt_dup")) == 2
        stored = await store.get_event("evt_dup")
        assert stored is not None and stored.received_at == T0
        # Unlike a conflict, a duplicate does not stop the rest of its call.
        outcomes = await store.ingest([event("evt_dup", "a", "b"), event("evt_next", "a")])
        assert [o.duplicate for o in outcomes] == [True, False]
        assert len(await store.event_deliveries("evt_next")) == 1

    async def test_ingest_of_a_stored_id_with_another_body_is_a_conflict(
            self, store: Storage) -> None:
        """A conflict leaves the stored event as it was."""
        await ingest(store, "evt_c", "a")
        [outcome] = await store.ingest([event("evt_c", "a", body=b'{"other": true}')])
        assert outcome.conflict and not outcome.duplicate
        stored = await store.get_event("evt_c")
        assert stored is not None and stored.body == BODY
        assert len(await store.event_deliveries("evt_c")) == 1

    async def test_one_conflict_stores_nothing_of_its_call(self, store: Storage) -> None:
        """All or nothing per call: the new events beside a conflict are not stored."""
        await ingest(store, "evt_old", "a")
        outcomes = await store.ingest([
            event("evt_new", "a"), event("evt_old", "a", body=b"{}"), event("evt_new2", "b")])
        assert [o.conflict for o in outcomes] == [False, True, False]
        assert await store.get_event("evt_new") is None
        assert await store.get_event("evt_new2") is None
        assert await store.event_deliveries("evt_new") == []
        # The rejected call left no trace: the same events go in on their own.
        assert [o.duplicate for o in await store.ingest([event("evt_new", "a")])] == [False]

    async def test_an_id_twice_in_one_call_is_stored_once(self, store: Storage) -> None:
        """The second copy in the same call is a duplicate of the first."""
        outcomes = await store.ingest([event("evt_twice", "a"), event("evt_twice", "a")])
        assert [o.duplicate for o in outcomes] == [False, True]
        assert len(await store.event_deliveries("evt_twice")) == 1

    @pytest.mark.parametrize("second_body", [BODY, b'{"other": true}'])
    async def test_concurrent_ingests_of_one_id_store_it_once(
            self, store: Storage, second_body: bytes) -> None:
        """Calls racing with the same id: one stores it, the other gets duplicate or conflict."""
        outcomes = await asyncio.gather(store.ingest([event("evt_race", "a")]),
                                        store.ingest([event("evt_race", "a", body=second_body)]))
        flags = sorted((o.duplicate, o.conflict) for [o] in outcomes)
        assert flags == [(False, False), (second_body == BODY, second_body != BODY)]
        assert len(await store.event_deliveries("evt_race")) == 1

    async def test_an_event_no_endpoint_wants_is_stored_without_deliveries(
            self, store: Storage) -> None:
        """Unrouted events are kept (retention purges them), with no delivery."""
        [outcome] = await store.ingest([event("evt_unrouted")])
        assert outcome.deliveries == 0
        stored = await store.get_event("evt_unrouted")
        assert stored is not None and stored.delivery_count == 0
        assert await store.event_deliveries("evt_unrouted") == []

    @pytest.mark.parametrize("how", ["paused", "disabled"])
    async def test_ingest_holds_deliveries_for_a_held_endpoint(
            self, store: Storage, how: str) -> None:
        """An event for a paused or disabled endpoint waits as `held`; others are pending."""
        if how == "paused":
            await store.pause_endpoint("a", T0)
        else:
            await disable(store, "a")
        ids = await ingest(store, "evt_h", "a", "b", at=T0 + 1)
        assert await statuses(store, ids) == [HELD, PENDING]

    # -- claim -----------------------------------------------------------------------

    async def test_claim_leases_at_most_limit_deliveries_of_its_endpoint(
            self, store: Storage) -> None:
        """Claimed deliveries are `delivering`; the rest, and other endpoints', wait."""
        ids = [(await ingest(store, f"evt_{i}", "a", at=T0 + i))[0] for i in range(4)]
        other = await ingest(store, "evt_b", "b")
        claimed = await store.claim("a", 2, T0 + 10, LEASE_S)
        assert [c.id for c in claimed] == ids[:2]
        assert await statuses(store, ids) == [DELIVERING, DELIVERING, PENDING, PENDING]
        assert await statuses(store, other) == [PENDING]

    async def test_a_claim_carries_what_the_attempt_needs_and_its_lease(
            self, store: Storage) -> None:
        """Body, type, 1-based attempt number, and `lease_until` = now + lease_s."""
        [delivery_id] = await ingest(store, "evt_x", "a", event_type="license.renewed")
        [claimed] = await store.claim("a", 5, T0 + 3, 45.0)
        assert claimed == ClaimedDelivery(delivery_id, "evt_x", "license.renewed", "a", BODY,
                                          1, T0 + 48.0)

    @pytest.mark.parametrize("fifo", [False, True])
    async def test_a_claim_carries_the_trace_context_stored_with_its_event(
            self, store: Storage, fifo: bool) -> None:
        """The ingest span's context comes back with each claim, fifo or not; None if none."""
        traced = event("evt_traced", "a")
        traced.trace_context = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 k=v"
        await store.ingest([traced, event("evt_plain", "a", at=T0 + 1)])
        first = await store.claim("a", 5, T0 + 3, LEASE_S, fifo=fifo)
        assert [c.trace_context for c in first] == [traced.trace_context, None][:len(first)]
        if fifo:  # one at a time: the head first
            await store.record([delivered(first[0], T0 + 4)])
            [second] = await store.claim("a", 5, T0 + 5, LEASE_S, fifo=True)
            assert second.trace_context is None

    async def test_claim_takes_only_due_deliveries(self, store: Storage) -> None:
        """A delivery is due from its `next_attempt_at` on, that moment included."""
        [delivery_id] = await ingest(store, "evt_later", "a", at=T0 + 10)
        assert await store.claim("a", 5, T0 + 9.5, LEASE_S) == []
        assert [c.id for c in await store.claim("a", 5, T0 + 10, LEASE_S)] == [delivery_id]

    async def test_claim_takes_the_oldest_due_first(self, store: Storage) -> None:
        """Ordered by due time, not by id; a retry counts its attempt number on."""
        [first] = await ingest(store, "evt_1", "a", at=T0)
        [second] = await ingest(store, "evt_2", "a", at=T0 + 1)
        claimed = await claim_one(store, "a", T0 + 1)
        assert claimed.id == first
        await store.record([failing(claimed, T0 + 2, retry_at=T0 + 5)])
        [third] = await ingest(store, "evt_3", "a", at=T0 + 6)
        assert (await claim_one(store, "a", T0 + 10)).id == second
        again = await store.claim("a", 5, T0 + 10, LEASE_S)
        assert [(c.id, c.attempt) for c in again] == [(first, 2), (third, 1)]

    async def test_claim_breaks_ties_in_due_time_by_age(self, store: Storage) -> None:
        """Deliveries due at the same moment are claimed in the order they were stored."""
        await store.ingest([event(f"evt_{i}", "a") for i in range(5)])
        ids = [d.id for d in await store.list_deliveries(DeliveryFilter(), 10)][::-1]
        assert [c.id for c in await store.claim("a", 2, T0, LEASE_S)] == ids[:2]
        assert [c.id for c in await store.claim("a", 5, T0, LEASE_S)] == ids[2:]

    async def test_fifo_claims_only_the_oldest_unfinished_delivery(
            self, store: Storage) -> None:
        """With `fifo`, however large the limit, only the head of the queue is leased."""
        ids = [(await ingest(store, f"evt_{i}", "a", at=T0 + i))[0] for i in range(3)]
        claimed = await store.claim("a", 5, T0 + 10, LEASE_S, fifo=True)
        assert [c.id for c in claimed] == ids[:1]

    async def test_fifo_claims_nothing_while_a_delivery_is_in_flight(
            self, store: Storage) -> None:
        """The next in line waits until the head's outcome is recorded."""
        ids = [(await ingest(store, f"evt_{i}", "a", at=T0 + i))[0] for i in range(3)]
        [head] = await store.claim("a", 5, T0 + 10, LEASE_S, fifo=True)
        assert await store.claim("a", 5, T0 + 11, LEASE_S, fifo=True) == []
        await store.record([delivered(head, T0 + 12)])
        assert [c.id for c in await store.claim("a", 5, T0 + 13, LEASE_S, fifo=True)] == [
            ids[1]]

    async def test_fifo_waits_for_a_head_not_yet_due(self, store: Storage) -> None:
        """A head scheduled for later blocks the due deliveries behind it."""
        ids = [(await ingest(store, f"evt_{i}", "a", at=T0 + i))[0] for i in range(2)]
        [head] = await store.claim("a", 1, T0 + 5, LEASE_S, fifo=True)
        await store.record([failing(head, T0 + 6, retry_at=T0 + 100)])
        assert await store.claim("a", 5, T0 + 50, LEASE_S, fifo=True) == []
        assert [c.id for c in await store.claim("a", 5, T0 + 100, LEASE_S, fifo=True)] == [
            ids[0]]

    async def test_claim_limits_are_enforced_by_a_shared_store_only(
            self, store: Storage) -> None:
        """`max_in_flight` counts unexpired leases where the store is shared, else the lane."""
        for i in range(5):
            await ingest(store, f"evt_{i}", "a")
        first = await store.claim("a", 5, T0, LEASE_S, max_in_flight=2)
        if self.shares_limits:
            assert len(first) == 2
            assert await store.claim("a", 5, T0 + 1, LEASE_S, max_in_flight=2) == []
            await store.record([delivered(first[0], T0 + 2)])
            assert len(await store.claim("a", 5, T0 + 3, LEASE_S, max_in_flight=2)) == 1
        else:
            assert len(first) == 5

    async def test_claim_rate_is_enforced_by_a_shared_store_only(
            self, store: Storage) -> None:
        """`rate_per_s` is a token bucket the claims of every relay spend, where shared."""
        for i in range(5):
            await ingest(store, f"evt_{i}", "a")
        first = await store.claim("a", 5, T0, LEASE_S, rate_per_s=1.0)
        if self.shares_limits:
            assert len(first) == 1
            assert await store.claim("a", 5, T0 + 0.5, LEASE_S, rate_per_s=1.0) == []
            assert len(await store.claim("a", 5, T0 + 1.0, LEASE_S, rate_per_s=1.0)) == 1
        else:
            assert len(first) == 5

    # -- next_due_at -----------------------------------------------------------------

    async def test_next_due_at_is_the_earliest_waiting_delivery(self, store: Storage) -> None:
        """Pending and scheduled count; in-flight, held and finished ones do not."""
        assert await store.next_due_at("a") is None
        await ingest(store, "evt_1", "a", at=T0 + 1)
        await ingest(store, "evt_2", "a", at=T0 + 2)
        assert await store.next_due_at("a") == T0 + 1
        claimed = await claim_one(store, "a", T0 + 5)
        assert await store.next_due_at("a") == T0 + 2
        await store.record([failing(claimed, T0 + 6, retry_at=T0 + 1.5)])
        assert await store.next_due_at("a") == T0 + 1.5
        await store.pause_endpoint("a", T0 + 7)
        assert await store.next_due_at("a") is None
        assert await store.next_due_at("other") is None

    async def test_fifo_next_due_at_is_the_head_s_unless_it_is_in_flight(
            self, store: Storage) -> None:
        """In fifo order only the head's due time counts, and none while it is in flight."""
        assert await store.next_due_at("a", fifo=True) is None
        await ingest(store, "evt_1", "a", at=T0 + 1)
        await ingest(store, "evt_2", "a", at=T0 + 2)
        assert await store.next_due_at("a", fifo=True) == T0 + 1
        [head] = await store.claim("a", 1, T0 + 5, LEASE_S, fifo=True)
        assert await store.next_due_at("a", fifo=True) is None
        await store.record([failing(head, T0 + 6, retry_at=T0 + 60)])
        # The head waits for its retry; the delivery behind it, due long ago, waits too.
        assert await store.next_due_at("a", fifo=True) == T0 + 60

    # -- record ----------------------------------------------------------------------

    async def test_record_stores_the_attempt(self, store: Storage) -> None:
        """Every field of the attempt, the response body as text, oldest attempt first."""
        [delivery_id] = await ingest(store, "evt_1", "a")
        claimed = await claim_one(store, "a")
        await store.record([failing(claimed, T0 + 1, retry_at=T0 + 10)])
        retried = await claim_one(store, "a", T0 + 10)
        await store.record([delivered(retried, T0 + 11)])
        attempts = await store.list_attempts(delivery_id)
        assert [(a.attempt, a.started_at, a.status_code, a.error) for a in attempts] == [
            (1, T0 + 1, 503, "HTTP 503"), (2, T0 + 11, 200, None)]
        assert attempts[0].duration_ms == 40.0 and attempts[0].response_body == "down"
        assert attempts[1].request_headers == {"webhook-id": "evt_1"}
        assert await store.list_attempts(delivery_id + 1000) == []

    async def test_record_moves_each_delivery_to_the_state_its_result_names(
            self, store: Storage) -> None:
        """Delivered, scheduled (with its retry time) or failed, with the last outcome."""
        ids = [(await ingest(store, f"evt_{i}", "a"))[0] for i in range(3)]
        ok, retry, dead = await claim_in_id_order(store, "a", 3, T0)
        assert await store.record([
            delivered(ok, T0 + 1), failing(retry, T0 + 1, retry_at=T0 + 30),
            failing(dead, T0 + 1, code=400, error="HTTP 400"),
        ]) == {}
        records = [await store.get_delivery(i) for i in ids]
        assert [(r.status, r.attempts, r.last_status_code, r.last_error, r.last_attempt_at)
                for r in records if r is not None] == [
            (DELIVERED, 1, 200, None, T0 + 1), (SCHEDULED, 1, 503, "HTTP 503", T0 + 1),
            (FAILED, 1, 400, "HTTP 400", T0 + 1)]
        assert records[1] is not None and records[1].next_attempt_at == T0 + 30
        # updated_at is when the attempt finished: its start plus its duration.
        assert records[0] is not None and records[0].updated_at == pytest.approx(T0 + 1.0125)

    async def test_an_attempt_that_does_not_count_leaves_the_attempt_count(
            self, store: Storage) -> None:
        """An attempt cut short by shutdown is stored but not counted against the schedule."""
        [delivery_id] = await ingest(store, "evt_1", "a")
        claimed = await claim_one(store, "a")
        cut = failing(claimed, T0 + 1, retry_at=T0 + 1)
        cut.counts, cut.new_status = False, PENDING
        await store.record([cut])
        record = await store.get_delivery(delivery_id)
        assert record is not None and (record.status, record.attempts) == (PENDING, 0)
        assert len(await store.list_attempts(delivery_id)) == 1
        assert (await claim_one(store, "a", T0 + 2)).attempt == 1

    async def test_record_with_nothing_to_record_returns_nothing(self, store: Storage) -> None:
        """An empty batch of results disables nothing."""
        assert await store.record([]) == {}

    async def test_record_keeps_the_endpoint_s_failing_streak(self, store: Storage) -> None:
        """`failing_since` is the first failure since the last success; a success ends it."""
        for i in range(3):
            await ingest(store, f"evt_{i}", "a")
        one, two, three = await claim_in_id_order(store, "a", 3, T0)
        await store.record([failing(one, T0 + 10, retry_at=T0 + 100)])
        stats = (await store.endpoint_stats("a"))["a"]
        assert (stats.failing_since, stats.last_attempt_at, stats.last_success_at) == (
            T0 + 10, T0 + 10, None)
        await store.record([failing(two, T0 + 20, retry_at=T0 + 100)])
        stats = (await store.endpoint_stats("a"))["a"]
        assert (stats.failing_since, stats.last_attempt_at) == (T0 + 10, T0 + 20)
        await store.record([delivered(three, T0 + 30)])
        stats = (await store.endpoint_stats("a"))["a"]
        assert (stats.failing_since, stats.last_attempt_at, stats.last_success_at) == (
            None, T0 + 30, T0 + 30)

    async def test_record_disables_an_endpoint_failing_for_disable_after_s(
            self, store: Storage) -> None:
        """Disabled once failing that long, with the reason; its waiting deliveries held."""
        ids = [(await ingest(store, f"evt_{i}", "a"))[0] for i in range(4)]
        one, two, three = await claim_in_id_order(store, "a", 3, T0)
        assert await store.record([failing(one, T0 + 10, T0 + 500, disable_after_s=60)]) == {}
        assert await store.record([failing(two, T0 + 69, T0 + 500, disable_after_s=60)]) == {}
        assert await store.held_endpoints() == {}
        reason = disable_after_reason(T0 + 10, 60)
        assert await store.record([failing(three, T0 + 70, T0 + 500, disable_after_s=60)]) == {
            "a": reason}
        assert await store.held_endpoints() == {"a": reason}
        assert await statuses(store, ids) == [HELD] * 4
        stats = (await store.endpoint_stats("a"))["a"]
        assert (stats.disabled_reason, stats.disabled_at) == (reason, T0 + 70)

    async def test_a_result_asking_for_it_disables_its_endpoint(self, store: Storage) -> None:
        """410 Gone: disabled at once with the result's reason; other endpoints untouched."""
        ids = [(await ingest(store, f"evt_{i}", "a", "b", at=T0 + i))[0] for i in range(2)]
        claimed = await claim_one(store, "a", T0 + 1)
        assert await store.record([failing(claimed, T0 + 1, code=410,
                                           disable_reason=GONE)]) == {"a": GONE}
        assert await store.held_endpoints() == {"a": GONE}
        assert await statuses(store, ids) == [FAILED, HELD]
        assert [d.status for d in await store.event_deliveries("evt_1")] == [HELD, PENDING]

    async def test_record_returns_only_the_endpoints_it_disabled(
            self, store: Storage) -> None:
        """A failure of an endpoint disabled earlier reports nothing new."""
        for i in range(2):
            await ingest(store, f"evt_{i}", "a")
        first, second = await claim_in_id_order(store, "a", 2, T0)
        assert await store.record([failing(first, T0 + 1, T0 + 500, disable_after_s=0)]) == {
            "a": disable_after_reason(T0 + 1, 0)}
        assert await store.record([failing(second, T0 + 2, T0 + 500,
                                           disable_after_s=0)]) == {}

    async def test_a_waiting_result_for_a_held_endpoint_becomes_held(
            self, store: Storage) -> None:
        """Paused mid-attempt: a retry waits as held, a success is still a success."""
        ids = [(await ingest(store, f"evt_{i}", "a"))[0] for i in range(2)]
        retry, ok = await claim_in_id_order(store, "a", 2, T0)
        await store.pause_endpoint("a", T0 + 1)
        await store.record([failing(retry, T0 + 2, retry_at=T0 + 60), delivered(ok, T0 + 2)])
        assert await statuses(store, ids) == [HELD, DELIVERED]

    # -- sync_endpoints --------------------------------------------------------------

    async def test_sync_holds_the_waiting_deliveries_of_removed_endpoints(
            self, store: Storage) -> None:
        """Pending and scheduled become held, never dropped; in flight and finished stay."""
        ids = [(await ingest(store, f"evt_{i}", "gone", "kept"))[0] for i in range(4)]
        done, retry, busy = await claim_in_id_order(store, "gone", 3, T0)
        await store.record([delivered(done, T0 + 1), failing(retry, T0 + 1, T0 + 60)])
        await store.sync_endpoints(["kept"], T0 + 2)
        assert await statuses(store, ids) == [DELIVERED, HELD, DELIVERING, HELD]
        kept = [d.status for i in range(4) for d in await store.event_deliveries(f"evt_{i}")
                if d.endpoint == "kept"]
        assert kept == [PENDING] * 4
        assert busy.endpoint == "gone"

    async def test_sync_makes_the_held_deliveries_of_an_active_endpoint_due_again(
            self, store: Storage) -> None:
        """Back in the config: due again, as pending or (once attempted) scheduled."""
        ids = [(await ingest(store, f"evt_{i}", "a", at=T0 + i))[0] for i in range(2)]
        claimed = await claim_one(store, "a", T0)
        await store.record([failing(claimed, T0 + 1, retry_at=T0 + 60)])
        await store.sync_endpoints([], T0 + 2)
        assert await statuses(store, ids) == [HELD, HELD]
        await store.sync_endpoints(["a"], T0 + 3)
        assert await statuses(store, ids) == [SCHEDULED, PENDING]
        assert await store.next_due_at("a") == T0 + 1

    async def test_sync_leaves_a_paused_or_disabled_endpoint_held(
            self, store: Storage) -> None:
        """Being in the config does not release an endpoint the operator or a 410 holds."""
        await store.pause_endpoint("p", T0)
        await disable(store, "d")
        ids = await ingest(store, "evt_p", "p", "d", at=T0 + 1)
        await store.sync_endpoints(["p", "d"], T0 + 2)
        assert await statuses(store, ids) == [HELD, HELD]

    # -- release ---------------------------------------------------------------------

    async def test_a_released_claim_is_due_again_at_once(self, store: Storage) -> None:
        """Never attempted: pending; attempted before: scheduled; no attempt is stored."""
        ids = [(await ingest(store, f"evt_{i}", "a", at=T0 + i))[0] for i in range(2)]
        claimed = await claim_one(store, "a", T0 + 1)
        await store.record([failing(claimed, T0 + 1, retry_at=T0 + 5)])
        fresh, retried = await store.claim("a", 2, T0 + 5, LEASE_S)  # oldest due first
        assert (fresh.attempt, retried.attempt) == (1, 2)
        await store.release([(c.id, c.lease_until) for c in (retried, fresh)], T0 + 6)
        records = [await store.get_delivery(i) for i in ids]
        assert [(r.status, r.attempts, r.next_attempt_at) for r in records if r] == [
            (SCHEDULED, 1, T0 + 6), (PENDING, 0, T0 + 6)]
        assert len(await store.list_attempts(ids[1])) == 0
        assert len(await store.claim("a", 5, T0 + 6, LEASE_S)) == 2

    async def test_a_release_with_hold_holds_the_claims(self, store: Storage) -> None:
        """`hold` gives a claim back as held (its endpoint is paused, disabled or removed)."""
        [delivery_id] = await ingest(store, "evt_1", "a")
        claimed = await claim_one(store, "a")
        await store.release([(claimed.id, claimed.lease_until)], T0 + 1, hold=True)
        assert await status(store, delivery_id) == HELD

    async def test_a_claim_released_after_its_endpoint_was_paused_is_held(
            self, store: Storage) -> None:
        """Without `hold`, a claim of an endpoint paused meanwhile is held all the same."""
        [delivery_id] = await ingest(store, "evt_1", "a")
        claimed = await claim_one(store, "a")
        await store.pause_endpoint("a", T0 + 1)
        await store.release([(claimed.id, claimed.lease_until)], T0 + 2)
        assert await status(store, delivery_id) == HELD

    async def test_a_late_release_does_not_undo_a_newer_claim(self, store: Storage) -> None:
        """The lease ran out and the delivery was claimed again: the old release is ignored."""
        [delivery_id] = await ingest(store, "evt_1", "a")
        old = await claim_one(store, "a", T0, lease_s=10)
        assert await store.reap_expired_leases(T0 + 11) == 1
        new = await claim_one(store, "a", T0 + 12, lease_s=10)
        await store.release([(old.id, old.lease_until)], T0 + 13)
        assert await status(store, delivery_id) == DELIVERING
        await store.release([(new.id, new.lease_until)], T0 + 14)
        assert await status(store, delivery_id) == PENDING

    # -- recover_interrupted, reap_expired_leases -------------------------------------

    async def test_recover_interrupted_makes_deliveries_in_flight_due_again(
            self, store: Storage) -> None:
        """Each lost attempt is logged, not counted; expired leases always come back."""
        ids = [(await ingest(store, f"evt_{i}", "a", at=T0 + i))[0] for i in range(3)]
        expired = await claim_one(store, "a", T0 + 2, lease_s=8)
        live = await claim_one(store, "a", T0 + 15, lease_s=600)
        recovered = await store.recover_interrupted(T0 + 20)
        assert recovered == (2 if self.recovers_live_leases else 1)
        assert await status(store, expired.id) == PENDING
        assert await status(store, live.id) == (
            PENDING if self.recovers_live_leases else DELIVERING)
        [lost] = await store.list_attempts(expired.id)
        assert (lost.attempt, lost.started_at) == (1, T0 + 20)
        assert lost.error is not None and "interrupted" in lost.error
        record = await store.get_delivery(expired.id)
        assert record is not None and (record.attempts, record.next_attempt_at) == (0, T0 + 20)
        assert await status(store, ids[2]) == PENDING

    async def test_reap_makes_only_expired_leases_due_again(self, store: Storage) -> None:
        """A lease is expired once `lease_until` is past; the lost attempt is not counted."""
        for i, at in enumerate((T0, T0 + 3, T0 + 4)):
            await ingest(store, f"evt_{i}", "a", at=at)
        first = await claim_one(store, "a", T0, lease_s=10)
        await store.record([failing(first, T0 + 1, retry_at=T0 + 2)])
        retried, fresh = await store.claim("a", 2, T0 + 3, lease_s=9)  # oldest due first
        assert (retried.attempt, fresh.attempt) == (2, 1)
        live = await claim_one(store, "a", T0 + 5, lease_s=15)
        assert await store.reap_expired_leases(T0 + 12) == 0  # at lease_until, not past it
        assert await store.reap_expired_leases(T0 + 12.5) == 2
        records = [await store.get_delivery(c.id) for c in (retried, fresh, live)]
        assert [(r.status, r.attempts) for r in records if r] == [
            (SCHEDULED, 1), (PENDING, 0), (DELIVERING, 0)]
        assert [r.next_attempt_at for r in records[:2] if r] == [T0 + 12.5, T0 + 12.5]
        errors = [a.error for a in await store.list_attempts(fresh.id)]
        assert len(errors) == 1 and errors[0] is not None and "lease" in errors[0]
        assert await store.reap_expired_leases(T0 + 12.5) == 0

    async def test_a_reaped_lease_of_a_paused_endpoint_is_held(self, store: Storage) -> None:
        """A lease that runs out while its endpoint is paused comes back held, not due."""
        [delivery_id] = await ingest(store, "evt_1", "a")
        await claim_one(store, "a", T0, lease_s=10)
        await store.pause_endpoint("a", T0 + 1)
        assert await store.reap_expired_leases(T0 + 11) == 1
        assert await status(store, delivery_id) == HELD

    # -- check_writable, held_endpoints -----------------------------------------------

    async def test_check_writable_passes_on_an_open_store_and_leaves_no_trace(
            self, store: Storage) -> None:
        """The /readyz probe succeeds on an open store and leaves no endpoint state behind."""
        await store.check_writable()
        assert await store.endpoint_stats() == {}
        assert await store.held_endpoints() == {}

    async def test_held_endpoints_name_the_paused_and_the_disabled(
            self, store: Storage) -> None:
        """`paused`, or the disable reason; resumed endpoints drop out."""
        assert await store.held_endpoints() == {}
        await store.pause_endpoint("p", T0)
        await disable(store, "d")
        assert await store.held_endpoints() == {"p": "paused", "d": GONE}
        await store.resume_endpoint("p", T0 + 1)
        await store.resume_endpoint("d", T0 + 1)
        assert await store.held_endpoints() == {}

    # -- list_deliveries, get_delivery, get_event, event_deliveries -------------------

    async def populated(self, store: Storage) -> dict[str, list[int]]:
        """Four events 100 s apart, to endpoints a and b; a's first is delivered."""
        ids = {
            "evt_1": await ingest(store, "evt_1", "a", "b", at=T0),
            "evt_2": await ingest(store, "evt_2", "a", at=T0 + 100, event_type="order.created"),
            "evt_3": await ingest(store, "evt_3", "b", at=T0 + 200),
            "evt_4": await ingest(store, "evt_4", "a", at=T0 + 300),
        }
        claimed = await claim_one(store, "a", T0)
        await store.record([delivered(claimed, T0 + 1)])
        return ids

    async def test_list_deliveries_is_newest_first_up_to_limit(self, store: Storage) -> None:
        """Without a filter: every delivery, largest id first, at most `limit`."""
        ids = await self.populated(store)
        every = sorted(i for group in ids.values() for i in group)
        assert ids_of(await store.list_deliveries(DeliveryFilter(), 100)) == every[::-1]
        assert ids_of(await store.list_deliveries(DeliveryFilter(), 2)) == every[::-1][:2]

    async def test_list_deliveries_filters_by_endpoint(self, store: Storage) -> None:
        """`endpoint` keeps one endpoint's deliveries."""
        ids = await self.populated(store)
        listed = await store.list_deliveries(DeliveryFilter(endpoint="a"), 100)
        assert ids_of(listed) == [ids["evt_4"][0], ids["evt_2"][0], ids["evt_1"][0]]

    async def test_list_deliveries_filters_by_status(self, store: Storage) -> None:
        """`status` keeps the deliveries in that state."""
        ids = await self.populated(store)
        listed = await store.list_deliveries(DeliveryFilter(status=DELIVERED), 100)
        assert ids_of(listed) == [ids["evt_1"][0]]
        assert listed[0].status == DELIVERED

    async def test_list_deliveries_filters_by_event_type(self, store: Storage) -> None:
        """`event_type` keeps the deliveries of that type of event."""
        ids = await self.populated(store)
        listed = await store.list_deliveries(DeliveryFilter(event_type="order.created"), 100)
        assert ids_of(listed) == ids["evt_2"]

    async def test_list_deliveries_filters_combine(self, store: Storage) -> None:
        """Every field set narrows the list further."""
        ids = await self.populated(store)
        listed = await store.list_deliveries(
            DeliveryFilter(endpoint="b", status=PENDING, event_type="license.created"), 100)
        assert ids_of(listed) == [ids["evt_3"][0], ids["evt_1"][1]]
        assert await store.list_deliveries(
            DeliveryFilter(endpoint="b", event_type="order.created"), 100) == []

    async def test_list_deliveries_bounds_creation_time_inclusively(
            self, store: Storage) -> None:
        """`since` and `until` bound the creation time, both ends included."""
        ids = await self.populated(store)
        window = DeliveryFilter(since=T0 + 100, until=T0 + 200)
        assert ids_of(await store.list_deliveries(window, 100)) == [
            ids["evt_3"][0], ids["evt_2"][0]]
        assert ids_of(await store.list_deliveries(DeliveryFilter(since=T0 + 250), 100)) == (
            ids["evt_4"])
        assert ids_of(await store.list_deliveries(DeliveryFilter(until=T0 + 99), 100)) == (
            ids["evt_1"][::-1])
        assert await store.list_deliveries(DeliveryFilter(since=T0 + 301), 100) == []
        assert await store.list_deliveries(DeliveryFilter(until=T0 - 1), 100) == []
        assert len(await store.list_deliveries(DeliveryFilter(since=T0 - 1000), 100)) == 5

    async def test_list_deliveries_pages_by_before_id(self, store: Storage) -> None:
        """A keyset page holds only smaller ids: pages never repeat, even as events arrive."""
        ids = await self.populated(store)
        pages: list[list[int]] = []
        cursor: int | None = None
        while True:
            page = ids_of(await store.list_deliveries(DeliveryFilter(before_id=cursor), 2))
            if not page:
                break
            pages.append(page)
            cursor = page[-1]
            await ingest(store, f"evt_new_{cursor}", "a", at=T0 + 400)
        assert [len(p) for p in pages] == [2, 2, 1]
        assert [i for p in pages for i in p] == sorted(
            (i for group in ids.values() for i in group), reverse=True)

    async def test_get_delivery_returns_the_record_or_none(self, store: Storage) -> None:
        """One delivery with its state and last outcome, or None for an unknown id."""
        ids = await self.populated(store)
        record = await store.get_delivery(ids["evt_1"][0])
        assert record is not None
        assert (record.event_id, record.event_type, record.endpoint, record.status,
                record.attempts, record.created_at, record.last_status_code) == (
            "evt_1", "license.created", "a", DELIVERED, 1, T0, 200)
        assert await store.get_delivery(max(ids["evt_4"]) + 1000) is None

    async def test_get_event_returns_the_event_or_none(self, store: Storage) -> None:
        """One event with its body as sent, or None for an unknown id."""
        await self.populated(store)
        stored = await store.get_event("evt_1")
        assert stored is not None
        assert (stored.id, stored.type, stored.body, stored.received_at,
                stored.delivery_count) == ("evt_1", "license.created", BODY, T0, 2)
        assert await store.get_event("evt_missing") is None

    async def test_event_deliveries_are_one_event_s_in_creation_order(
            self, store: Storage) -> None:
        """Only that event's deliveries, in the order they were created."""
        ids = await self.populated(store)
        listed = await store.event_deliveries("evt_1")
        assert ids_of(listed) == ids["evt_1"]
        assert [d.endpoint for d in listed] == ["a", "b"]
        assert await store.event_deliveries("evt_missing") == []

    # -- endpoint_stats --------------------------------------------------------------

    async def test_endpoint_stats_of_one_endpoint_count_every_state(
            self, store: Storage) -> None:
        """Every state has a count, zero included; an unknown endpoint has no entry."""
        for i in range(4):
            await ingest(store, f"evt_{i}", "a", "b")
        ok, retry, busy = await claim_in_id_order(store, "a", 3, T0)
        await store.record([delivered(ok, T0 + 1), failing(retry, T0 + 1, T0 + 60)])
        stats = await store.endpoint_stats("a")
        assert list(stats) == ["a"]
        assert stats["a"].counts == {"pending": 1, "delivering": 1, "scheduled": 1,
                                     "delivered": 1, "failed": 0, "held": 0, "cancelled": 0}
        assert not stats["a"].paused and stats["a"].disabled_reason is None
        assert busy.endpoint == "a"
        assert await store.endpoint_stats("unknown") == {}

    async def test_endpoint_stats_of_all_include_endpoints_with_only_state_or_deliveries(
            self, store: Storage) -> None:
        """Endpoints no longer configured still show what they left."""
        await ingest(store, "evt_1", "a", "removed")
        await store.pause_endpoint("idle", T0)
        stats = await store.endpoint_stats()
        assert sorted(stats) == ["a", "idle", "removed"]
        assert stats["removed"].counts["pending"] == 1
        assert stats["idle"].paused and sum(stats["idle"].counts.values()) == 0

    async def test_endpoint_stats_of_names_count_those_only(self, store: Storage) -> None:
        """A page of the endpoint list: its endpoints' counts and state, nothing else."""
        await ingest(store, "evt_1", "a", "b", "c")
        await ingest(store, "evt_2", "a")
        await store.pause_endpoint("b", T0)
        await store.pause_endpoint("idle", T0)
        stats = await store.endpoint_stats(names=["a", "b", "idle", "unknown"])
        assert sorted(stats) == ["a", "b", "idle"]
        assert stats["a"].counts["pending"] == 2 and stats["b"].counts["held"] == 1
        assert stats["b"].paused and stats["idle"].paused and not stats["a"].paused
        assert stats == {n: s for n, s in (await store.endpoint_stats()).items()
                         if n in ("a", "b", "idle")}
        assert await store.endpoint_stats(names=[]) == {}
        many = [f"ep_{n:04d}" for n in range(1200)]  # more than one IN (...) list
        await store.ingest([event("evt_many", *many)])
        assert len(await store.endpoint_stats(names=many)) == 1200

    async def test_endpoint_states_give_each_stored_state_uncounted(
            self, store: Storage) -> None:
        """What a status is made of, one entry per endpoint with a stored state."""
        await ingest(store, "evt_1", "a", "removed")
        await store.pause_endpoint("idle", T0)
        await disable(store, "gone")
        claimed = await claim_one(store, "a")
        await store.record([failing(claimed, T0 + 1, T0 + 60)])
        await store.check_writable()  # the /readyz row is no endpoint
        states = await store.endpoint_states()
        assert sorted(states) == ["a", "gone", "idle"]  # `removed` has deliveries only
        assert states["idle"].paused and states["gone"].disabled_reason == GONE
        assert states["a"].failing_since == T0 + 1 and not states["a"].paused
        assert all(not s.counts and s.last_error is None and s.next_retry_at is None
                   for s in states.values())

    async def test_delivery_endpoints_name_every_endpoint_with_deliveries(
            self, store: Storage) -> None:
        """Each name once, however many deliveries it has; none without any."""
        assert await store.delivery_endpoints() == set()
        await ingest(store, "evt_1", "a", "removed")
        await ingest(store, "evt_2", "a", "b")
        await store.pause_endpoint("idle", T0)
        assert await store.delivery_endpoints() == {"a", "b", "removed"}

    async def test_endpoint_stats_give_the_earliest_scheduled_retry(
            self, store: Storage) -> None:
        """`next_retry_at` is the soonest scheduled retry, None without one."""
        for i in range(3):
            await ingest(store, f"evt_{i}", "a")
        assert (await store.endpoint_stats("a"))["a"].next_retry_at is None
        one, two = await claim_in_id_order(store, "a", 2, T0)
        await store.record([failing(one, T0 + 1, T0 + 90), failing(two, T0 + 1, T0 + 30)])
        assert (await store.endpoint_stats("a"))["a"].next_retry_at == T0 + 30

    async def test_endpoint_stats_give_the_last_error_while_failing(
            self, store: Storage) -> None:
        """The newest failing delivery's error; none once the endpoint succeeds again."""
        for i in range(3):
            await ingest(store, f"evt_{i}", "a")
        one, two, three = await claim_in_id_order(store, "a", 3, T0)
        await store.record([failing(one, T0 + 10, error="HTTP 500")])
        await store.record([failing(two, T0 + 20, T0 + 90, error="connection refused")])
        assert (await store.endpoint_stats("a"))["a"].last_error == "connection refused"
        await store.record([delivered(three, T0 + 30)])
        assert (await store.endpoint_stats("a"))["a"].last_error is None

    # -- pause_endpoint, resume_endpoint ---------------------------------------------

    async def test_pause_holds_the_waiting_deliveries(self, store: Storage) -> None:
        """Pending and scheduled are held and counted; in flight and finished stay."""
        ids = [(await ingest(store, f"evt_{i}", "a", "b"))[0] for i in range(4)]
        done, retry, _busy = await claim_in_id_order(store, "a", 3, T0)
        await store.record([delivered(done, T0 + 1), failing(retry, T0 + 1, T0 + 60)])
        assert await store.pause_endpoint("a", T0 + 2) == 2
        assert await statuses(store, ids) == [DELIVERED, HELD, DELIVERING, HELD]
        assert (await store.endpoint_stats("a"))["a"].paused
        assert [d.status for d in await store.event_deliveries("evt_0")] == [DELIVERED, PENDING]
        assert await store.claim("a", 5, T0 + 100, LEASE_S) == []

    async def test_resume_releases_the_held_in_their_old_order(self, store: Storage) -> None:
        """Each held delivery waits for the time it was due before; the count is returned."""
        ids = [(await ingest(store, f"evt_{i}", "a", at=T0 + i))[0] for i in range(3)]
        claimed = await claim_one(store, "a", T0 + 5)
        await store.record([failing(claimed, T0 + 6, retry_at=T0 + 50)])
        assert await store.pause_endpoint("a", T0 + 7) == 3
        assert await store.resume_endpoint("a", T0 + 20) == 3
        records = [await store.get_delivery(i) for i in ids]
        assert [(r.status, r.next_attempt_at) for r in records if r] == [
            (SCHEDULED, T0 + 50), (PENDING, T0 + 1), (PENDING, T0 + 2)]
        assert not (await store.endpoint_stats("a"))["a"].paused
        assert [c.id for c in await store.claim("a", 5, T0 + 20, LEASE_S)] == ids[1:]

    async def test_resume_lifts_a_disable_and_its_failing_streak(self, store: Storage) -> None:
        """`disable_after` counts afresh from the next failure."""
        for i in range(3):
            await ingest(store, f"evt_{i}", "a")
        first, second = await claim_in_id_order(store, "a", 2, T0)
        reason = disable_after_reason(T0 + 1, 0)
        assert await store.record([failing(first, T0 + 1, T0 + 2, disable_after_s=0)]) == {
            "a": reason}
        assert await store.resume_endpoint("a", T0 + 10) == 2
        stats = (await store.endpoint_stats("a"))["a"]
        assert (stats.disabled_reason, stats.disabled_at, stats.failing_since) == (
            None, None, None)
        assert await store.held_endpoints() == {}
        assert await store.record([failing(second, T0 + 11, T0 + 60,
                                           disable_after_s=60)]) == {}
        assert (await store.endpoint_stats("a"))["a"].failing_since == T0 + 11

    # -- recover_failed, retry_delivery ----------------------------------------------

    async def test_recover_failed_makes_failures_since_a_time_due_now(
            self, store: Storage) -> None:
        """Only the endpoint's failed deliveries last touched at or after `since`."""
        ids = [(await ingest(store, f"evt_{i}", "a", "b"))[0] for i in range(4)]
        old, new, ok, _waiting = await claim_in_id_order(store, "a", 4, T0)
        await store.record([failing(old, T0 + 10)])
        await store.record([failing(new, T0 + 20), delivered(ok, T0 + 20)])
        other = await claim_one(store, "b", T0)
        await store.record([failing(other, T0 + 20)])
        assert await store.recover_failed("a", T0 + 20, T0 + 30) == 1
        assert await statuses(store, ids) == [FAILED, SCHEDULED, DELIVERED, DELIVERING]
        record = await store.get_delivery(new.id)
        assert record is not None and record.next_attempt_at == T0 + 30
        assert await status(store, other.id) == FAILED

    async def test_recover_failed_of_a_held_endpoint_holds(self, store: Storage) -> None:
        """Failures recovered for a paused endpoint wait as held."""
        [delivery_id] = await ingest(store, "evt_1", "a")
        await store.record([failing(await claim_one(store, "a"), T0 + 1)])
        await store.pause_endpoint("a", T0 + 2)
        assert await store.recover_failed("a", T0, T0 + 3) == 1
        assert await status(store, delivery_id) == HELD

    async def test_retry_of_an_unknown_delivery_is_not_found(self, store: Storage) -> None:
        """An unknown id is `not_found`, with no previous state."""
        assert await store.retry_delivery(12345, T0) == ("not_found", None)

    async def test_retry_of_a_delivery_in_flight_changes_nothing(self, store: Storage) -> None:
        """An attempt in flight is left to finish: `in_flight`, and its result still lands."""
        [delivery_id] = await ingest(store, "evt_1", "a")
        claimed = await claim_one(store, "a")
        assert await store.retry_delivery(delivery_id, T0 + 1) == ("in_flight", DELIVERING)
        record = await store.get_delivery(delivery_id)
        assert record is not None and record.status == DELIVERING
        await store.record([delivered(claimed, T0 + 2)])
        assert await status(store, delivery_id) == DELIVERED

    async def test_retry_queues_a_delivery_due_now_and_says_what_it_was(
            self, store: Storage) -> None:
        """Attempted before: scheduled; never attempted: pending."""
        done_id, failed_id, fresh_id = [
            (await ingest(store, f"evt_{i}", "a"))[0] for i in range(3)]
        ok, dead = await claim_in_id_order(store, "a", 2, T0)
        await store.record([delivered(ok, T0 + 1), failing(dead, T0 + 1)])
        assert await store.retry_delivery(done_id, T0 + 5) == ("queued", DELIVERED)
        assert await store.retry_delivery(failed_id, T0 + 5) == ("queued", FAILED)
        assert await store.retry_delivery(fresh_id, T0 + 5) == ("queued", PENDING)
        records = [await store.get_delivery(i) for i in (done_id, failed_id, fresh_id)]
        assert [(r.status, r.next_attempt_at) for r in records if r] == [
            (SCHEDULED, T0 + 5), (SCHEDULED, T0 + 5), (PENDING, T0 + 5)]

    async def test_retry_for_a_held_endpoint_holds(self, store: Storage) -> None:
        """A retry for a paused endpoint is queued as held."""
        [delivery_id] = await ingest(store, "evt_1", "a")
        await store.record([failing(await claim_one(store, "a"), T0 + 1)])
        await store.pause_endpoint("a", T0 + 2)
        assert await store.retry_delivery(delivery_id, T0 + 3) == ("queued", FAILED)
        assert await status(store, delivery_id) == HELD

    # -- queue_stats -----------------------------------------------------------------

    async def test_queue_stats_count_the_unfinished_work(self, store: Storage) -> None:
        """Depth by (endpoint, state) for the endpoints named and any with state."""
        await ingest(store, "evt_0", "a", "p", at=T0)
        await ingest(store, "evt_1", "a", "p", "f", at=T0 + 1)
        await ingest(store, "evt_2", "a", at=T0 + 2)
        done = await claim_one(store, "a", T0 + 3)
        await store.record([delivered(done, T0 + 4)])
        await claim_one(store, "a", T0 + 5)
        await store.pause_endpoint("p", T0 + 6)
        await store.record([failing(await claim_one(store, "f", T0 + 7), T0 + 8, T0 + 90)])
        stats = await store.queue_stats(["a", "p", "empty"])
        assert set(stats.depth) == {(n, s) for n in ("a", "p", "f", "empty")
                                    for s in ("pending", "scheduled", "delivering", "held")}
        assert {k: v for k, v in stats.depth.items() if v} == {
            ("a", "delivering"): 1, ("a", "pending"): 1, ("p", "held"): 2,
            ("f", "scheduled"): 1}
        assert stats.oldest_waiting_at == {"a": T0 + 1, "f": T0 + 1}
        assert stats.failing_since == {"f": T0 + 8}

    # -- purge_finished, purge_unrouted_events ---------------------------------------

    async def test_purge_deletes_only_finished_deliveries_older_than_cutoff(
            self, store: Storage) -> None:
        """Waiting, held and in-flight deliveries stay, whatever their age."""
        ids = {key: (await ingest(store, key, endpoint))[0] for key, endpoint in (
            ("evt_ok", "a"), ("evt_dead", "a"), ("evt_busy", "a"), ("evt_recent", "a"),
            ("evt_wait", "a"), ("evt_held", "p"))}
        ok, dead, _busy, recent = await claim_in_id_order(store, "a", 4, T0)
        await store.record([delivered(ok, T0 + 10), failing(dead, T0 + 10)])
        await store.record([delivered(recent, T0 + 2000)])
        await store.pause_endpoint("p", T0 + 20)
        result = await store.purge_finished(T0 + 1000, 0, 100)
        assert (result.deliveries, result.attempts, result.events, result.done) == (
            2, 2, 2, True)
        assert result.last_id == max(ids.values())
        gone = {ids["evt_ok"], ids["evt_dead"]}
        for key, delivery_id in ids.items():
            kept = delivery_id not in gone
            assert (await store.get_delivery(delivery_id) is not None) is kept, key
            assert (await store.get_event(key) is not None) is kept, key
        assert await store.list_attempts(ids["evt_ok"]) == []
        assert len(await store.list_attempts(ids["evt_recent"])) == 1

    async def test_purge_keeps_an_event_until_its_last_delivery_goes(
            self, store: Storage) -> None:
        """An event stays while any delivery of it is left, and goes with the last one."""
        a_id, b_id = await ingest(store, "evt_1", "a", "b")
        await store.record([delivered(await claim_one(store, "a"), T0 + 1)])
        result = await store.purge_finished(T0 + 1000, 0, 100)
        assert (result.deliveries, result.events) == (1, 0)
        assert await store.get_delivery(a_id) is None
        stored = await store.get_event("evt_1")
        assert stored is not None and stored.delivery_count == 2
        assert ids_of(await store.event_deliveries("evt_1")) == [b_id]
        await store.record([delivered(await claim_one(store, "b"), T0 + 2)])
        result = await store.purge_finished(T0 + 1000, 0, 100)
        assert (result.deliveries, result.events) == (1, 1)
        assert await store.get_event("evt_1") is None

    async def test_purge_works_in_batches_from_last_id(self, store: Storage) -> None:
        """Each batch looks at up to `limit` ids after `after_id`; `done` ends the walk."""
        ids = [(await ingest(store, f"evt_{i}", "a"))[0] for i in range(5)]
        await store.record([delivered(c, T0 + 1)
                            for c in await claim_in_id_order(store, "a", 5, T0)])
        walked: list[tuple[int, int, bool]] = []
        after = 0
        while True:
            batch = await store.purge_finished(T0 + 1000, after, 2)
            walked.append((batch.deliveries, batch.last_id, batch.done))
            after = batch.last_id
            if batch.done:
                break
        assert walked == [(2, ids[1], False), (2, ids[3], False), (1, ids[4], True)]
        again = await store.purge_finished(T0 + 1000, after, 2)
        assert (again.deliveries, again.last_id, again.done) == (0, after, True)
        assert await store.list_deliveries(DeliveryFilter(), 100) == []

    async def test_purge_unrouted_deletes_old_events_without_deliveries(
            self, store: Storage) -> None:
        """Oldest first, up to `limit`; routed and recent events stay."""
        await store.ingest([event(f"evt_u{i}", at=T0 + 10 * i) for i in range(3)])
        await ingest(store, "evt_routed", "a")
        assert await store.purge_unrouted_events(T0 + 15, 1) == 1
        assert await store.get_event("evt_u0") is None
        assert await store.get_event("evt_u1") is not None
        assert await store.purge_unrouted_events(T0 + 15, 10) == 1
        assert await store.purge_unrouted_events(T0 + 15, 10) == 0
        assert await store.get_event("evt_u2") is not None
        assert await store.get_event("evt_routed") is not None

    # -- set_wakeup ------------------------------------------------------------------

    async def test_set_wakeup_reports_work_another_instance_made_due(
            self, make_store: Callable[[], Storage]) -> None:
        """Shared stores wake this relay for another's ingest; a private one has no one to."""
        woken: list[str] = []
        arrived = anyio.Event()

        def wake(endpoints: Iterable[str]) -> None:
            woken.extend(endpoints)
            arrived.set()

        listening = make_store()
        listening.set_wakeup(wake)
        await self.opened(listening)
        try:
            if self.wakes_other_instances:
                other = await self.opened(make_store())
                try:
                    await ingest(other, "evt_1", "a", "b")
                finally:
                    await other.close()
                with anyio.fail_after(10):
                    await arrived.wait()
                assert {"a", "b"} <= set(woken)
            else:
                await ingest(listening, "evt_1", "a", "b")
                await listening.check_writable()
                assert woken == []
        finally:
            await listening.close()


    # -- endpoints made through the API, and tenants ----------------------------------

    async def test_create_endpoint_once_per_name(self, store: Storage) -> None:
        assert await store.create_endpoint(stored_endpoint("a")) == "created"
        assert await store.create_endpoint(stored_endpoint("a", spec='{"other": 1}')) == "exists"
        assert [e.name for e in await store.api_endpoints()] == ["a"]
        assert await store.api_endpoint("a") == stored_endpoint("a")
        assert await store.api_endpoint("missing") is None

    async def test_create_endpoint_keeps_a_tenant_s_limit(self, store: Storage) -> None:
        for name in ("a", "b"):
            assert await store.create_endpoint(stored_endpoint(name, "acme"), 2) == "created"
        assert await store.create_endpoint(stored_endpoint("c", "acme"), 2) == "limit"
        assert await store.create_endpoint(stored_endpoint("c", "globex"), 2) == "created"
        assert await store.create_endpoint(stored_endpoint("d"), 2) == "created"  # no tenant
        assert [e.name for e in await store.api_endpoints()] == ["a", "b", "c", "d"]

    async def test_concurrent_creates_of_one_tenant_keep_its_limit(
            self, store: Storage) -> None:
        outcomes = await asyncio.gather(*(
            store.create_endpoint(stored_endpoint(f"e{n}", "acme"), 3) for n in range(8)))
        assert sorted(outcomes).count("created") == 3

    async def test_update_endpoint_replaces_its_fields(self, store: Storage) -> None:
        await store.create_endpoint(stored_endpoint("a"))
        changed = stored_endpoint("a", "acme", spec='{"url": "https://b.example"}', at=T0 + 5)
        assert await store.update_endpoint(changed)
        assert await store.api_endpoint("a") == changed
        assert not await store.update_endpoint(stored_endpoint("missing"))

    async def test_delete_endpoint_cancels_what_waits_for_it(self, store: Storage) -> None:
        await store.create_endpoint(stored_endpoint("a"))
        ids = await ingest(store, "evt_1", "a", "b")
        await ingest(store, "evt_2", "a")
        await store.pause_endpoint("a", T0)
        assert await store.delete_endpoint("a", T0 + 1) == 2
        assert await statuses(store, ids) == [DeliveryStatus.CANCELLED, PENDING]
        assert await store.api_endpoints() == []
        assert await store.delete_endpoint("a", T0 + 2) is None
        assert "a" not in await store.held_endpoints()

    async def test_a_deleted_endpoint_s_deliveries_in_flight_end_cancelled(
            self, store: Storage) -> None:
        """An attempt that ends wanting a retry, and a claim given back, never wait again."""
        await store.create_endpoint(stored_endpoint("a"))
        for key in ("evt_1", "evt_2", "evt_3"):
            await ingest(store, key, "a")
        first, second, third = await claim_in_id_order(store, "a", 3)
        assert await store.delete_endpoint("a", T0 + 1) == 0  # all three in flight
        await store.record([failing(first, T0 + 2, T0 + 60), delivered(second, T0 + 2)])
        await store.release([(third.id, third.lease_until)], T0 + 2, hold=True)
        assert await statuses(store, [first.id, second.id, third.id]) == [
            DeliveryStatus.CANCELLED, DELIVERED, DeliveryStatus.CANCELLED]
        await ingest(store, "evt_4", "a")  # routed before the delete was known
        [late] = await store.event_deliveries("evt_4")
        assert late.status == DeliveryStatus.CANCELLED

    async def test_a_name_made_again_starts_afresh(self, store: Storage) -> None:
        await store.create_endpoint(stored_endpoint("a"))
        await store.delete_endpoint("a", T0)
        assert await store.create_endpoint(stored_endpoint("a")) == "created"
        [delivery] = await ingest(store, "evt_1", "a")
        assert await status(store, delivery) == PENDING
        assert not (await store.endpoint_stats("a"))["a"].deleted

    async def test_an_event_s_tenant_is_kept_and_filters_the_log(self, store: Storage) -> None:
        await store.ingest([NewEvent("evt_1", "a.b", BODY, ("a", "b"), T0, True, "acme"),
                            NewEvent("evt_2", "a.b", BODY, ("a",), T0, True, None)])
        stored = await store.get_event("evt_1")
        assert stored is not None and stored.tenant == "acme"
        acme = await store.list_deliveries(DeliveryFilter(tenant="acme"), 10)
        assert {(d.endpoint, d.tenant) for d in acme} == {("a", "acme"), ("b", "acme")}
        both = await store.list_deliveries(DeliveryFilter(endpoint="a"), 10)
        assert [d.tenant for d in both] == [None, "acme"]

    async def test_an_event_s_source_is_kept(self, store: Storage) -> None:
        await store.ingest([
            NewEvent("evt_1", "a.b", BODY, ("a",), T0, True, "acme", "babel"),
            NewEvent("evt_2", "a.b", BODY, ("a",), T0, True),
        ])
        babel, plain = await store.get_event("evt_1"), await store.get_event("evt_2")
        assert babel is not None and (babel.source, babel.tenant) == ("babel", "acme")
        assert plain is not None and plain.source is None
        # A platform's retry is a duplicate: no second event, no second delivery.
        [again] = await store.ingest([NewEvent("evt_1", "a.b", BODY, ("a",), T0, True,
                                               None, "babel")])
        assert again.duplicate
        assert len(await store.event_deliveries("evt_1")) == 1

    # -- list_events ---------------------------------------------------------------------

    async def tenanted(self, store: Storage) -> list[str]:
        """Six events 100 s apart, of tenants acme and globex, one of none, one via babel."""
        events = [
            NewEvent("evt_1", "license.created", BODY, ("a", "b"), T0, True, "acme"),
            NewEvent("evt_2", "order.created", BODY + b" ", ("a",), T0 + 100, True, "globex"),
            NewEvent("evt_3", "license.created", BODY, (), T0 + 200, True, None),
            NewEvent("evt_4", "license.created", BODY, ("a",), T0 + 300, True, "acme", "babel"),
            NewEvent("evt_5", "order.created", BODY, ("a",), T0 + 400, True, "acme"),
            NewEvent("evt_6", "license.created", BODY, ("b",), T0 + 500, True, "globex"),
        ]
        for one in events:  # one ingest each: stored in this order on every backend
            await store.ingest([one])
        return [e.id for e in events]

    async def test_list_events_is_newest_first_with_sizes_and_no_body(
            self, store: Storage) -> None:
        every = await self.tenanted(store)
        listed = await store.list_events(EventFilter(), 100)
        assert [e.id for e in listed] == every[::-1]
        assert [e.id for e in await store.list_events(EventFilter(), 2)] == ["evt_6", "evt_5"]
        second = next(e for e in listed if e.id == "evt_2")
        assert (second.type, second.received_at, second.tenant, second.source) == (
            "order.created", T0 + 100, "globex", None)
        assert (second.size_bytes, second.delivery_count) == (len(BODY) + 1, 1)
        first = listed[-1]
        assert (first.size_bytes, first.delivery_count) == (len(BODY), 2)
        assert not hasattr(first, "body")

    async def test_list_events_filters_by_tenant_type_and_source(self, store: Storage) -> None:
        await self.tenanted(store)

        async def ids(**where: str) -> list[str]:
            return [e.id for e in await store.list_events(EventFilter(**where), 100)]

        assert await ids(tenant="acme") == ["evt_5", "evt_4", "evt_1"]
        assert await ids(tenant="globex") == ["evt_6", "evt_2"]
        assert await ids(tenant="initech") == []
        assert await ids(event_type="order.created") == ["evt_5", "evt_2"]
        assert await ids(tenant="acme", event_type="license.created") == ["evt_4", "evt_1"]
        assert await ids(source="babel") == ["evt_4"]
        assert await ids(source="") == ["evt_6", "evt_5", "evt_3", "evt_2", "evt_1"]
        assert await ids(tenant="acme", source="") == ["evt_5", "evt_1"]

    async def test_list_events_bounds_receipt_time_inclusively(self, store: Storage) -> None:
        await self.tenanted(store)

        async def ids(where: EventFilter) -> list[str]:
            return [e.id for e in await store.list_events(where, 100)]

        assert await ids(EventFilter(since=T0 + 100, until=T0 + 300)) == [
            "evt_4", "evt_3", "evt_2"]
        assert await ids(EventFilter(tenant="acme", since=T0 + 300)) == ["evt_5", "evt_4"]
        assert await ids(EventFilter(until=T0 + 99)) == ["evt_1"]
        assert await ids(EventFilter(since=T0 + 501)) == []
        assert len(await ids(EventFilter(since=T0 - 1000))) == 6

    async def test_list_events_pages_by_position(self, store: Storage) -> None:
        await self.tenanted(store)
        for where, expected in ((EventFilter(), ["evt_6", "evt_5", "evt_4", "evt_3", "evt_2",
                                                  "evt_1"]),
                                (EventFilter(tenant="acme"), ["evt_5", "evt_4", "evt_1"])):
            seen: list[str] = []
            before = None
            while True:
                page = await store.list_events(replace(where, before=before), 2)
                seen += [e.id for e in page]
                if len(page) < 2:
                    break
                before = page[-1].position
            assert seen == expected

    async def test_list_events_pages_never_repeat_or_skip_while_events_arrive(
            self, store: Storage) -> None:
        """Events stored meanwhile are newer than every page's cursor: the walk lists
        exactly what was stored when it began, each once, on one tenant and on all."""
        for n in range(40):
            await store.ingest([NewEvent(f"evt_{n:02d}", "a.b", BODY, ("a",), T0 + n, True,
                                         "acme" if n % 2 else "globex")])
        stop, arrived = asyncio.Event(), asyncio.Event()

        async def arrive() -> None:
            n = 0
            while not stop.is_set():
                await store.ingest([NewEvent(f"new_{n}", "a.b", BODY, ("a",), T0 + 100 + n,
                                             True, "acme")])
                n += 1
                arrived.set()
                await asyncio.sleep(0)

        async def walk(tenant: str | None) -> list[str]:
            seen: list[str] = []
            before = None
            while True:
                page = await store.list_events(EventFilter(tenant=tenant, before=before), 3)
                seen += [e.id for e in page]
                if len(page) < 3:
                    return seen
                before = page[-1].position
                arrived.clear()
                await arrived.wait()  # one more event stored before the next page

        arriving = asyncio.create_task(arrive())
        try:
            every, acme = await walk(None), await walk("acme")
        finally:
            stop.set()
            await arriving
        old = [f"evt_{n:02d}" for n in range(39, -1, -1)]
        assert len(every) == len(set(every)) and len(acme) == len(set(acme))
        # What arrived before a walk's first page opens it; nothing after is seen.
        assert every[-40:] == old and all(e.startswith("new_") for e in every[:-40])
        assert acme[-20:] == [e for e in old if int(e[4:]) % 2]
        assert all(e.startswith("new_") for e in acme[:-20])

    async def test_list_events_refuses_a_position_it_did_not_give(self, store: Storage) -> None:
        await self.tenanted(store)
        for before in ("not-a-position", "", "12:"):
            with pytest.raises(ValueError, match="position"):
                await store.list_events(EventFilter(before=before), 10)

    async def test_api_sources_are_created_replaced_and_deleted(self, store: Storage) -> None:
        first = StoredSource("babel", '{"name": "babel"}', "sealed-1", T0, T0)
        assert await store.save_source(first, create=True)
        assert not await store.save_source(
            StoredSource("babel", "{}", "sealed-x", T0 + 1, T0 + 1), create=True)
        assert await store.api_sources() == [first]
        replaced = StoredSource("babel", '{"name": "babel", "id_from": "header:X"}', "sealed-2",
                                T0, T0 + 5)
        assert await store.save_source(replaced, create=False)
        assert not await store.save_source(StoredSource("nope", "{}", "s", T0, T0),
                                           create=False)
        assert await store.save_source(StoredSource("a-first", "{}", "s", T0, T0), create=True)
        assert [s.name for s in await store.api_sources()] == ["a-first", "babel"]
        assert (await store.api_sources())[1] == replaced
        assert await store.delete_source("babel")
        assert not await store.delete_source("babel")
        assert [s.name for s in await store.api_sources()] == ["a-first"]

    async def test_set_endpoint_listener_hears_another_instance_s_changes(
            self, make_store: Callable[[], Storage]) -> None:
        heard: list[str] = []
        arrived = anyio.Event()

        def listener(name: str) -> None:
            heard.append(name)
            if len(heard) >= 3:
                arrived.set()

        listening = make_store()
        listening.set_endpoint_listener(listener)
        await self.opened(listening)
        try:
            if not self.wakes_other_instances:
                await listening.create_endpoint(stored_endpoint("a"))
                assert heard == []
                return
            other = await self.opened(make_store())
            try:
                await other.create_endpoint(stored_endpoint("a"))
                await other.update_endpoint(stored_endpoint("a", "acme"))
                await other.delete_endpoint("a", T0)
            finally:
                await other.close()
            with anyio.fail_after(10):
                await arrived.wait()
            assert heard == ["a", "a", "a"]
        finally:
            await listening.close()


    # -- the tenant portal's links and sessions ----------------------------------------

    async def test_a_portal_link_opens_one_session_once(self, store: Storage) -> None:
        await store.create_portal_link("L1", "acme", T0, T0 + 300, 3600)
        opened = await store.open_portal_link("L1", "S1", T0 + 10)
        assert opened == PortalSession("acme", T0 + 3610)
        assert await store.open_portal_link("L1", "S2", T0 + 11) is None  # replayed
        assert await store.portal_session("S1", T0 + 20) == opened
        assert await store.portal_session("S2", T0 + 20) is None
        assert await store.portal_session("S1", T0 + 3610) is None  # expired
        await store.create_portal_link("L2", "acme", T0, T0 + 300, 3600)
        assert await store.open_portal_link("L2", "S3", T0 + 300) is None  # link expired
        assert await store.open_portal_link("missing", "S4", T0) is None

    async def test_concurrent_uses_of_a_link_open_one_session(
            self, make_store: Callable[[], Storage]) -> None:
        first = await self.opened(make_store())
        others = [await self.opened(make_store()) for _ in range(2)] \
            if self.wakes_other_instances else []
        try:
            await first.create_portal_link("L", "acme", T0, T0 + 300, 60)
            stores = [first, *others] * 4
            opened = await asyncio.gather(*(
                s.open_portal_link("L", f"S{n}", T0 + 1) for n, s in enumerate(stores)))
            assert [o for o in opened if o is not None] == [PortalSession("acme", T0 + 61)]
        finally:
            for other in others:
                await other.close()
            await first.close()

    async def test_sign_out_and_revocation_end_sessions(self, store: Storage) -> None:
        for n, tenant in enumerate(["acme", "acme", "globex"]):
            await store.create_portal_link(f"L{n}", tenant, T0, T0 + 300, 3600)
            assert await store.open_portal_link(f"L{n}", f"S{n}", T0 + 1) is not None
        await store.create_portal_link("unused", "acme", T0, T0 + 300, 3600)
        assert await store.end_portal_sessions(T0 + 2, session_hash="S0") == 1
        assert await store.portal_session("S0", T0 + 3) is None
        assert await store.end_portal_sessions(T0 + 2, session_hash="S0") == 0
        assert await store.end_portal_sessions(T0 + 4, tenant="acme") == 2  # S1 and the link
        assert await store.portal_session("S1", T0 + 5) is None
        assert await store.open_portal_link("unused", "S9", T0 + 5) is None
        assert await store.portal_session("S2", T0 + 5) == PortalSession("globex", T0 + 3601)

    async def test_old_links_and_sessions_are_forgotten(self, store: Storage) -> None:
        await store.create_portal_link("old", "acme", T0, T0 + 300, 60)
        await store.create_portal_link("new", "acme", T0 + 2 * 86400, T0 + 2 * 86400 + 300, 60)
        assert await store.end_portal_sessions(T0 + 2 * 86400, tenant="acme") == 1  # old gone


def stored_endpoint(name: str, tenant: str | None = None, *,
                    spec: str = '{"url": "https://a.example"}',
                    at: float = T0) -> StoredEndpoint:
    return StoredEndpoint(name, tenant, spec, "v1.sealed", T0, at)
