"""The storage interface: everything ingest and delivery need from a database.

Kept narrow on purpose: a backend (SQLite today, PostgreSQL for scale-out) is
a handful of queries, and the rest of the relay never sees a driver type or an
SQL string. Every method is atomic. Ingest and attempt results are durable when
their coroutine returns; that is the promise behind a 202.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from relay.models import AttemptResult, ClaimedDelivery, IngestOutcome, NewEvent

__all__ = ["Storage"]


class Storage(ABC):
    """A durable queue of events and their deliveries."""

    @abstractmethod
    async def open(self) -> None:
        """Connect, apply migrations and take whatever lock the backend needs."""

    @abstractmethod
    async def close(self) -> None:
        """Finish pending writes and disconnect."""

    @abstractmethod
    async def ingest(self, events: Sequence[NewEvent]) -> list[IngestOutcome]:
        """Store events and their deliveries, all or nothing, durably.

        An event whose id is already stored is not stored again: its outcome is
        `duplicate` when the body is byte-identical, `conflict` otherwise. If any
        event of the call conflicts, nothing of the call is stored.
        Raises `StorageUnavailable` when the store cannot take writes.
        """

    @abstractmethod
    async def claim(
        self, endpoint: str, limit: int, now: float, lease_s: float, fifo: bool = False
    ) -> list[ClaimedDelivery]:
        """Lease up to `limit` due deliveries of `endpoint`, oldest due first.

        With `fifo`, only the endpoint's oldest unfinished delivery can be claimed,
        and only when no delivery of the endpoint is in flight.
        """

    @abstractmethod
    async def next_due_at(self, endpoint: str, fifo: bool = False) -> float | None:
        """When the endpoint's next waiting delivery falls due; None if there is none."""

    @abstractmethod
    async def record(self, results: Sequence[AttemptResult]) -> None:
        """Store attempts and move their deliveries to the state each result names."""

    @abstractmethod
    async def release(self, delivery_ids: Sequence[int], now: float) -> None:
        """Give back claims that were never attempted, so they are due again at once."""

    @abstractmethod
    async def recover_interrupted(self, now: float) -> int:
        """After an unclean stop, make every delivery left in flight due again.

        Only safe when this process is the store's only user; returns how many.
        """

    @abstractmethod
    async def reap_expired_leases(self, now: float) -> int:
        """Make deliveries whose lease ran out due again; returns how many."""

    @abstractmethod
    async def check_writable(self) -> None:
        """Raise `StorageUnavailable` if a write would fail now (for /readyz)."""

    @abstractmethod
    async def held_endpoints(self) -> dict[str, str]:
        """Endpoints that must not be sent to, and why (`paused` or the disable reason)."""
