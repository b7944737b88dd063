"""The `webhook_view` decorator and the settings it reads."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings as django_settings  # type: ignore[import-untyped]
from django.core.exceptions import (  # type: ignore[import-untyped]
    BadRequest,
    PermissionDenied,
    SuspiciousOperation,
)
from django.core.signals import setting_changed  # type: ignore[import-untyped]
from django.http import Http404, HttpResponse  # type: ignore[import-untyped]

from receiver_kit.contrib._common import (
    MISSING,
    Answer,
    KitSettings,
    aclaim_event,
    claim_event,
    handler_raised,
    read_settings,
    too_large,
    verified,
)
from receiver_kit.contrib.django.store import DjangoStore
from receiver_kit.events import WebhookEvent
from receiver_kit.exceptions import ConfigurationError
from receiver_kit.idempotency import IdempotencyStore, MemoryStore, store_from_url
from receiver_kit.tracing import handler_span
from receiver_kit.verification import Verifier

__all__ = ["SETTINGS_NAME", "SETTINGS_PREFIX", "check_settings", "kit_settings", "webhook_view"]

#: ``RECEIVER_KIT = {"SECRET": ..., "SCHEME": ..., "STORE": ...}``
SETTINGS_NAME = "RECEIVER_KIT"
#: ``RECEIVER_KIT_SECRET = ...`` etc.; these win over the dict's entries.
SETTINGS_PREFIX = "RECEIVER_KIT_"
APP_NAME = "receiver_kit.contrib.django"

#: Exceptions Django turns into 4xx answers itself: the kit lets them through
#: (after releasing the claim) instead of answering 500.
_DJANGO_HANDLED = (Http404, PermissionDenied, SuspiciousOperation, BadRequest)

_cache: dict[str, KitSettings] = {}
_cache_lock = threading.Lock()


def _lookup(key: str) -> Any:
    value = getattr(django_settings, SETTINGS_PREFIX + key, MISSING)
    if value is not MISSING:
        return value
    grouped = getattr(django_settings, SETTINGS_NAME, None) or {}
    if not isinstance(grouped, dict):
        raise ConfigurationError(f"{SETTINGS_NAME} must be a dict")
    return grouped.get(key, MISSING)


def _default_store(lease_s: float, ttl_s: float) -> IdempotencyStore:
    from django.apps import apps  # type: ignore[import-untyped]

    if apps.is_installed(APP_NAME):
        return DjangoStore(lease_s=lease_s, ttl_s=ttl_s)
    return MemoryStore(lease_s=lease_s, ttl_s=ttl_s)


def _store_factory(url: str, lease_s: float, ttl_s: float) -> IdempotencyStore:
    if url == "django" or url.startswith("django://"):
        alias = url.removeprefix("django").removeprefix("://") or "default"
        return DjangoStore(using=alias, lease_s=lease_s, ttl_s=ttl_s)
    return store_from_url(url, lease_s=lease_s, ttl_s=ttl_s)


def kit_settings() -> KitSettings:
    """The verifier and store built from ``RECEIVER_KIT`` / ``RECEIVER_KIT_*`` settings.

    Built once and cached; `override_settings` in tests clears the cache.
    """
    found = _cache.get("settings")
    if found is None:
        with _cache_lock:
            found = _cache.get("settings")
            if found is None:
                found = read_settings(
                    _lookup,
                    prefix=SETTINGS_PREFIX,
                    default_store=_default_store,
                    store_factory=_store_factory,
                )
                _cache["settings"] = found
    return found


def _settings_changed(*, setting: str, **_: Any) -> None:
    if setting == SETTINGS_NAME or setting.startswith(SETTINGS_PREFIX):
        _cache.clear()


setting_changed.connect(_settings_changed, dispatch_uid="receiver_kit_settings_changed")


def check_settings(app_configs: Any = None, **_: Any) -> list[Any]:
    """Django system check: a configured but invalid kit fails ``manage.py check``."""
    from django.core import checks  # type: ignore[import-untyped]

    configured = hasattr(django_settings, SETTINGS_NAME) or hasattr(
        django_settings, SETTINGS_PREFIX + "SECRET"
    )
    if not configured:
        return []
    _cache.clear()
    try:
        kit_settings()
    except ConfigurationError as exc:
        return [checks.Error(str(exc), id="receiver_kit.E001")]
    return []


def _respond(answer: Answer) -> Any:
    return HttpResponse(answer.body, status=answer.status, content_type=answer.content_type)


def webhook_view(
    view: Callable[..., Any] | None = None,
    *,
    verifier: Verifier | None = None,
    store: IdempotencyStore | Any | None = MISSING,
) -> Any:
    """Decorate a sync or async view: ``def receive(request, event, *args, **kwargs)``.

    Use it bare (``@webhook_view``: verifier and store from settings) or with
    an explicit `verifier` and/or `store` (``store=None`` disables
    deduplication). The wrapped view is csrf-exempt, since the sender proves
    itself with the signature, not a cookie. The verified event is passed as
    the second argument and set as ``request.webhook_event``.
    """
    if view is None:
        return functools.partial(webhook_view, verifier=verifier, store=store)

    def resolve() -> KitSettings:
        if verifier is None:
            base = kit_settings()
        else:
            base = read_settings(
                _lookup,
                prefix=SETTINGS_PREFIX,
                default_store=_default_store,
                store_factory=_store_factory,
                verifier=verifier,
            )
        if store is MISSING:
            return base
        return KitSettings(base.verifier, store, base.max_body_bytes)

    resolved: list[KitSettings] = []

    def current() -> KitSettings:
        if verifier is None and store is MISSING:
            return kit_settings()  # follows override_settings
        if not resolved:
            resolved.append(resolve())
        return resolved[0]

    # Twins on purpose: an async view needs a coroutine wrapper, a sync view a plain one.
    if iscoroutinefunction(view):

        async def async_wrapper(request: Any, *args: Any, **kwargs: Any) -> Any:
            kit = current()
            event = _verified(request, kit)
            if not isinstance(event, WebhookEvent):
                return event
            admission = await aclaim_event(kit.store, event.id)
            if admission.refused is not None:
                return _respond(Answer.of(admission.refused))
            request.webhook_event = event
            try:
                with handler_span(request.headers, event):
                    response = await view(request, event, *args, **kwargs)
            except BaseException as exc:
                await admission.asettle(False)
                failed = _view_failed(event, exc)
                if failed is None:
                    raise
                return failed
            await admission.asettle(_succeeded(response))
            return response

        wrapper: Any = functools.wraps(view)(async_wrapper)
        markcoroutinefunction(wrapper)
    else:

        def sync_wrapper(request: Any, *args: Any, **kwargs: Any) -> Any:
            kit = current()
            event = _verified(request, kit)
            if not isinstance(event, WebhookEvent):
                return event
            admission = claim_event(kit.store, event.id)
            if admission.refused is not None:
                return _respond(Answer.of(admission.refused))
            request.webhook_event = event
            try:
                with handler_span(request.headers, event):
                    response = view(request, event, *args, **kwargs)
            except BaseException as exc:
                admission.settle(False)
                failed = _view_failed(event, exc)
                if failed is None:
                    raise
                return failed
            admission.settle(_succeeded(response))
            return response

        wrapper = functools.wraps(view)(sync_wrapper)
    # Set the attribute rather than use @csrf_exempt: this works for async
    # views on every supported Django version.
    wrapper.csrf_exempt = True
    return wrapper


def _verified(request: Any, kit: KitSettings) -> Any:
    """Size check, raw body, verification: the event, or the answer to send."""
    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared.isdigit() and int(declared) > kit.max_body_bytes:
        return _respond(Answer.problem(too_large(kit.max_body_bytes)))
    event = verified(kit.verifier, request.body, request.headers, request.path)
    return event if isinstance(event, WebhookEvent) else _respond(Answer.of(event))


def _view_failed(event: WebhookEvent, exc: BaseException) -> Any:
    """The 500 answer for an exception from the view, or None when Django answers it."""
    failed = handler_raised(event, exc, passes_through=isinstance(exc, _DJANGO_HANDLED))
    return None if failed is None else _respond(Answer.problem(failed))


def _succeeded(response: Any) -> bool:
    status = getattr(response, "status_code", 200)
    return isinstance(status, int) and 200 <= status < 300
