"""Starlette (and any ASGI app): a middleware that verifies and deduplicates webhooks.

::

    from starlette.applications import Starlette
    from receiver_kit import SQLiteStore, Verifier
    from receiver_kit.contrib.starlette import WebhookMiddleware, get_event

    async def receive(request):
        event = get_event(request)
        ...
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/webhooks", receive, methods=["POST"])])
    app.add_middleware(WebhookMiddleware, verifier=Verifier(SECRET),
                       store=SQLiteStore("webhooks.db"), paths=["/webhooks"])

Requests under `paths` are answered by the middleware when they are not
authentic (401/400), already processed (200, the app is not called) or in
flight elsewhere (409). Otherwise the app runs with the verified event in
``request.state.webhook_event``; its 2xx answer completes the claim before
the response starts, any other answer or an exception releases it.

`WebhookHTTPException` and `problem_exception_handler` are shared with the
FastAPI dependency (`receiver_kit.contrib.fastapi`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from receiver_kit.contrib._common import (
    DEFAULT_MAX_BODY_BYTES,
    PROBLEM_CONTENT_TYPE,
    Admission,
    Answer,
    aclaim_event,
    duplicate_body,
    handler_raised,
    problem_body,
    too_large,
    verified,
)
from receiver_kit.events import WebhookEvent
from receiver_kit.exceptions import MissingDependencyError, ReceiverKitError, VerificationError
from receiver_kit.idempotency import IdempotencyStore
from receiver_kit.tracing import handler_span
from receiver_kit.verification import Verifier

try:
    from starlette.datastructures import Headers
    from starlette.exceptions import HTTPException
    from starlette.requests import HTTPConnection, Request
    from starlette.responses import Response
    from starlette.types import ASGIApp, Message, Receive, Scope, Send
except ImportError as exc:  # pragma: no cover - starlette ships with the relay
    raise MissingDependencyError("starlette", "fastapi") from exc

__all__ = [
    "EVENT_STATE_KEY",
    "WebhookHTTPException",
    "WebhookMiddleware",
    "get_event",
    "problem_exception_handler",
]

#: Where the middleware leaves the verified event: ``request.state.webhook_event``.
EVENT_STATE_KEY = "webhook_event"


def get_event(request: HTTPConnection) -> WebhookEvent:
    """The event `WebhookMiddleware` verified for this request.

    Raises `LookupError` when the request did not pass through the
    middleware (its path is outside the middleware's `paths`).
    """
    event = request.scope.get("state", {}).get(EVENT_STATE_KEY)
    if not isinstance(event, WebhookEvent):
        raise LookupError(
            "no verified webhook event on this request: is its path under "
            "WebhookMiddleware's paths?"
        )
    return event


class WebhookHTTPException(HTTPException):
    """An HTTP answer decided by the kit (401, 400, 409, 413, 503, 500, or 200 duplicate).

    It subclasses Starlette's `HTTPException`, so without any set-up FastAPI
    renders it as ``{"detail": "..."}`` with the right status. Register
    `problem_exception_handler` (``WebhookDependency.install(app)`` does) to
    answer RFC 9457 ``application/problem+json`` bodies instead.
    """

    def __init__(
        self, document: dict[str, Any], *, media_type: str = PROBLEM_CONTENT_TYPE
    ) -> None:
        status = int(document.get("status", 500))
        super().__init__(status_code=status, detail=str(document.get("detail", "")))
        self.document = document
        self.media_type = media_type

    @classmethod
    def from_error(cls, error: ReceiverKitError) -> WebhookHTTPException:
        return cls(error.problem())

    @classmethod
    def duplicate(cls, event_id: str) -> WebhookHTTPException:
        return cls(
            {
                "status": 200,
                "id": event_id,
                "duplicate": True,
                "detail": f"event {event_id} was already processed",
            },
            media_type="application/json",
        )

    def render(self) -> Response:
        if self.media_type == PROBLEM_CONTENT_TYPE:
            body = problem_body(self.document)
        else:
            body = duplicate_body(str(self.document["id"]))
        return Response(body, status_code=self.status_code, media_type=self.media_type)


async def problem_exception_handler(request: Request, exc: Exception) -> Response:
    """Render a `WebhookHTTPException` as its problem document (or the duplicate answer)."""
    if isinstance(exc, WebhookHTTPException):
        return exc.render()
    raise exc  # pragma: no cover - registered for WebhookHTTPException only


class WebhookMiddleware:
    """Verify and deduplicate every request whose path is under one of `paths`.

    `paths` are prefixes matched on whole segments (``/webhooks`` matches
    ``/webhooks`` and ``/webhooks/crm``, not ``/webhooksx``). Without a
    `store` the middleware only verifies. Bodies larger than `max_body_bytes`
    are refused with 413 before being read whole.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        verifier: Verifier,
        store: IdempotencyStore | None = None,
        paths: Sequence[str] = ("/webhooks",),
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        if isinstance(paths, str):
            paths = [paths]
        self.app = app
        self.verifier = verifier
        self.store = store
        self.paths = tuple("/" + p.strip("/") if p.strip("/") else "/" for p in paths)
        self.max_body_bytes = max_body_bytes

    def matches(self, path: str) -> bool:
        for prefix in self.paths:
            if prefix == "/" or path == prefix or path.startswith(prefix + "/"):
                return True
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.matches(scope["path"]):
            await self.app(scope, receive, send)
            return
        body = await self._read_body(scope, receive, send)
        if body is None:
            return
        event = verified(self.verifier, body, Headers(scope=scope), scope["path"])
        if isinstance(event, VerificationError):
            await _send(send, Answer.of(event))
            return
        admission = await aclaim_event(self.store, event.id)
        if admission.refused is not None:
            await _send(send, Answer.of(admission.refused))
            return
        scope.setdefault("state", {})[EVENT_STATE_KEY] = event
        with handler_span(Headers(scope=scope), event):
            await self._run(scope, body, receive, send, event, admission)

    async def _run(
        self,
        scope: Scope,
        body: bytes,
        receive: Receive,
        send: Send,
        event: WebhookEvent,
        admission: Admission,
    ) -> None:
        replayed = False
        started = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def send_and_settle(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                # Settle before the sender sees the answer: once it reads
                # a 2xx, a new delivery of this id must find it done.
                await admission.asettle(200 <= message["status"] < 300)
            await send(message)

        try:
            await self.app(scope, replay, send_and_settle)
        except Exception as exc:
            await admission.asettle(False)
            failed = handler_raised(event, exc, passes_through=started)
            if failed is None:
                raise
            await _send(send, Answer.problem(failed))
            return
        except BaseException:
            await asyncio.shield(admission.asettle(False))
            raise
        await admission.asettle(False)  # the app sent no answer at all

    async def _read_body(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        limit = self.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await _send(send, Answer.problem(too_large(limit)))
                    return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    await _send(send, Answer.problem(too_large(limit)))
                    return None
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


async def _send(send: Send, answer: Answer) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": answer.status,
            "headers": [
                (b"content-type", answer.content_type.encode("latin-1")),
                (b"content-length", str(len(answer.body)).encode("latin-1")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": answer.body})
