"""Django: a csrf-exempt view decorator for sync and async views, and a database store.

::

    # settings.py
    INSTALLED_APPS = [..., "receiver_kit.contrib.django"]   # then: manage.py migrate
    RECEIVER_KIT = {"SECRET": "whsec_...", "SCHEME": "standard"}

    # views.py
    from receiver_kit.contrib.django import webhook_view

    @webhook_view
    def receive(request, event):
        return JsonResponse({"received": event.id})

Settings, as ``RECEIVER_KIT = {"KEY": ...}`` or as ``RECEIVER_KIT_KEY = ...``
(the latter wins): ``SECRET`` (str or list, required), ``SCHEME``
(``standard``), ``TOLERANCE`` (300 s, ``None`` disables), ``STORE``
(``"django"`` or ``"django://<alias>"``, ``memory://``, ``sqlite:///path.db``,
``redis://...``, a store instance, or ``None``; default the Django database
when this app is installed, else in-process memory), ``LEASE`` (60 s), ``TTL``
(7 days), ``MAX_BODY_BYTES`` (10 MiB). ``manage.py check`` reports an invalid
configuration (``receiver_kit.E001``).

Answers: 401/400 problem for unverifiable requests, 200 for an event already
processed (the view does not run), 409 while another worker processes it, the
view's answer otherwise. A 2xx answer completes the claim; any other answer or
an exception releases it; ``Http404``, ``PermissionDenied``, ``BadRequest``
and ``SuspiciousOperation`` pass through to Django, any other exception
answers a 500 problem.
"""

from __future__ import annotations

from receiver_kit.exceptions import MissingDependencyError

try:
    import django  # type: ignore[import-untyped]  # noqa: F401
except ImportError as exc:
    raise MissingDependencyError("django", "django") from exc

from receiver_kit.contrib.django.decorators import (
    SETTINGS_NAME,
    SETTINGS_PREFIX,
    kit_settings,
    webhook_view,
)
from receiver_kit.contrib.django.store import DjangoStore

__all__ = ["SETTINGS_NAME", "SETTINGS_PREFIX", "DjangoStore", "kit_settings", "webhook_view"]
