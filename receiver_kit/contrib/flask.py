"""Flask: a view decorator, and an extension configured from ``app.config``.

::

    from flask import Flask
    from receiver_kit.contrib.flask import ReceiverKit

    app = Flask(__name__)
    app.config["RECEIVER_KIT_SECRET"] = "whsec_..."
    app.config["RECEIVER_KIT_STORE"] = "sqlite:///webhooks.db"
    kit = ReceiverKit(app)

    @app.post("/webhooks")
    @kit.webhook
    def receive(event):
        return {"received": event.id}

Configuration keys (``RECEIVER_KIT_`` + ``SECRET`` (str or list, required),
``SCHEME`` (``standard``), ``TOLERANCE`` (300 s, ``None`` disables), ``STORE``
(a store, ``memory://``, ``sqlite:///path.db``, ``redis://...``; default an
in-process `MemoryStore`; ``None`` disables deduplication), ``LEASE`` (60 s),
``TTL`` (7 days), ``MAX_BODY_BYTES`` (10 MiB)).

The decorated view receives the verified `WebhookEvent` as its first
argument (also in ``flask.g.webhook_event``); async views work when Flask's
async support is installed. A 2xx answer completes the claim; any other
answer or an exception releases it; a werkzeug `HTTPException` (``abort()``)
passes through, any other exception answers a 500 problem.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from receiver_kit.contrib._common import (
    MISSING,
    Answer,
    KitSettings,
    claim_event,
    handler_raised,
    read_settings,
    too_large,
    verified,
)
from receiver_kit.exceptions import ConfigurationError, MissingDependencyError, VerificationError
from receiver_kit.idempotency import IdempotencyStore, MemoryStore
from receiver_kit.tracing import handler_span
from receiver_kit.verification import Verifier

try:
    from flask import Flask, current_app, g, request
    from flask.typing import ResponseReturnValue
    from werkzeug.exceptions import HTTPException
    from werkzeug.wrappers import Response
except ImportError as exc:
    raise MissingDependencyError("flask", "flask") from exc

__all__ = ["CONFIG_PREFIX", "ReceiverKit", "webhook_view"]

CONFIG_PREFIX = "RECEIVER_KIT_"
_EXTENSION_KEY = "receiver_kit"

def webhook_view(
    verifier: Verifier, store: IdempotencyStore | None = None, *, max_body_bytes: int | None = None
) -> Callable[[Callable[..., Any]], Callable[..., ResponseReturnValue]]:
    """Decorate a view with an explicit verifier and store (no app config needed)."""
    settings = KitSettings(verifier, store) if max_body_bytes is None else KitSettings(
        verifier, store, max_body_bytes
    )

    def decorate(view: Callable[..., Any]) -> Callable[..., ResponseReturnValue]:
        return _wrap(view, lambda: settings)

    return decorate


class ReceiverKit:
    """The Flask extension: ``ReceiverKit(app)`` or ``kit.init_app(app)`` later.

    Keyword arguments override the matching ``RECEIVER_KIT_*`` keys, for
    application factories that build the verifier or store in code.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        verifier: Verifier | None = None,
        store: IdempotencyStore | Any | None = MISSING,
    ) -> None:
        self._verifier = verifier
        self._store = store
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Read ``app.config`` now, so a misconfiguration fails at start-up."""
        app.extensions[_EXTENSION_KEY] = self._settings_for(app)

    def settings(self, app: Flask | None = None) -> KitSettings:
        """The verifier and store in use for `app` (default: the current app)."""
        app = app if app is not None else current_app._get_current_object()  # type: ignore[attr-defined]
        found = app.extensions.get(_EXTENSION_KEY)
        if not isinstance(found, KitSettings):
            raise ConfigurationError(
                "receiver_kit is not initialised on this app: call ReceiverKit(app) "
                "or kit.init_app(app)"
            )
        return found

    def webhook(self, view: Callable[..., Any]) -> Callable[..., ResponseReturnValue]:
        """Decorate a view: it runs only for verified, not-yet-processed events."""
        return _wrap(view, self.settings)

    def _settings_for(self, app: Flask) -> KitSettings:
        config = app.config

        def lookup(key: str) -> Any:
            if key == "STORE" and self._store is not MISSING:
                return self._store
            return config.get(CONFIG_PREFIX + key, MISSING)

        return read_settings(
            lookup, prefix=CONFIG_PREFIX, default_store=_memory_store, verifier=self._verifier
        )


def _memory_store(lease_s: float, ttl_s: float) -> IdempotencyStore:
    return MemoryStore(lease_s=lease_s, ttl_s=ttl_s)


def _respond(answer: Answer) -> Response:
    return Response(answer.body, status=answer.status, mimetype=answer.content_type)


def _wrap(
    view: Callable[..., Any], get_settings: Callable[[], KitSettings]
) -> Callable[..., ResponseReturnValue]:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        settings = get_settings()
        if request.content_length is not None and request.content_length > settings.max_body_bytes:
            return _respond(Answer.problem(too_large(settings.max_body_bytes)))
        body = request.get_data(cache=True, as_text=False, parse_form_data=False)
        event = verified(settings.verifier, body, request.headers, request.path)
        if isinstance(event, VerificationError):
            return _respond(Answer.of(event))
        admission = claim_event(settings.store, event.id)
        if admission.refused is not None:
            return _respond(Answer.of(admission.refused))
        g.webhook_event = event
        try:
            with handler_span(request.headers, event):
                response = current_app.make_response(
                    current_app.ensure_sync(view)(event, *args, **kwargs)
                )
        except BaseException as exc:
            admission.settle(False)
            failed = handler_raised(event, exc, passes_through=isinstance(exc, HTTPException))
            if failed is None:
                raise
            return _respond(Answer.problem(failed))
        admission.settle(200 <= response.status_code < 300)
        return response

    return wrapper
