"""Settings of the Django demo receiver: the smallest project that receives relay deliveries.

Environment: ``RELAY_DEMO_SECRET`` (default: the demo secret),
``RELAY_DEMO_SCHEME`` (``standard``, ``x-webhook`` or ``babel``),
``RELAY_DEMO_DB`` (the SQLite file; default ``db.sqlite3`` next to manage.py).
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-not-for-production")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "receiver_kit.contrib.django",  # the idempotency table: run `manage.py migrate`
]
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",  # the webhook view is csrf-exempt
]
ROOT_URLCONF = "receiver_project.urls"
WSGI_APPLICATION = "receiver_project.wsgi.application"
ASGI_APPLICATION = "receiver_project.asgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("RELAY_DEMO_DB", str(BASE_DIR / "db.sqlite3")),
        # Concurrent requests wait for SQLite's write lock instead of failing.
        "OPTIONS": {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"},
    }
}
USE_TZ = True

RECEIVER_KIT = {
    "SECRET": os.environ.get("RELAY_DEMO_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
    "SCHEME": os.environ.get("RELAY_DEMO_SCHEME", "standard"),
    "STORE": "django",  # claims in this database, shared by every worker
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"line": {"format": "%(asctime)s %(message)s", "datefmt": "%H:%M:%S"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "line"}},
    "loggers": {
        "license_events": {"handlers": ["console"], "level": "INFO"},
        "receiver_kit": {"handlers": ["console"], "level": "WARNING"},
    },
}
