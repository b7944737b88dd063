"""What the dashboard's pages and actions are handed, and what they hand back.

Kept apart from `views`, which wraps them, so that the pages of
`manage` (and the portal's) can name these types without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass

from relay.http.dashboard.security import Session
from relay.http.state import RelayState

__all__ = ["Ctx", "Outcome", "Refused"]


@dataclass(frozen=True, slots=True)
class Ctx:
    """What a page or action needs besides the request."""

    state: RelayState
    session: Session
    csrf: str
    refresh: bool  # a background refresh by the page's script: leave the flash alone


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of an action, shown on the page the browser is sent back to."""

    kind: str  # success | error | info
    text: str
    anchor: str | None = None  # a delivery id to open on that page


class Refused(Exception):
    """A request a page will not serve: answered with an error page."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
