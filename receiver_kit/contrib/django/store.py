"""`DjangoStore`: claims in the Django database, shared by every host on it.

Needs ``"receiver_kit.contrib.django"`` in ``INSTALLED_APPS`` and
``manage.py migrate``. Each step is one atomic statement, so it works the
same on PostgreSQL, MySQL and SQLite and needs no long transaction:

* the first claim is an ``INSERT``: the primary key lets exactly one worker win;
* taking over an expired claim is ``UPDATE ... WHERE expires_at <= now``:
  the database re-checks the condition under the row lock, so one wins;
* `complete`/`release` are ``UPDATE``/``DELETE ... WHERE token = ours``.

On SQLite, give the database a busy timeout (``OPTIONS: {"timeout": 20}``)
so concurrent writers wait for the lock instead of failing. Do not run the
decorated view inside ``ATOMIC_REQUESTS``: a claim must be visible to other
workers while the handler runs, not only when its transaction commits.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.db import DatabaseError, IntegrityError, transaction  # type: ignore[import-untyped]

from receiver_kit.exceptions import StoreError
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

__all__ = ["DjangoStore"]

_MAX_KEY = 255
_ATTEMPTS = 5
_PURGE_EVERY = 512


def _key(event_id: str) -> str:
    """The primary key for an id; ids longer than the column are hashed."""
    if len(event_id) <= _MAX_KEY:
        return event_id
    return "sha256:" + hashlib.sha256(event_id.encode("utf-8", "surrogatepass")).hexdigest()


class DjangoStore(IdempotencyStore):
    """Claims in the ``receiver_kit_idempotency_key`` table of database `using`.

    The async methods run the ORM through ``sync_to_async`` (thread
    sensitive), as Django requires for database access from async views.
    """

    def __init__(
        self,
        *,
        using: str = "default",
        lease_s: float = DEFAULT_LEASE_S,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(lease_s=lease_s, ttl_s=ttl_s)
        self.using = using
        self._clock = clock
        self._claims = 0

    def __repr__(self) -> str:
        return f"DjangoStore(using={self.using!r}, lease_s={self.lease_s:g}, ttl_s={self.ttl_s:g})"

    def _objects(self) -> Any:
        from receiver_kit.contrib.django.models import IdempotencyKey

        return IdempotencyKey.objects.using(self.using)

    def _create(self, key: str, state: str, token: str, expires_at: float) -> bool:
        """Insert a new row; False when the id already has one."""
        try:
            with transaction.atomic(using=self.using):
                self._objects().create(
                    event_id=key, state=state, token=token, expires_at=expires_at
                )
        except IntegrityError:
            return False
        return True

    def claim(self, event_id: str) -> ClaimResult:
        check_event_id(event_id)
        key = _key(event_id)
        token = new_token()
        self._claims += 1
        try:
            if self._claims % _PURGE_EVERY == 0:
                self._objects().filter(expires_at__lte=self._clock()).delete()
            for _ in range(_ATTEMPTS):
                now = self._clock()
                if self._create(key, "processing", token, now + self.lease_s):
                    return ClaimResult(event_id, ClaimStatus.ACQUIRED, token)
                rows = self._objects().filter(event_id=key, expires_at__lte=now)
                if rows.update(state="processing", token=token, expires_at=now + self.lease_s):
                    return ClaimResult(event_id, ClaimStatus.ACQUIRED, token)
                row = self._objects().filter(event_id=key).values_list("state", "expires_at")
                found = row.first()
                if found is None or found[1] <= now:
                    continue  # released or expired between our statements: try again
                status = ClaimStatus.DUPLICATE if found[0] == "done" else ClaimStatus.IN_PROGRESS
                return ClaimResult(event_id, status)
        except DatabaseError as exc:
            raise StoreError(f"Django idempotency store failed: {exc}", event_id) from exc
        raise StoreError(f"event {event_id}: the claim kept changing under us", event_id)

    def complete(self, claim: ClaimResult) -> bool:
        token = check_claim(claim)
        key = _key(claim.event_id)
        try:
            now = self._clock()
            done = {"state": "done", "expires_at": now + self.ttl_s}
            if self._objects().filter(event_id=key, token=token).update(**done):
                return True
            if self._objects().filter(event_id=key, expires_at__lte=now).update(
                token=token, **done
            ):
                return True
            return self._create(key, "done", token, now + self.ttl_s)
        except DatabaseError as exc:
            raise StoreError(f"Django idempotency store failed: {exc}", claim.event_id) from exc

    def release(self, claim: ClaimResult) -> bool:
        token = check_claim(claim)
        try:
            deleted, _ = (
                self._objects()
                .filter(event_id=_key(claim.event_id), token=token, state="processing")
                .delete()
            )
        except DatabaseError as exc:
            raise StoreError(f"Django idempotency store failed: {exc}", claim.event_id) from exc
        return bool(deleted)

    def purge(self) -> int:
        """Delete expired keys; returns how many (``manage.py receiver_kit_purge``)."""
        try:
            deleted, _ = self._objects().filter(expires_at__lte=self._clock()).delete()
        except DatabaseError as exc:
            raise StoreError(f"Django idempotency store failed: {exc}") from exc
        return int(deleted)

    async def aclaim(self, event_id: str) -> ClaimResult:
        return await sync_to_async(self.claim, thread_sensitive=True)(event_id)

    async def acomplete(self, claim: ClaimResult) -> bool:
        return await sync_to_async(self.complete, thread_sensitive=True)(claim)

    async def arelease(self, claim: ClaimResult) -> bool:
        return await sync_to_async(self.release, thread_sensitive=True)(claim)
