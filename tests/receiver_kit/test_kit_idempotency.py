"""One contract, every store: memory, SQLite file, real Redis, Django database."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import FakeClock

from receiver_kit import (
    ClaimStatus,
    DuplicateEventError,
    EventInProgressError,
    IdempotencyStore,
    MemoryStore,
    SQLiteStore,
)


@dataclass
class Backend:
    """Builds stores of one kind and moves their time forward."""

    name: str
    factory: Callable[..., IdempotencyStore]
    clock: FakeClock | None
    made: list[IdempotencyStore] = field(default_factory=list)

    def make(self, **kwargs: Any) -> IdempotencyStore:
        store = self.factory(**kwargs)
        self.made.append(store)
        return store

    def advance(self, seconds: float) -> None:
        """Fake time for stores with an injectable clock; real time for Redis."""
        if self.clock is not None:
            self.clock.advance(seconds)
        else:
            time.sleep(seconds)

    def race(self, count: int, body: Callable[[int], None]) -> list[BaseException]:
        """Run `body(n)` in `count` threads released at once; returns what they raised."""
        barrier = threading.Barrier(count)
        errors: list[BaseException] = []

        def worker(n: int) -> None:
            try:
                barrier.wait()
                body(n)
            except BaseException as exc:  # pragma: no cover - reported by the caller
                errors.append(exc)
            finally:
                self._thread_done()

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        return errors

    def _thread_done(self) -> None:
        if self.name == "django":
            from django.db import connections

            connections.close_all()


@pytest.fixture(
    params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis), "django"]
)
def backend(request: pytest.FixtureRequest, tmp_path, clock: FakeClock) -> Iterator[Backend]:
    name = request.param
    if name == "memory":
        result = Backend(name, lambda **kw: MemoryStore(clock=clock, **kw), clock)
    elif name == "sqlite":
        db = tmp_path / "claims.db"
        result = Backend(name, lambda **kw: SQLiteStore(db, clock=clock, **kw), clock)
    elif name == "redis":
        from receiver_kit.idempotency.redis import RedisStore

        url = request.getfixturevalue("redis_url")
        prefix = request.getfixturevalue("redis_prefix")
        result = Backend(name, lambda **kw: RedisStore.from_url(url, prefix=prefix, **kw), None)
    else:
        request.getfixturevalue("django_db")
        from receiver_kit.contrib.django import DjangoStore

        result = Backend(name, lambda **kw: DjangoStore(clock=clock, **kw), clock)
    yield result
    for store in result.made:
        asyncio.run(store.aclose())


def new_id() -> str:
    return "evt_" + uuid.uuid4().hex


# -- the protocol --------------------------------------------------------------------


def test_first_claim_acquires_second_is_in_progress(backend):
    """The first claim acquires with a token; a concurrent one is told in_progress."""
    store = backend.make()
    event_id = new_id()
    first = store.claim(event_id)
    assert first.status is ClaimStatus.ACQUIRED
    assert first.acquired
    assert first.token
    second = store.claim(event_id)
    assert second.status is ClaimStatus.IN_PROGRESS
    assert not second.acquired
    assert second.token is None


def test_complete_makes_later_claims_duplicates(backend):
    """After complete() every later claim is a duplicate."""
    store = backend.make()
    event_id = new_id()
    claim = store.claim(event_id)
    assert store.complete(claim) is True
    assert store.claim(event_id).status is ClaimStatus.DUPLICATE
    assert store.claim(event_id).status is ClaimStatus.DUPLICATE


def test_release_lets_the_next_claim_acquire(backend):
    """After release() the next delivery processes the event (no 409 forever)."""
    store = backend.make()
    event_id = new_id()
    claim = store.claim(event_id)
    assert store.release(claim) is True
    again = store.claim(event_id)
    assert again.acquired
    assert again.token != claim.token
    assert store.release(claim) is False  # the old token no longer owns it


def test_ids_are_independent(backend):
    """Claims on different ids do not interfere."""
    store = backend.make()
    a, b = new_id(), new_id()
    assert store.claim(a).acquired
    assert store.claim(b).acquired


def test_complete_and_release_need_an_acquired_claim(backend):
    """Passing a refused claim to complete/release is a caller error."""
    store = backend.make()
    event_id = new_id()
    store.claim(event_id)
    refused = store.claim(event_id)
    with pytest.raises(ValueError, match="acquired"):
        store.complete(refused)
    with pytest.raises(ValueError, match="acquired"):
        store.release(refused)
    with pytest.raises(ValueError, match="non-empty"):
        store.claim("")


def test_lease_expiry_frees_a_dead_workers_claim(backend):
    """A claim never completed (its worker died) expires after the lease."""
    store = backend.make(lease_s=0.3, ttl_s=5)
    event_id = new_id()
    assert store.claim(event_id).acquired
    assert store.claim(event_id).status is ClaimStatus.IN_PROGRESS
    backend.advance(0.45)
    assert store.claim(event_id).acquired


def test_expired_worker_cannot_complete_or_release_the_new_claim(backend):
    """A worker whose lease expired cannot touch the claim another worker took since."""
    store = backend.make(lease_s=0.3, ttl_s=5)
    event_id = new_id()
    stale = store.claim(event_id)
    backend.advance(0.45)
    fresh = store.claim(event_id)
    assert fresh.acquired
    assert store.release(stale) is False
    assert store.complete(stale) is False
    assert store.claim(event_id).status is ClaimStatus.IN_PROGRESS  # still fresh's
    assert store.complete(fresh) is True
    assert store.claim(event_id).status is ClaimStatus.DUPLICATE


def test_complete_after_own_lease_lapsed_unclaimed_still_records(backend):
    """If the lease lapsed but nobody took the event, finishing still marks it done."""
    store = backend.make(lease_s=0.3, ttl_s=5)
    event_id = new_id()
    claim = store.claim(event_id)
    backend.advance(0.45)
    assert store.complete(claim) is True
    assert store.claim(event_id).status is ClaimStatus.DUPLICATE


def test_ttl_expiry_forgets_processed_ids(backend):
    """A processed id is a duplicate until its TTL, then it may be processed again."""
    store = backend.make(lease_s=0.3, ttl_s=0.6)
    event_id = new_id()
    store.complete(store.claim(event_id))
    backend.advance(0.3)
    assert store.claim(event_id).status is ClaimStatus.DUPLICATE
    backend.advance(0.45)
    assert store.claim(event_id).acquired


def test_default_lease_and_ttl():
    """Defaults are SPEC 6's: a 60 s lease, a 7 day TTL."""
    store = MemoryStore()
    assert (store.lease_s, store.ttl_s) == (60.0, 7 * 24 * 3600.0)


