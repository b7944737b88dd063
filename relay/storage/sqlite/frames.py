"""What crosses the pipes between the relay and the SQLite writer process.

A frame is a 4-byte little-endian length, then a pickle. The relay sends
`(batch_id, [(op, args), ...])`; the writer answers each batch with
`(batch_id, True, [result, ...])` or `(batch_id, False, (kind, code,
message))` (`errors.describe_error`), in order. Batch 0 is the writer's
first answer, before any request: the schema files it applied, or why it
could not open the database.
"""

from __future__ import annotations

import operator
import pickle
import struct
from typing import Any

__all__ = [
    "ClaimRow", "EventFields", "Job", "OutcomeFields", "ResultFields", "event_fields",
    "outcome_fields", "pack", "result_fields", "unpack_frames",
]

_HEADER = struct.Struct("<I")

Job = tuple[str, tuple[Any, ...]]  # (the op's name, its arguments): see ops.py
EventFields = tuple[Any, ...]  # event_fields(NewEvent)
ResultFields = tuple[Any, ...]  # result_fields(AttemptResult)
OutcomeFields = tuple[str, str, int, bool, bool]  # outcome_fields(IngestOutcome)
ClaimRow = tuple[int, str, str, str, bytes, int, float, str | None]  # a ClaimedDelivery's

# `NewEvent`, `AttemptResult` and `IngestOutcome` cross the pipe as plain
# tuples of their fields, which pickle at C speed (a slots dataclass goes
# through Python-level __getstate__/__setstate__); the other end rebuilds them
# positionally.
event_fields = operator.attrgetter("id", "type", "body", "endpoints", "received_at", "keyed",
                                   "tenant", "source", "trace_context")
result_fields = operator.attrgetter(
    "delivery_id", "endpoint", "attempt", "started_at", "duration_ms", "status_code",
    "response_body", "error", "request_headers", "new_status", "next_attempt_at", "counts",
    "disable_reason", "disable_after_s")
outcome_fields = operator.attrgetter("id", "type", "deliveries", "duplicate", "conflict")


def pack(message: Any) -> bytes:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(payload)) + payload


def unpack_frames(buffer: bytearray) -> list[Any]:
    """Remove and return every complete frame at the start of `buffer`."""
    messages = []
    offset = 0
    with memoryview(buffer) as view:  # slices without copies; released before the resize
        while len(buffer) - offset >= 4:
            (size,) = _HEADER.unpack_from(buffer, offset)
            if len(buffer) - offset - 4 < size:
                break
            # Frames come only from the other end of a private pipe: our own process.
            messages.append(pickle.loads(view[offset + 4:offset + 4 + size]))  # noqa: S301
            offset += 4 + size
    del buffer[:offset]
    return messages
