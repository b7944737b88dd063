"""Create the idempotency table of `DjangoStore`."""

from __future__ import annotations

from typing import ClassVar

from django.db import migrations, models  # type: ignore[import-untyped]


class Migration(migrations.Migration):  # type: ignore[misc]
    initial = True

    dependencies: ClassVar[list[tuple[str, str]]] = []

    operations: ClassVar[list[object]] = [
        migrations.CreateModel(
            name="IdempotencyKey",
            fields=[
                (
                    "event_id",
                    models.CharField(max_length=255, primary_key=True, serialize=False),
                ),
                (
                    "state",
                    models.CharField(
                        choices=[("processing", "processing"), ("done", "done")],
                        max_length=16,
                    ),
                ),
                ("token", models.CharField(max_length=64)),
                ("expires_at", models.FloatField(db_index=True, help_text="unix time")),
            ],
            options={
                "verbose_name": "webhook idempotency key",
                "db_table": "receiver_kit_idempotency_key",
            },
        ),
    ]