def test_default_lease_expires_after_sixty_seconds(clock):
    """With the default lease, a claim is in progress at 59 s and free at 61 s."""
    store = MemoryStore(clock=clock)
    store.claim("e")
    clock.advance(59)
    assert store.claim("e").status is ClaimStatus.IN_PROGRESS
    clock.advance(2)
    assert store.claim("e").acquired


# -- the context managers ---------------------------------------------------------------


def test_processing_completes_on_success_and_refuses_duplicates(backend):
    """processing() completes on success; a later entry raises DuplicateEventError."""
    store = backend.make()
    event_id = new_id()
    with store.processing(event_id) as claim:
        assert claim.acquired
    with pytest.raises(DuplicateEventError) as info, store.processing(event_id):
        pytest.fail("a duplicate must not enter the block")
    assert info.value.status_code == 200
    assert info.value.event_id == event_id


def test_processing_releases_on_exception_so_a_retry_processes(backend):
    """An exception mid-processing releases the claim; the next delivery processes it."""
    store = backend.make()
    event_id = new_id()
    with pytest.raises(RuntimeError), store.processing(event_id):
        raise RuntimeError("handler crashed")
    processed = []
    with store.processing(event_id):
        processed.append(event_id)
    assert processed == [event_id]


def test_processing_in_flight_raises_in_progress(backend):
    """Entering while another holder is inside raises EventInProgressError (409)."""
    store = backend.make()
    event_id = new_id()
    with (
        store.processing(event_id),
        pytest.raises(EventInProgressError) as info,
        store.processing(event_id),
    ):
        pytest.fail("must not run")
    assert info.value.status_code == 409


def test_async_api_and_aprocessing(backend):
    """The async twins follow the same protocol, and a cancelled task releases its claim."""
    store = backend.make()
    event_id = new_id()

    async def scenario() -> None:
        claim = await store.aclaim(event_id)
        assert claim.acquired
        assert (await store.aclaim(event_id)).status is ClaimStatus.IN_PROGRESS
        assert await store.arelease(claim)
        started = asyncio.Event()

        async def slow_handler() -> None:
            async with store.aprocessing(event_id):
                started.set()
                await asyncio.sleep(10)

        task = asyncio.create_task(slow_handler())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with store.aprocessing(event_id) as again:
            assert again.acquired
        assert (await store.aclaim(event_id)).status is ClaimStatus.DUPLICATE
        await store.aclose()

    asyncio.run(scenario())


# -- concurrency --------------------------------------------------------------------------


def test_fifty_threads_process_one_event_exactly_once(backend):
    """50 threads racing on one id: exactly one runs the handler, the rest are refused."""
    store = backend.make()
    event_id = new_id()
    processed: list[int] = []
    refused: list[str] = []

    def attempt(n: int) -> None:
        try:
            with store.processing(event_id):
                processed.append(n)
                time.sleep(0.05)  # hold the claim while the others arrive
        except (DuplicateEventError, EventInProgressError) as exc:
            refused.append(type(exc).__name__)

    assert backend.race(50, attempt) == []
    assert len(processed) == 1
    assert len(refused) == 49
    assert store.claim(event_id).status is ClaimStatus.DUPLICATE


def test_fifty_tasks_process_one_event_exactly_once(backend):
    """50 asyncio tasks racing on one id: exactly one runs the handler."""
    store = backend.make()
    event_id = new_id()
    processed: list[int] = []

    async def handler(n: int) -> str:
        try:
            async with store.aprocessing(event_id):
                processed.append(n)
                await asyncio.sleep(0.05)
                return "processed"
        except DuplicateEventError:
            return "duplicate"
        except EventInProgressError:
            return "in_progress"

    async def race() -> list[str]:
        results = await asyncio.gather(*(handler(n) for n in range(50)))
        await store.aclose()
        return list(results)

    results = asyncio.run(race())
    assert len(processed) == 1
    assert results.count("processed") == 1
    assert set(results) <= {"processed", "duplicate", "in_progress"}


def test_failure_then_redelivery_across_threads(backend):
    """A crash in one worker, then a concurrent redelivery burst: processed exactly once more."""
    store = backend.make()
    event_id = new_id()
    with pytest.raises(ValueError, match="boom"), store.processing(event_id):
        raise ValueError("boom")
    processed: list[int] = []

    def attempt(n: int) -> None:
        with suppress(DuplicateEventError, EventInProgressError), store.processing(event_id):
            processed.append(n)
            time.sleep(0.02)

    assert backend.race(10, attempt) == []
    assert len(processed) == 1
