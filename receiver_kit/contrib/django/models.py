"""The idempotency table of `DjangoStore`."""

from __future__ import annotations

from django.db import models  # type: ignore[import-untyped]

__all__ = ["IdempotencyKey"]


class IdempotencyKey(models.Model):  # type: ignore[misc]
    """One claimed or processed event id.

    The primary key makes the first claim atomic on every database: a second
    insert of the same id fails, and the loser reads the winner's state.
    `expires_at` is unix time (a float, not a datetime) so that it compares
    the same way whatever ``USE_TZ`` and the database's time zone say.
    """

    PROCESSING = "processing"
    DONE = "done"

    event_id = models.CharField(max_length=255, primary_key=True)
    state = models.CharField(
        max_length=16, choices=[(PROCESSING, "processing"), (DONE, "done")]
    )
    token = models.CharField(max_length=64)
    expires_at = models.FloatField(db_index=True, help_text="unix time")

    class Meta:
        db_table = "receiver_kit_idempotency_key"
        verbose_name = "webhook idempotency key"

    def __str__(self) -> str:
        return f"{self.event_id} ({self.state})"
