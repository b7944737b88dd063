"""FastAPI: a dependency that yields the verified event and holds its claim.

::

    from fastapi import FastAPI
    from receiver_kit import SQLiteStore, Verifier, WebhookEvent
    from receiver_kit.contrib.fastapi import WebhookDependency

    app = FastAPI()
    webhook = WebhookDependency(Verifier("whsec_..."), store=SQLiteStore("webhooks.db"))
    webhook.install(app)          # RFC 9457 problem bodies for the kit's answers

    @app.post("/webhooks")
    def receive(event: WebhookEvent = webhook.depends()) -> dict[str, str]:
        return {"received": event.id}

The dependency reads the raw body (``await request.body()``) before anything
parses it, answers 401/400 for unverifiable requests, 200 for an event
already processed (the endpoint does not run), 409 while another worker
processes it. The claim is held while the endpoint runs: returning completes
it, raising releases it (a kit 500 for unhandled exceptions; your own
`HTTPException`s and other handled exceptions pass through unchanged).

A dependency cannot see the status of a `Response` the endpoint *returns*:
signal failure by raising. `WebhookMiddleware` (``receiver_kit.contrib.
starlette``) inspects the answer instead, if you prefer returning 5xx.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from typing import Any

from receiver_kit.contrib._common import (
    DEFAULT_MAX_BODY_BYTES,
    aclaim_event,
    duplicate_id,
    handler_raised,
    too_large,
    verified,
)
from receiver_kit.contrib.starlette import (
    EVENT_STATE_KEY,
    WebhookHTTPException,
    problem_exception_handler,
)
from receiver_kit.events import WebhookEvent
from receiver_kit.exceptions import MissingDependencyError, ReceiverKitError, VerificationError
from receiver_kit.idempotency import IdempotencyStore
from receiver_kit.tracing import handler_span
from receiver_kit.verification import Verifier

try:
    import fastapi
    from starlette.requests import Request
except ImportError as exc:
    raise MissingDependencyError("fastapi", "fastapi") from exc

__all__ = ["WebhookDependency", "WebhookHTTPException", "problem_exception_handler"]

_DEPENDS_HAS_SCOPE = "scope" in inspect.signature(fastapi.Depends).parameters


class WebhookDependency:
    """A FastAPI dependency: ``event: WebhookEvent = webhook.depends()``.

    Without a `store` it only verifies. The instance is itself the dependency
    callable, so ``Depends(webhook)`` works too; `depends()` additionally asks
    FastAPI (0.121+) to settle the claim as soon as the endpoint returns,
    before the response is sent, rather than after.
    """

    def __init__(
        self,
        verifier: Verifier,
        store: IdempotencyStore | None = None,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.verifier = verifier
        self.store = store
        self.max_body_bytes = max_body_bytes

    def __repr__(self) -> str:
        return f"WebhookDependency({self.verifier!r}, store={self.store!r})"

    def depends(self) -> Any:
        """``Depends(self)``, scoped to the endpoint function where FastAPI supports it."""
        if _DEPENDS_HAS_SCOPE:
            return fastapi.Depends(self, scope="function")
        return fastapi.Depends(self)  # pragma: no cover - FastAPI < 0.121

    def install(self, app: Any) -> None:
        """Render the kit's answers as ``application/problem+json`` in `app`."""
        app.add_exception_handler(WebhookHTTPException, problem_exception_handler)

    async def __call__(self, request: Request) -> AsyncIterator[WebhookEvent]:
        upstream = request.scope.get("state", {}).get(EVENT_STATE_KEY)
        if isinstance(upstream, WebhookEvent):
            # WebhookMiddleware already verified this request and holds its claim.
            yield upstream
            return
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            raise WebhookHTTPException(too_large(self.max_body_bytes))
        body = await request.body()
        if len(body) > self.max_body_bytes:
            raise WebhookHTTPException(too_large(self.max_body_bytes))
        event = verified(self.verifier, body, request.headers, request.url.path)
        if isinstance(event, VerificationError):
            raise WebhookHTTPException.from_error(event)
        admission = await aclaim_event(self.store, event.id)
        if admission.refused is not None:
            raise _refused(admission.refused)
        try:
            with handler_span(request.headers, event):
                yield event
        except BaseException as exc:
            await asyncio.shield(admission.asettle(False))
            failed = handler_raised(event, exc, passes_through=_has_handler(request, exc))
            if failed is None:
                raise
            raise WebhookHTTPException(failed) from exc
        await admission.asettle(True)


def _refused(error: ReceiverKitError) -> WebhookHTTPException:
    event_id = duplicate_id(error)
    if event_id is not None:
        return WebhookHTTPException.duplicate(event_id)
    return WebhookHTTPException.from_error(error)


def _has_handler(request: Request, exc: BaseException) -> bool:
    """True when the app has a specific handler for `exc` (HTTPException,
    RequestValidationError, your own): it decides the answer, not the kit."""
    handlers: Any = request.scope.get("starlette.exception_handlers")
    registered = handlers[0] if handlers else getattr(request.app, "exception_handlers", {})
    for cls in type(exc).__mro__:
        if cls in (Exception, BaseException):
            return False
        if cls in registered:
            return True
    return False
