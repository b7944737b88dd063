"""The table of the SQLite writer's operations, shared by both ends of the pipe.

The relay asks the writer process for a write by the name of an `Op` of this
module (`CLAIM`, `INGEST`, ...), which is also the `WriteOps` method that
makes it: `SQLiteStorage._write(CLAIM, endpoint, ...)` is type-checked
against `WriteOps.claim`, and returns what it returns. Only the op's name and
its arguments cross the pipe (plain values, which pickle at C speed).

Each op says whether it must be durable: ingest and operator actions must
survive a power loss once their call returns; claims, releases and attempt
results may be lost with the last commits, which only means attempting a
delivery again, as at-least-once allows.

`INGEST` and `RECORD` are `Batched`: the jobs of a whole round run as one
call, so a round costs one INSERT per table for every event queued and one
UPDATE statement for every attempt, whatever the number of jobs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

from relay.storage.sqlite.writes import WriteOps

__all__ = [
    "BATCHED",
    "CHECK_WRITABLE",
    "CLAIM",
    "CREATE_ENDPOINT",
    "CREATE_PORTAL_LINK",
    "DELETE_ENDPOINT",
    "END_PORTAL_SESSIONS",
    "INGEST",
    "OPEN_PORTAL_LINK",
    "OPS",
    "PAUSE_ENDPOINT",
    "PURGE_FINISHED",
    "PURGE_UNROUTED_EVENTS",
    "REAP_EXPIRED_LEASES",
    "RECORD",
    "RECOVER_FAILED",
    "RECOVER_INTERRUPTED",
    "RELEASE",
    "RESUME_ENDPOINT",
    "RETRY_DELIVERY",
    "SINGLES",
    "SYNC_ENDPOINTS",
    "UPDATE_ENDPOINT",
    "Batched",
    "Op",
    "Single",
]

P = ParamSpec("P")
R = TypeVar("R")
A = TypeVar("A")


class Op(Generic[P, R]):
    """A write the relay can ask of the writer: called with P, it answers R."""

    __slots__ = ("durable", "name")

    def __init__(self, name: str, durable: bool) -> None:
        self.name = name  # what crosses the pipe
        self.durable = durable

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class Single(Op[P, R]):
    """A write made on its own, in the order it arrived."""

    __slots__ = ("run",)

    def __init__(self, run: Callable[Concatenate[WriteOps, P], R], *, durable: bool) -> None:
        super().__init__(run.__name__, durable)
        self.run = run


class Batched(Op[[A], R]):
    """A write whose jobs of one round are made together: a list of their arguments
    in, one answer per job out."""

    __slots__ = ("run_all",)

    def __init__(self, run_all: Callable[[WriteOps, list[A]], list[R]], *,
                 durable: bool) -> None:
        super().__init__(run_all.__name__, durable)
        self.run_all = run_all


# -- the table ---------------------------------------------------------------------------

INGEST = Batched(WriteOps.ingest, durable=True)
RECORD = Batched(WriteOps.record, durable=False)
CLAIM = Single(WriteOps.claim, durable=False)
RELEASE = Single(WriteOps.release, durable=False)
RECOVER_INTERRUPTED = Single(WriteOps.recover_interrupted, durable=True)
REAP_EXPIRED_LEASES = Single(WriteOps.reap_expired_leases, durable=False)
SYNC_ENDPOINTS = Single(WriteOps.sync_endpoints, durable=True)
CHECK_WRITABLE = Single(WriteOps.check_writable, durable=True)
PAUSE_ENDPOINT = Single(WriteOps.pause_endpoint, durable=True)
RESUME_ENDPOINT = Single(WriteOps.resume_endpoint, durable=True)
RECOVER_FAILED = Single(WriteOps.recover_failed, durable=True)
RETRY_DELIVERY = Single(WriteOps.retry_delivery, durable=True)
PURGE_FINISHED = Single(WriteOps.purge_finished, durable=True)
PURGE_UNROUTED_EVENTS = Single(WriteOps.purge_unrouted_events, durable=True)
CREATE_ENDPOINT = Single(WriteOps.create_endpoint, durable=True)
UPDATE_ENDPOINT = Single(WriteOps.update_endpoint, durable=True)
DELETE_ENDPOINT = Single(WriteOps.delete_endpoint, durable=True)
CREATE_PORTAL_LINK = Single(WriteOps.create_portal_link, durable=True)
OPEN_PORTAL_LINK = Single(WriteOps.open_portal_link, durable=True)
END_PORTAL_SESSIONS = Single(WriteOps.end_portal_sessions, durable=True)
SAVE_SOURCE = Single(WriteOps.save_source, durable=True)
DELETE_SOURCE = Single(WriteOps.delete_source, durable=True)

# Made first in each round, in this order, before the single writes.
BATCHED: tuple[Batched[Any, Any], ...] = (INGEST, RECORD)
# The writer finds each job's op in these by the name that crossed the pipe.
SINGLES: dict[str, Single[..., Any]] = {op.name: op for op in (
    CLAIM, RELEASE, RECOVER_INTERRUPTED, REAP_EXPIRED_LEASES, SYNC_ENDPOINTS, CHECK_WRITABLE,
    PAUSE_ENDPOINT, RESUME_ENDPOINT, RECOVER_FAILED, RETRY_DELIVERY, PURGE_FINISHED,
    PURGE_UNROUTED_EVENTS, CREATE_ENDPOINT, UPDATE_ENDPOINT, DELETE_ENDPOINT,
    CREATE_PORTAL_LINK, OPEN_PORTAL_LINK, END_PORTAL_SESSIONS, SAVE_SOURCE, DELETE_SOURCE,
)}
OPS: dict[str, Single[..., Any] | Batched[Any, Any]] = {
    **{op.name: op for op in BATCHED}, **SINGLES,
}
