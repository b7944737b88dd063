"""Fixtures for the receiver kit's tests: clocks, real Redis, a configured Django."""

from __future__ import annotations

import os
import sys
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for path in (str(ROOT), str(HERE)):
    if path not in sys.path:
        sys.path.insert(0, path)
# An editable install made before receiver_kit/__init__.py existed resolves the
# package as a namespace; drop such a stale import so the real package loads.
if getattr(sys.modules.get("receiver_kit"), "__file__", "") is None:
    for name in [m for m in sys.modules if m == "receiver_kit" or m.startswith("receiver_kit.")]:
        del sys.modules[name]

# Starlette 1.x warns when its TestClient runs on httpx rather than httpx2;
# import it once here, outside `filterwarnings = error`, so tests can use it.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import starlette.testclient  # noqa: F401

from kit_http_contract import Recorder  # noqa: E402 - needs HERE on sys.path

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
REDIS_URL = os.environ.get("RECEIVER_KIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


class FakeClock:
    """A clock the test moves by hand: lease and TTL expiry without sleeping."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def recorder() -> Recorder:
    """What the test app's handler does and saw (kit_http_contract), fresh per test."""
    return Recorder()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis server; skipped when unreachable, a failure when CI=true."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is required when CI=true but {REDIS_URL} is unreachable: {exc}")
        pytest.skip(f"Redis at {REDIS_URL} is unreachable ({exc}); start it to run these tests")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix unique to the test; its keys are deleted afterwards."""
    import redis

    prefix = f"receiver_kit_test:{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(scope="session")
def django_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Configure Django once per session on a real SQLite file, migrated."""
    import django
    from django.conf import settings
    from django.core.management import call_command

    db_path = tmp_path_factory.mktemp("django") / "db.sqlite3"
    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="receiver-kit-tests",
            ALLOWED_HOSTS=["testserver", "localhost", "127.0.0.1"],
            INSTALLED_APPS=["receiver_kit.contrib.django"],
            MIDDLEWARE=[
                "django.middleware.common.CommonMiddleware",
                "django.middleware.csrf.CsrfViewMiddleware",
            ],
            ROOT_URLCONF="kit_django_urls",
            DATABASES={
                "default": {
                    "ENGINE": "django.db.backends.sqlite3",
                    "NAME": str(db_path),
                    "OPTIONS": {"timeout": 30, "init_command": "PRAGMA journal_mode=WAL;"},
                }
            },
            RECEIVER_KIT={"SECRET": SECRET, "SCHEME": "standard", "STORE": "django"},
            USE_TZ=True,
        )
        django.setup()
    call_command("migrate", verbosity=0)
    return db_path
