"""One ingest round on PostgreSQL: one call of relay_ingest, or the long way for known ids.

A round whose ids are all new is one statement (0009). One that meets an
id already stored, or the same id twice, must still answer exactly as the
transaction did: duplicates, conflicts (all or nothing per call), nothing
stored twice, and a held endpoint's deliveries held.
"""

from __future__ import annotations

import asyncio

import pytest

from relay.models import NewEvent
from relay.storage.postgres import PostgresStorage
from tests.postgres.pg import PgClient, schema_url

pytestmark = pytest.mark.postgres

BODY = b'{"type": "license.created"}'


def event(key: str, body: bytes = BODY, endpoints: tuple[str, ...] = ("a",)) -> NewEvent:
    return NewEvent(key, "license.created", body, endpoints, 1000.0, True)


def test_a_round_mixing_new_known_and_repeated_ids_answers_as_one_transaction_would(
    pg: PgClient, schema: str
) -> None:
    async def scenario() -> list[list[tuple[str, bool, bool]]]:
        store = PostgresStorage(schema_url(schema))
        await store.open()
        try:
            await store.ingest([event("known")])
            await store.pause_endpoint("b", 1000.0)
            # Submitted together, so they share rounds.
            answers = await asyncio.gather(
                store.ingest([event("fresh", endpoints=("a", "b"))]),
                store.ingest([event("known")]),                      # duplicate
                store.ingest([event("twice"), event("twice")]),      # same id in one call
                store.ingest([event("other"), event("known", b"{}")]),  # conflict: neither
            )
            return [[(o.id, o.duplicate, o.conflict) for o in answer] for answer in answers]
        finally:
            await store.close()

    answers = asyncio.run(scenario())
    assert answers == [
        [("fresh", False, False)],
        [("known", True, False)],
        [("twice", False, False), ("twice", True, False)],
        [("other", False, False), ("known", False, True)],
    ]
    assert pg.fetch("SELECT id FROM events ORDER BY id", schema=schema) == [
        ("fresh",), ("known",), ("twice",)]
    assert pg.fetch("SELECT event_id, endpoint, status FROM deliveries ORDER BY id",
                    schema=schema) == [
        ("known", "a", "pending"), ("fresh", "a", "pending"), ("fresh", "b", "held"),
        ("twice", "a", "pending")]
