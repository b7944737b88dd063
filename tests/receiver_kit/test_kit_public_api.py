"""The package surface: __all__, a stdlib-only core, helpful errors for missing extras."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import receiver_kit
from receiver_kit import ConfigurationError, MemoryStore, SQLiteStore, store_from_url

ROOT = Path(__file__).resolve().parents[2]

PUBLIC_MODULES = [
    "receiver_kit",
    "receiver_kit.events",
    "receiver_kit.exceptions",
    "receiver_kit.verification",
    "receiver_kit.testing",
    "receiver_kit.idempotency",
    "receiver_kit.idempotency.base",
    "receiver_kit.idempotency.memory",
    "receiver_kit.idempotency.sqlite",
    "receiver_kit.idempotency.redis",
    "receiver_kit.contrib.starlette",
    "receiver_kit.contrib.fastapi",
    "receiver_kit.contrib.flask",
    "receiver_kit.contrib.django",
]


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_name_in_all_exists(name):
    """Each public module's __all__ lists only names it really has."""
    module = importlib.import_module(name)
    assert module.__all__, f"{name} has an empty __all__"
    for attribute in module.__all__:
        assert getattr(module, attribute) is not None, f"{name}.{attribute}"


def test_core_imports_only_the_standard_library():
    """Importing the core, the stores and the testing helpers pulls in no framework."""
    result = run_python(
        "import sys, receiver_kit, receiver_kit.testing, receiver_kit.idempotency\n"
        "from receiver_kit.idempotency import MemoryStore, SQLiteStore\n"
        "bad = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'starlette', 'fastapi', 'flask', 'werkzeug', 'django', 'redis', 'asgiref'})\n"
        "print(bad)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("module", "blocked", "extra"),
    [
        ("receiver_kit.contrib.flask", "flask", "flask"),
        ("receiver_kit.contrib.fastapi", "fastapi", "fastapi"),
        ("receiver_kit.contrib.django", "django", "django"),
        ("receiver_kit.idempotency.redis", "redis", "redis"),
    ],
)
def test_missing_extra_names_the_pip_install_line(module, blocked, extra):
    """Without its framework, an integration raises an ImportError naming the extra."""
    result = run_python(
        f"import sys; sys.modules[{blocked!r}] = None\n"
        "from receiver_kit import MissingDependencyError\n"
        f"try:\n    import {module}\n"
        "except MissingDependencyError as exc:\n"
        "    assert isinstance(exc, ImportError)\n    print(exc)\n"
    )
    assert result.returncode == 0, result.stderr
    assert f"pip install 'license-webhook-relay[{extra}]'" in result.stdout


def test_redis_store_is_lazily_exported():
    """receiver_kit.idempotency.RedisStore resolves on demand."""
    from receiver_kit.idempotency import RedisStore
    from receiver_kit.idempotency.redis import RedisStore as Direct

    assert RedisStore is Direct


def test_store_from_url(tmp_path):
    """memory://, sqlite:/// (relative and absolute) and redis:// URLs build their stores."""
    assert isinstance(store_from_url("memory://"), MemoryStore)
    absolute = store_from_url(f"sqlite:///{tmp_path}/a.db", lease_s=5, ttl_s=50)
    assert isinstance(absolute, SQLiteStore)
    assert absolute.path == tmp_path / "a.db"
    assert absolute.lease_s == 5
    relative = store_from_url("sqlite:///relative.db")
    assert isinstance(relative, SQLiteStore)
    assert not relative.path.is_absolute()
    redis_store = store_from_url("redis://127.0.0.1:6379/0")
    assert type(redis_store).__name__ == "RedisStore"
    redis_store.close()


@pytest.mark.parametrize("url", ["mongo://user:hunter2@db/x", "sqlite://", "postgres://x", ""])
def test_store_from_url_rejects_unknown_urls_without_leaking_passwords(url):
    """Unsupported URLs are ConfigurationError; a password in the URL is redacted."""
    with pytest.raises(ConfigurationError) as info:
        store_from_url(url)
    assert "hunter2" not in str(info.value)


def test_store_settings_are_validated():
    """Lease and TTL must be positive numbers of seconds."""
    for kwargs in ({"lease_s": 0}, {"ttl_s": -1}, {"lease_s": float("inf")}, {"ttl_s": True}):
        with pytest.raises(ConfigurationError):
            MemoryStore(**kwargs)


def test_exception_tree():
    """Every kit error derives from ReceiverKitError and carries its HTTP answer."""
    from receiver_kit import exceptions

    for name in exceptions.__all__:
        cls = getattr(exceptions, name)
        assert issubclass(cls, receiver_kit.ReceiverKitError)
    assert issubclass(receiver_kit.InvalidSecretError, ValueError)
    assert receiver_kit.MalformedPayloadError.status_code == 400
    assert receiver_kit.InvalidSignatureError.status_code == 401
    assert receiver_kit.EventInProgressError.status_code == 409
    assert receiver_kit.StoreError.status_code == 503
