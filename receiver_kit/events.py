"""The verified delivery handed to application code."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TYPE_FIELDS", "WebhookEvent", "event_type_from_payload"]

#: Payload fields that name the event type, in the order the relay tries them
#: at ingest (SPEC 2): the license platforms disagree on the name.
TYPE_FIELDS: tuple[str, ...] = ("type", "event", "event_type", "EventType")


def event_type_from_payload(payload: Any) -> str | None:
    """The first non-empty string among `TYPE_FIELDS` of a JSON object, else None."""
    if type(payload) is not dict:
        return None
    for name in TYPE_FIELDS:
        value = payload.get(name)
        if type(value) is str and value:
            return value
    return None


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One delivery whose signature, timestamp and body have been checked.

    `id` is the sender's event id: the same on every retry and every endpoint,
    so it is the key to deduplicate on. `body` is the raw bytes that were
    signed; `payload` is those bytes parsed as JSON. Equality and hashing use
    `id`, `type`, `timestamp`, `scheme` and `body`, never the parsed payload.
    """

    id: str
    type: str | None
    timestamp: int | None
    payload: Any = field(compare=False)
    body: bytes = field(repr=False)
    scheme: str = "standard"
    headers: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def data(self) -> Any:
        """The payload's `data` (or `payload`) object when it has one, else the payload.

        Most platforms wrap the entity in one of these two keys; this spares
        every handler the same two lookups.
        """
        payload = self.payload
        if type(payload) is dict:
            for key in ("data", "payload"):
                if key in payload:
                    return payload[key]
        return payload
