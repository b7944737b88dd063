"""PostgreSQL storage: the queue that several relay processes share.

Any number of relays on any number of hosts point at one database and split
its work between them:

- **Ingest** is idempotent across relays: events go in with `INSERT ... ON
  CONFLICT DO NOTHING RETURNING id`, in id order (so two transactions never
  wait on each other's keys in opposite orders). A key that another relay
  committed meanwhile shows up as "not inserted": the round is run again
  the long way, which sees the stored body to compare. Concurrent ingests
  share transactions (`batching.GroupCommit`), since the WAL flush of a
  commit costs more than the statements in it, and a round is one call of
  `relay_ingest` (`ingest.py`).
- **Claims** lease rows with `FOR UPDATE SKIP LOCKED`, so relays never wait
  for, nor take, each other's rows; a claim is one call of the `relay_claim`
  function (0001_initial.sql), one round trip. An endpoint's claims are
  serialised by `pg_advisory_xact_lock`, which lets its limits hold across relays:
  `max_in_flight` counts the endpoint's unexpired `delivering` rows,
  `rate_limit` is a token bucket row (`endpoint_rate`) refilled and spent by
  each claim, and `ordering: fifo` claims the oldest unfinished delivery only
  while none of the endpoint's deliveries is in flight anywhere.
- **Leases**: a relay that dies leaves its claims `delivering`; when their
  `lease_until` passes, whichever relay's reaper runs first makes them due
  again. At start a relay requeues only expired leases, since the others
  may be in the middle of theirs.
- **Paused and disabled endpoints** are held for every relay: pause and
  disable take an endpoint lock exclusively, the writes that queue deliveries
  take it shared, so no write slips a waiting delivery past a pause; and a
  claim never leases deliveries of a held endpoint.
- **Wake-ups**: transactions that make work due send a NOTIFY naming the
  endpoints, and a LISTEN connection per relay wakes the matching lanes
  (`listener.WakeupListener`, which also says why recorded attempts do not).

Driver errors are wrapped once, at this boundary (`errors.wrap_exceptions`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import os
import random
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import asyncpg
import structlog

from relay.exceptions import StorageError, StorageUnavailable
from relay.models import (
    AttemptResult,
    ClaimedDelivery,
    IngestOutcome,
    NewEvent,
)
from relay.storage.base import Storage
from relay.storage.health import Health, endpoints_to_disable, latest_attempts
from relay.storage.postgres.batching import GroupCommit, IngestJob, Job, RecordJob
from relay.storage.postgres.endpoints import EndpointsMixin
from relay.storage.postgres.errors import RETRYABLE, wrap_exceptions
from relay.storage.postgres.ingest import IngestMixin, Raced
from relay.storage.postgres.listener import ENDPOINT_CHANGED, HOLD_CHANGED, WakeupListener, payloads
from relay.storage.postgres.migrate import migrate
from relay.storage.postgres.operations import OperationsMixin
from relay.storage.postgres.portal import PortalMixin
from relay.storage.queries import HELD_STATUS, RELEASED_STATUS, fifo_head_id

__all__ = ["PostgresStorage"]

log = structlog.get_logger("relay.storage")
T = TypeVar("T")

MAX_TRANSACTION_TRIES = 5
# A lane stopped by a limit another relay holds (max_in_flight, a fifo head in
# flight) claims again after this long: finished attempts do not NOTIFY.
BLOCKED_WAIT_S = 0.25
DEAF_POLL_S = 2.0  # while the LISTEN connection is down, lanes poll this often
_APPLICATION_NAME = "relay"


# A round of attempt results in one statement: the attempts, the deliveries'
# new states (held if their endpoint is paused or disabled), and the state of
# the endpoints touched, for their health. Only a row still leased is moved: if
# its lease ran out and the reaper requeued it, a late result must not
# overwrite the new claim.
_RECORD = """
WITH attempt AS (
    INSERT INTO attempts (delivery_id, attempt, started_at, duration_ms, status_code,
                          response_body, error, request_headers)
    SELECT * FROM unnest($1::int8[], $2::int4[], $3::float8[], $4::float8[], $5::int4[],
                         $6::bytea[], $7::text[], $8::text[])
), held AS (
    SELECT name, deleted FROM endpoint_state WHERE name = ANY($9::text[])
    AND (paused = 1 OR disabled_reason IS NOT NULL OR deleted = 1)
), moved AS (
    UPDATE deliveries d SET
        status = CASE WHEN u.status NOT IN ('pending', 'scheduled') THEN u.status
                      WHEN d.endpoint IN (SELECT name FROM held WHERE deleted = 1)
                      THEN 'cancelled'
                      WHEN d.endpoint IN (SELECT name FROM held) THEN 'held'
                      ELSE u.status END,
        attempts = d.attempts + u.counted, next_attempt_at = u.next_at, lease_until = NULL,
        lease_owner = NULL, updated_at = u.finished, last_attempt_at = u.started,
        last_status_code = u.code, last_error = u.error
    FROM unnest($1::int8[], $10::text[], $11::int4[], $12::float8[], $13::float8[],
                $3::float8[], $5::int4[], $7::text[])
        AS u(id, status, counted, next_at, finished, started, code, error)
    WHERE d.id = u.id AND d.status = 'delivering'
)
SELECT name, paused, disabled_reason, failing_since, last_attempt_at, last_success_at
FROM endpoint_state WHERE name = ANY($9::text[])
"""
_LOCK_SHARED = "SELECT pg_advisory_xact_lock_shared(hashtext(k)) FROM unnest($1::text[]) AS k"
_LOCK_EXCLUSIVE = "SELECT pg_advisory_xact_lock(hashtext(k)) FROM unnest($1::text[]) AS k"


class PostgresStorage(EndpointsMixin, PortalMixin, OperationsMixin, IngestMixin, Storage):
    """The scale-out backend; see the module docstring for how relays share it."""

    leases_count_as_in_flight = True  # max_in_flight holds across relays

    def __init__(self, dsn: str, *, pool_size: int = 10, timeout_s: float = 10.0) -> None:
        self.dsn = dsn
        self.pool_size = pool_size
        self.timeout_s = timeout_s
        self.schema = ""
        self.channel = ""
        # Written on every lease, so an operator (and the reaper's note) can tell
        # which relay held a delivery.
        self.instance = f"{socket.gethostname()}:{os.getpid()}"
        self._pool: asyncpg.Pool | None = None
        # Commits are cheap to run side by side on PostgreSQL; leave most of the
        # pool to claims and reads.
        rounds = max(1, pool_size // 4)
        self._ingests = GroupCommit(lambda jobs: self._run_round(jobs), rounds, "pg-ingest")
        self._records = GroupCommit(lambda jobs: self._run_round(jobs), rounds, "pg-record")
        self._listener: WakeupListener | None = None
        self._wakeup: Callable[[Iterable[str]], None] | None = None
        self._endpoint_changed: Callable[[str], None] | None = None
        self._holds_changed: Callable[[Sequence[str] | None], None] | None = None
        self._blocked_until: dict[str, float] = {}  # endpoint -> when a limit may allow a claim
        self._known: set[str] = set()  # endpoints this relay's lanes asked about
        self._notified_at: dict[str, float] = {}  # endpoint -> last ingest NOTIFY (monotonic)

    # -- lifecycle ---------------------------------------------------------------------

    def set_wakeup(self, callback: Callable[[Iterable[str]], None]) -> None:
        self._wakeup = callback

    def set_endpoint_listener(self, callback: Callable[[str], None]) -> None:
        self._endpoint_changed = callback

    def set_hold_listener(self, callback: Callable[[Sequence[str] | None], None]) -> None:
        self._holds_changed = callback

    async def open(self) -> None:
        settings = {"application_name": _APPLICATION_NAME}
        with wrap_exceptions():
            conn = await asyncpg.connect(self.dsn, timeout=self.timeout_s,
                                         server_settings=settings)
            try:
                schema = await conn.fetchval("SELECT current_schema()")
                if schema is None:
                    raise StorageError(
                        "PostgreSQL has no schema to create the relay's tables in: the "
                        "search_path names none that exists (CREATE SCHEMA it first)")
                self.schema = str(schema)
                await migrate(conn, self.schema)
            finally:
                await conn.close()
            self._pool = await asyncpg.create_pool(
                self.dsn, min_size=min(2, self.pool_size), max_size=self.pool_size,
                timeout=self.timeout_s, command_timeout=self.timeout_s,
                server_settings=settings, reset=_keep_session,
            )
        self.channel = channel_name(self.schema)
        self._ingests.start()
        self._records.start()
        self._listener = WakeupListener(
            lambda: asyncpg.connect(self.dsn, timeout=self.timeout_s, server_settings=settings),
            self.channel, self._notified, self._reconnected,
        )
        self._listener.start()

    async def close(self) -> None:
        await self._ingests.close()
        await self._records.close()
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), self.timeout_s)
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                pool.terminate()

    def _notified(self, names: Iterable[str]) -> None:
        """A notification: due endpoints, `@name` API endpoint, `!name` hold, `^name` source."""
        names = self._sources_heard(names)
        due, holds = [], []
        for name in names:
            if name.startswith(HOLD_CHANGED):
                holds.append(name[len(HOLD_CHANGED):])
            elif not name.startswith(ENDPOINT_CHANGED):
                due.append(name)
            elif self._endpoint_changed is not None:
                self._endpoint_changed(name[len(ENDPOINT_CHANGED):])
        if holds and self._holds_changed is not None:
            self._holds_changed(holds)
        if due and self._wakeup is not None:
            self._wakeup(due)

    def _reconnected(self) -> None:
        """Back after an outage: whatever was announced meanwhile is lost, so re-read it all."""
        if self._holds_changed is not None:
            self._holds_changed(None)
        self._sources_heard(None)
        self._notified(sorted(self._known))

    @property
    def listening(self) -> bool:
        """True while the LISTEN connection is up (else lanes fall back to polling)."""
        return self._listener is not None and self._listener.connected

    # -- connections and transactions --------------------------------------------------

    def _require_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StorageUnavailable("the store is closed")
        return self._pool

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        """A read on any pooled connection, driver errors wrapped."""
        with wrap_exceptions():
            async with self._connection() as conn:
                return list(await conn.fetch(sql, *args))

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; one whose protocol state a lost server left broken is
        closed instead of going back to the pool, where every later use would fail."""
        async with self._require_pool().acquire(timeout=self.timeout_s) as conn:
            try:
                yield conn
            except asyncpg.InternalClientError:
                conn.terminate()
                raise

    async def _call(self, sql: str, *args: Any) -> list[Any]:
        """One statement in its own transaction, run again if it lost a race (deadlock)."""
        with wrap_exceptions():
            for attempt in itertools.count(1):
                try:
                    async with self._connection() as conn:
                        return list(await conn.fetch(sql, *args))
                except RETRYABLE:
                    if attempt >= MAX_TRANSACTION_TRIES:
                        raise
                    await asyncio.sleep(random.uniform(0, 0.01 * attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _write(self, fn: Callable[[asyncpg.Connection], Awaitable[T]], *,
                     durable: bool = True) -> T:
        """Run `fn` in a transaction; run it again if it lost a race with another relay.

        `durable=False` skips the wait for the WAL flush: for a claim or a
        release, losing the commit in a database crash only means the delivery
        is claimed again, which at-least-once already allows.
        """
        with wrap_exceptions():
            for attempt in itertools.count(1):
                try:
                    async with self._connection() as conn, conn.transaction():
                        if not durable:
                            await conn.execute("SET LOCAL synchronous_commit = off")
                        return await fn(conn)
                except (*RETRYABLE, Raced):
                    if attempt >= MAX_TRANSACTION_TRIES:
                        raise StorageUnavailable(
                            "the transaction kept conflicting with other relays") from None
                    await asyncio.sleep(random.uniform(0, 0.01 * attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _notify(self, conn: asyncpg.Connection, endpoints: Iterable[str]) -> None:
        """Tell every relay (at commit) that these endpoints have work due."""
        for payload in payloads(endpoints):
            await conn.execute("SELECT pg_notify($1, $2)", self.channel, payload)

    @staticmethod
    async def _held_names(conn: asyncpg.Connection) -> set[str]:
        rows = await conn.fetch(
            "SELECT name FROM endpoint_state WHERE paused = 1 OR disabled_reason IS NOT NULL")
        return {row[0] for row in rows}

    # -- group commit ------------------------------------------------------------------

    async def _run_round(self, jobs: list[Job]) -> None:
        """Write every job of one round in one transaction and settle their futures."""
        ingests = [j for j in jobs if isinstance(j, IngestJob)]
        records = [j for j in jobs if isinstance(j, RecordJob)]
        to_disable: dict[str, tuple[str, float]] = {}
        notices: set[str] = set()  # endpoints this round's ingest NOTIFYs

        if ingests and not records:
            try:
                fast = await self._ingest_in_one_call(ingests, notices)
            except Exception as exc:
                self._fail_round(jobs, exc)
                return
            if fast is not None:
                self._settle_ingests(ingests, fast, notices)
                return

        async def run(conn: asyncpg.Connection) -> list[tuple[Job, Any]]:
            to_disable.clear()  # a retried transaction decides afresh
            notices.clear()
            results: list[tuple[Job, Any]] = []
            if ingests:
                outcomes = await self._apply_ingests(conn, ingests, notices)
                results.extend(zip(ingests, outcomes, strict=True))
            if records:
                to_disable.update(await self._apply_records(
                    conn, [r for job in records for r in job.results]))
            return results

        try:
            settled = await self._write(run)
        except Exception as exc:
            self._fail_round(jobs, exc)
            return
        self._mark_notified(notices)
        if records:
            disabled: dict[str, str] = {}
            if to_disable:
                # The attempts are stored: a failure here must not make the worker
                # store them again. The endpoint's next failure disables it.
                try:
                    disabled = await self._disable(to_disable)
                except StorageError as exc:
                    log.warning("endpoint_disable_failed", endpoints=sorted(to_disable),
                                error=str(exc))
            settled.extend((job, disabled) for job in records)
        for job, value in settled:
            if not job.future.done():
                job.future.set_result(value)

    @staticmethod
    def _fail_round(jobs: list[Job], exc: Exception) -> None:
        if isinstance(exc, StorageError):
            log.warning("storage_write_failed", error=str(exc), jobs=len(jobs))
        else:
            log.exception("storage_round_crashed", jobs=len(jobs))
        for job in jobs:
            if not job.future.done():
                job.future.set_exception(exc)

    def _mark_notified(self, notices: set[str]) -> None:
        sent_at = time.monotonic()
        for name in notices:
            self._notified_at[name] = sent_at

    def _settle_ingests(self, jobs: list[IngestJob], outcomes: list[list[IngestOutcome]],
                        notices: set[str]) -> None:
        self._mark_notified(notices)
        for job, outcome in zip(jobs, outcomes, strict=True):
            if not job.future.done():
                job.future.set_result(outcome)

    async def _lock_endpoints(self, conn: asyncpg.Connection, names: Iterable[str], *,
                              exclusive: bool, allocating: bool = False) -> None:
        """Take the endpoints' state locks (in name order, so never a deadlock).

        Writes that queue deliveries (ingest, recorded attempts) take them
        shared, so they never wait for each other; holding an endpoint
        (pause, disable) takes them exclusive, so it waits for those writes
        to commit and its UPDATE to `held` catches every row they left
        waiting, and writes after it see the endpoint held.

        `allocating` (a write that will insert deliveries) also takes the
        delivery-id lock shared, in the same statement: see
        `committed_delivery_ids`, which takes it exclusive.
        """
        keys = sorted(f"relay:endpoint:{self.schema}:{name}" for name in set(names))
        if keys and allocating:
            keys.append(self._id_lock_key)
        if keys:
            await conn.execute(_LOCK_EXCLUSIVE if exclusive else _LOCK_SHARED, keys)

    async def _apply_records(
        self, conn: asyncpg.Connection, results: Sequence[AttemptResult]
    ) -> dict[str, tuple[str, float]]:
        """Store attempts and move their deliveries; returns the endpoints to disable.

        Disabling is left to `_disable`, after this transaction commits: it
        must wait for every other relay's round writing to the endpoint, and
        this one holds the shared lock it would wait for.
        """
        names = sorted({r.endpoint for r in results})
        await self._lock_endpoints(conn, names, exclusive=False)
        ordered = sorted(results, key=lambda r: r.delivery_id)
        rows = await conn.fetch(
            _RECORD, [r.delivery_id for r in ordered], [r.attempt for r in ordered],
            [r.started_at for r in ordered], [r.duration_ms for r in ordered],
            [r.status_code for r in ordered], [r.response_body for r in ordered],
            [r.error for r in ordered], [json.dumps(r.request_headers) for r in ordered],
            names, [r.new_status.value for r in ordered], [1 if r.counts else 0 for r in ordered],
            [r.next_attempt_at for r in ordered],
            [r.started_at + r.duration_ms / 1000 for r in ordered],
        )
        states = {row[0]: row for row in rows}
        latest = latest_attempts(results)
        health: dict[str, Health] = {}
        for attempt in latest:
            name = attempt.endpoint
            row = states.get(name)
            if row is not None and not _health_changed(row, attempt.ok, attempt.at):
                # Every relay's rounds for this endpoint would queue on this row's
                # lock, so it is written only when the health changes or its
                # times are a second old.
                health[name] = Health(row[3], row[2])
                continue
            row = await conn.fetchrow(
                "INSERT INTO endpoint_state (name, last_attempt_at, last_success_at, "
                "failing_since) VALUES ($1, $2::float8, CASE WHEN $3::boolean THEN $2 END, "
                "CASE WHEN $3 THEN NULL ELSE $2 END) "
                "ON CONFLICT (name) DO UPDATE SET "
                "last_attempt_at = GREATEST(endpoint_state.last_attempt_at, $2), "
                "last_success_at = CASE WHEN $3 THEN GREATEST("
                "endpoint_state.last_success_at, $2) ELSE endpoint_state.last_success_at "
                "END, failing_since = CASE WHEN $3 THEN NULL "
                "ELSE COALESCE(endpoint_state.failing_since, $2) END "
                "RETURNING failing_since, disabled_reason",
                name, attempt.at, attempt.ok,
            )
            health[name] = Health(row[0], row[1])
        return endpoints_to_disable(results, latest, health)

    async def _disable(self, disable: dict[str, tuple[str, float]]) -> dict[str, str]:
        """Disable endpoints and hold their waiting deliveries; returns those disabled."""

        async def run(conn: asyncpg.Connection) -> dict[str, str]:
            await self._lock_endpoints(conn, disable, exclusive=True)
            done: dict[str, str] = {}
            for name in sorted(disable):
                reason, now = disable[name]
                await conn.execute(
                    "INSERT INTO endpoint_state (name, disabled_reason, disabled_at) "
                    "VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE "
                    "SET disabled_reason = $2, disabled_at = $3", name, reason, now)
                await conn.execute(
                    "UPDATE deliveries SET status = 'held', updated_at = $1 "
                    "WHERE endpoint = $2 AND status IN ('pending', 'scheduled')", now, name)
                done[name] = reason
            await self._notify(conn, [HOLD_CHANGED + name for name in done])
            return done

        return await self._write(run)

    # -- the queue -----------------------------------------------------------------------

    async def ingest(self, events: Sequence[NewEvent]) -> list[IngestOutcome]:
        loop = asyncio.get_running_loop()
        outcome: list[IngestOutcome] = await self._ingests.submit(
            IngestJob(loop.create_future(), events))
        return outcome

    async def record(self, results: Sequence[AttemptResult]) -> dict[str, str]:
        if not results:
            return {}
        loop = asyncio.get_running_loop()
        disabled: dict[str, str] = await self._records.submit(
            RecordJob(loop.create_future(), results))
        return disabled

    async def claim(
        self, endpoint: str, limit: int, now: float, lease_s: float, fifo: bool = False,
        *, max_in_flight: int | None = None, rate_per_s: float | None = None,
    ) -> list[ClaimedDelivery]:
        # The whole claim, limits included, is one call of `relay_claim` (see
        # 0001_initial.sql): one round trip, one implicit transaction.
        self._known.add(endpoint)
        lease_until = now + lease_s
        rows = await self._call(
            "SELECT * FROM relay_claim($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            endpoint, limit, now, lease_until, fifo, max_in_flight, rate_per_s,
            f"relay:claim:{self.schema}:{endpoint}", BLOCKED_WAIT_S, self.instance,
        )
        if rows and rows[0][0] is None:
            self._blocked_until[endpoint] = float(rows[0][6])
            return []
        self._blocked_until.pop(endpoint, None)
        rows.sort(key=lambda row: (row[5], row[0]))
        return [ClaimedDelivery(row[0], row[1], row[2], endpoint, bytes(row[3]), row[4] + 1,
                                lease_until, row[7]) for row in rows]

    async def next_due_at(self, endpoint: str, fifo: bool = False) -> float | None:
        self._known.add(endpoint)
        now = time.time()
        due: float | None
        if fifo:
            rows = await self._fetch(
                "SELECT status, next_attempt_at FROM deliveries "  # noqa: S608
                f"WHERE id = {fifo_head_id('$1')}", endpoint)
            due = None if not rows or rows[0][0] == "delivering" else float(rows[0][1])
        else:
            rows = await self._fetch(
                "SELECT min(next_attempt_at) FROM deliveries WHERE endpoint = $1 "
                "AND status IN ('pending', 'scheduled')", endpoint)
            due = None if not rows or rows[0][0] is None else float(rows[0][0])
        blocked = self._blocked_until.get(endpoint)
        if due is not None and blocked is not None and blocked > now:
            # Due, but the last claim met a limit shared with other relays: wait
            # for their NOTIFY (or the next token) instead of claiming in a loop.
            due = max(due, blocked)
        if not self.listening:
            due = now + DEAF_POLL_S if due is None else min(due, now + DEAF_POLL_S)
        return due

    async def release(self, claims: Sequence[tuple[int, float]], now: float, *,
                      hold: bool = False) -> None:
        if not claims:
            return
        status = HELD_STATUS if hold else RELEASED_STATUS

        async def run(conn: asyncpg.Connection) -> None:
            rows = await conn.fetch(
                f"UPDATE deliveries SET status = {status}, lease_until = NULL, "  # noqa: S608
                "lease_owner = NULL, next_attempt_at = $1, updated_at = $1 "
                "FROM unnest($2::int8[], $3::float8[]) AS c(id, lease) "
                "WHERE deliveries.id = c.id AND deliveries.status = 'delivering' "
                "AND deliveries.lease_until = c.lease RETURNING deliveries.endpoint",
                now, [c[0] for c in claims], [c[1] for c in claims])
            await self._notify(conn, {row[0] for row in rows})

        await self._write(run, durable=False)

    async def recover_interrupted(self, now: float) -> int:
        # Other relays may be mid-attempt on their leases: only expired ones are
        # this process's business (its own, if it crashed, expire like any other).
        return await self._requeue_expired(now, "interrupted: the attempt's lease expired")

    async def reap_expired_leases(self, now: float) -> int:
        return await self._requeue_expired(now, "interrupted: the attempt's lease expired")

    async def _requeue_expired(self, now: float, error: str) -> int:
        """Log each lost attempt (not counted against the schedule) and make it due."""

        async def run(conn: asyncpg.Connection) -> int:
            rows = await conn.fetch(
                "SELECT id, attempts, endpoint, lease_owner FROM deliveries "
                "WHERE status = 'delivering' AND lease_until < $1 ORDER BY id "
                "FOR UPDATE SKIP LOCKED", now)
            if not rows:
                return 0
            ids = [row[0] for row in rows]
            await conn.execute(
                "INSERT INTO attempts (delivery_id, attempt, started_at, error) "
                "SELECT id, n, $3, e FROM unnest($1::int8[], $2::int4[], $4::text[]) "
                "AS u(id, n, e)",
                ids, [row[1] + 1 for row in rows], now,
                [f"{error} (held by {row[3]})" if row[3] else error for row in rows])
            await conn.execute(
                f"UPDATE deliveries SET status = {RELEASED_STATUS}, lease_until = NULL, "  # noqa: S608
                "lease_owner = NULL, next_attempt_at = $1, updated_at = $1 "
                "WHERE id = ANY($2::int8[])", now, ids)
            await self._notify(conn, {row[2] for row in rows})
            return len(rows)

        return await self._write(run)

    async def sync_endpoints(self, active: Sequence[str], now: float,
                             only: Sequence[str] | None = None) -> None:
        async def run(conn: asyncpg.Connection) -> None:
            on = list(active)
            if only is None:
                await conn.execute(
                    "UPDATE deliveries SET status = 'held', updated_at = $1 "
                    "WHERE status IN ('pending', 'scheduled') AND endpoint <> ALL($2::text[])",
                    now, on)
            else:
                await conn.execute(
                    "UPDATE deliveries SET status = 'held', updated_at = $1 "
                    "WHERE status IN ('pending', 'scheduled') AND endpoint = ANY($2::text[])",
                    now, [name for name in only if name not in set(on)])
                on = [name for name in only if name in set(on)]
            held = await self._held_names(conn)
            released = [name for name in on if name not in held]
            rows = await conn.fetch(
                "UPDATE deliveries SET status = CASE WHEN attempts > 0 THEN 'scheduled' "
                "ELSE 'pending' END, updated_at = $1 WHERE endpoint = ANY($2::text[]) "
                "AND status = 'held' RETURNING endpoint", now, released)
            await self._notify(conn, {row[0] for row in rows})

        await self._write(run)

    async def held_endpoints(self) -> dict[str, str]:
        rows = await self._fetch(
            "SELECT name, paused, disabled_reason FROM endpoint_state "
            "WHERE paused = 1 OR disabled_reason IS NOT NULL")
        return {row[0]: row[2] or "paused" for row in rows}

    async def check_writable(self) -> None:
        async def run(conn: asyncpg.Connection) -> None:
            await conn.execute(
                "INSERT INTO endpoint_state (name) VALUES ('__readyz__') "
                "ON CONFLICT (name) DO NOTHING")
            await conn.execute("DELETE FROM endpoint_state WHERE name = '__readyz__'")

        await self._write(run)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset on release, a no-op (asyncpg still rolls back an open transaction).

    asyncpg's default resets session state with a round trip on every release;
    this storage never changes session state (its locks and settings are
    transaction-scoped, LISTEN has its own connection), and a claim pays for
    each round trip.
    """


HEALTH_TOUCH_S = 1.0  # endpoint_state times are kept to this precision under load


def _health_changed(row: Any, ok: bool, at: float) -> bool:
    """Whether an attempt at `at` must be written to the endpoint's state row."""
    if row is None:
        return True
    failing_since, last_attempt_at, last_success_at = row[3], row[4], row[5]
    if ok != (failing_since is None):  # starts or ends a failing streak
        return True
    if last_attempt_at is None or at - last_attempt_at >= HEALTH_TOUCH_S:
        return True
    return ok and (last_success_at is None or at - last_success_at >= HEALTH_TOUCH_S)


def channel_name(schema: str) -> str:
    """The NOTIFY channel of one relay deployment: one per schema, within 63 bytes."""
    if schema == "public":
        return "relay_wakeup"
    if len(schema) <= 40 and schema.replace("_", "").isalnum() and schema.isascii():
        return f"relay_wakeup_{schema}"
    return "relay_wakeup_" + hashlib.sha1(schema.encode()).hexdigest()[:16]  # noqa: S324
