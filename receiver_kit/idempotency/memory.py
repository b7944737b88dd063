"""An idempotency store in process memory.

For tests, development and single-process receivers: claims are shared by
the threads and tasks of one process only, and forgotten on restart. Use
`SQLiteStore` for several processes on one host, `RedisStore` or the Django
store for several hosts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from receiver_kit.idempotency.base import (
    DEFAULT_LEASE_S,
    DEFAULT_TTL_S,
    ClaimResult,
    ClaimStatus,
    IdempotencyStore,
    check_claim,
    check_event_id,
    new_token,
)

__all__ = ["MemoryStore"]

_PURGE_EVERY = 1024


@dataclass(slots=True)
class _Entry:
    done: bool
    token: str
    expires_at: float


class MemoryStore(IdempotencyStore):
    """Thread-safe, in-memory claims; `clock` (monotonic by default) is injectable.

    The async methods run inline: every operation is a few dictionary
    accesses under a lock, far cheaper than a hop to a worker thread.
    """

    def __init__(
        self,
        *,
        lease_s: float = DEFAULT_LEASE_S,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(lease_s=lease_s, ttl_s=ttl_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._ops = 0

    def __repr__(self) -> str:
        return f"MemoryStore(lease_s={self.lease_s:g}, ttl_s={self.ttl_s:g})"

    def __len__(self) -> int:
        """The number of live and not-yet-purged keys."""
        return len(self._entries)

    def claim(self, event_id: str) -> ClaimResult:
        check_event_id(event_id)
        with self._lock:
            now = self._clock()
            self._ops += 1
            if self._ops % _PURGE_EVERY == 0:
                self._purge(now)
            entry = self._entries.get(event_id)
            if entry is not None and entry.expires_at > now:
                status = ClaimStatus.DUPLICATE if entry.done else ClaimStatus.IN_PROGRESS
                return ClaimResult(event_id, status)
            token = new_token()
            self._entries[event_id] = _Entry(False, token, now + self.lease_s)
            return ClaimResult(event_id, ClaimStatus.ACQUIRED, token)

    def complete(self, claim: ClaimResult) -> bool:
        token = check_claim(claim)
        with self._lock:
            now = self._clock()
            entry = self._entries.get(claim.event_id)
            if entry is not None and entry.expires_at > now and entry.token != token:
                return False
            if entry is not None and entry.done and entry.token == token:
                return True
            self._entries[claim.event_id] = _Entry(True, token, now + self.ttl_s)
            return True

    def release(self, claim: ClaimResult) -> bool:
        token = check_claim(claim)
        with self._lock:
            entry = self._entries.get(claim.event_id)
            if entry is None or entry.done or entry.token != token:
                return False
            del self._entries[claim.event_id]
            return True

    async def aclaim(self, event_id: str) -> ClaimResult:
        return self.claim(event_id)

    async def acomplete(self, claim: ClaimResult) -> bool:
        return self.complete(claim)

    async def arelease(self, claim: ClaimResult) -> bool:
        return self.release(claim)

    def purge(self) -> int:
        """Drop expired keys now; returns how many. Claims also purge periodically."""
        with self._lock:
            return self._purge(self._clock())

    def _purge(self, now: float) -> int:
        expired = [key for key, entry in self._entries.items() if entry.expires_at <= now]
        for key in expired:
            del self._entries[key]
        return len(expired)
