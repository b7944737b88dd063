"""``manage.py receiver_kit_purge``: delete expired idempotency keys now.

Claims purge expired keys every few hundred calls anyway; run this from cron
when the receiver is idle for long stretches and the table should stay small.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand  # type: ignore[import-untyped]

from receiver_kit.contrib.django.store import DjangoStore


class Command(BaseCommand):  # type: ignore[misc]
    help = "Delete expired webhook idempotency keys."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--database", default="default", help="database alias")

    def handle(self, *args: Any, **options: Any) -> None:
        deleted = DjangoStore(using=options["database"]).purge()
        self.stdout.write(f"deleted {deleted} expired idempotency keys")
