"""A receiver that verifies with the receiver kit, as an integrator's would.

It answers 200 to a delivery its `Verifier` accepts and 401 (with the kit's
reason) to one it refuses, and can be switched to another secret, or broken,
while the relay runs.
"""

from __future__ import annotations

from typing import Any

from receiver_kit import VerificationError, Verifier

__all__ = ["KitReceiver"]


class KitReceiver:
    def __init__(self) -> None:
        self.secret: str | None = None
        self.broken: tuple[int, bytes] | None = None
        self.verified: list[str] = []  # event types it accepted

    def __call__(self, index: int, request: Any) -> tuple[int, dict[str, str], bytes]:
        if self.broken is not None:
            return self.broken[0], {"Content-Type": "application/json"}, self.broken[1]
        if self.secret is None:
            return 503, {}, b"no secret configured yet"
        try:
            event = Verifier(secret=self.secret).verify(request.body, request.headers)
        except VerificationError as exc:
            return 401, {"Content-Type": "text/plain"}, str(exc).encode()
        self.verified.append(event.type)
        return 200, {"Content-Type": "application/json"}, b'{"verified": true}'
