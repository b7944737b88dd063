"""The Django app that owns the idempotency table: add it to ``INSTALLED_APPS``."""

from __future__ import annotations

from django.apps import AppConfig  # type: ignore[import-untyped]

__all__ = ["ReceiverKitConfig"]


class ReceiverKitConfig(AppConfig):  # type: ignore[misc]
    name = "receiver_kit.contrib.django"
    label = "receiver_kit"
    verbose_name = "Webhook receiver kit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks  # type: ignore[import-untyped]

        from receiver_kit.contrib.django.decorators import check_settings

        checks.register(check_settings, checks.Tags.compatibility)
