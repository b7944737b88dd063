"""`storage: postgresql://...` in relay.yaml: parsing, options, redaction, the backend picked."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from relay.config import parse_config, redact_url
from relay.exceptions import ConfigError, StorageError, StorageUnavailable
from relay.storage import create_storage
from relay.storage.postgres import PostgresStorage
from relay.storage.postgres.errors import wrap_error
from relay.storage.postgres.listener import NOTIFY_CHUNK, payloads
from relay.storage.postgres.store import channel_name
from tests.admin.harness import run_cli
from tests.support import TEST_SECRETS_KEY

KEY = f"secrets_key: {TEST_SECRETS_KEY}\n"


def test_postgres_urls_and_pool_options_are_accepted() -> None:
    """Both schemes parse; pool_size and timeout are taken out of what the driver sees."""
    config = parse_config("storage: postgres://relay:pw@db:5433/relay"
                          "?pool_size=20&timeout=5s&sslmode=require\n" + KEY)
    pg = config.postgres
    assert pg is not None and config.sqlite_path is None
    assert (pg.pool_size, pg.timeout_s) == (20, 5.0)
    assert pg.dsn == "postgresql://relay:pw@db:5433/relay?sslmode=require"
    assert "pw" not in repr(pg)
    storage = create_storage(config)
    assert isinstance(storage, PostgresStorage)
    assert (storage.pool_size, storage.timeout_s) == (20, 5.0)


@pytest.mark.parametrize(("url", "problem"), [
    ("postgresql://db", "no database name"),
    ("postgresql://db/relay?pool_size=1", "pool_size: expected a whole number from 2"),
    ("postgresql://db/relay?timeout=soon", "timeout:"),
    ("mysql://db/relay", "expected sqlite:///PATH"),
])
def test_bad_postgres_urls_name_the_problem(url: str, problem: str) -> None:
    """A bad storage URL is a config error under `storage`, saying what is wrong."""
    with pytest.raises(ConfigError) as caught:
        parse_config(f"storage: {url}\n")
    assert caught.value.errors[0].startswith("storage: ")
    assert problem in caught.value.errors[0]


def test_passwords_never_appear_in_the_summary() -> None:
    """`relay check` and the start-up log show the URL with the password masked."""
    assert redact_url("postgresql://relay:s3cret@db/relay") == "postgresql://relay:***@db/relay"
    assert redact_url("postgresql://db/relay?password=s3cret") == \
        "postgresql://db/relay?password=***"
    assert redact_url("sqlite:///./relay.db") == "sqlite:///./relay.db"
    summary = parse_config("storage: postgresql://relay:s3cret@db/relay\n" + KEY).summary()
    assert "s3cret" not in summary and "postgresql://relay:***@db/relay" in summary


def test_relay_check_accepts_a_postgres_url(tmp_path: Path) -> None:
    """The CLI validates a PostgreSQL config without connecting, and hides the password."""
    config = tmp_path / "relay.yaml"
    config.write_text("storage: postgresql://relay:s3cret@db.internal/relay?pool_size=4\n"
                      + KEY)
    result = run_cli("check", "-c", str(config))
    assert result.code == 0, result.err
    assert "postgresql://relay:***@db.internal/relay?pool_size=4" in result.out
    assert "s3cret" not in result.out + result.err


@pytest.mark.parametrize("command", ["check", "run"])
def test_postgres_without_a_secrets_key_is_refused(tmp_path: Path, command: str) -> None:
    """`relay check` and `relay run` on PostgreSQL without secrets_key exit 2, naming the
    key and how to make one, before anything connects (the host does not exist)."""
    config = tmp_path / "relay.yaml"
    config.write_text("storage: postgresql://relay@db.invalid/relay\n")
    result = run_cli(command, "-c", str(config), timeout=30)
    assert result.code == 2, (result.out, result.err)
    assert "secrets_key: required with postgresql:// storage" in result.err
    assert "relay keygen --secrets-key" in result.err
    with pytest.raises(ConfigError) as caught:
        parse_config("storage: postgresql://db/relay\nsecrets_key: ${RELAY_SECRETS_KEY}\n",
                     env={})
    [only] = caught.value.errors  # an unset variable is named, not the rule again
    assert only.startswith("secrets_key: environment variable RELAY_SECRETS_KEY is not set")


def test_lease_margin_is_configurable() -> None:
    """delivery.lease_margin sets how long after its timeout a dead relay's claim is freed."""
    assert parse_config("delivery: {lease_margin: 2s}\n").delivery.lease_margin_s == 2.0
    assert parse_config("").delivery.lease_margin_s == 60.0
    with pytest.raises(ConfigError, match=r"delivery\.lease_margin"):
        parse_config("delivery: {lease_margin: 0s}\n")


def test_driver_errors_map_to_the_relay_tree() -> None:
    """Outages, read-only and full disks are 503s; other database errors are not."""
    for unavailable in (asyncpg.ReadOnlySQLTransactionError("read-only"),
                        asyncpg.DiskFullError("no space"),
                        asyncpg.CannotConnectNowError("starting up"),
                        asyncpg.AdminShutdownError("terminating"),
                        ConnectionRefusedError(111, "refused"), TimeoutError()):
        assert isinstance(wrap_error(unavailable), StorageUnavailable), unavailable
    other = wrap_error(asyncpg.UndefinedTableError("no such table"))
    assert isinstance(other, StorageError) and not isinstance(other, StorageUnavailable)


def test_notify_payloads_stay_under_the_server_limit() -> None:
    """Many endpoint names are split into several notifications of at most 8000 bytes."""
    names = [f"endpoint-{n:04d}" for n in range(2000)]
    chunks = payloads(names)
    assert len(chunks) > 1 and all(len(c) <= NOTIFY_CHUNK for c in chunks)
    assert sorted(n for c in chunks for n in c.split(",")) == names


def test_each_schema_has_its_own_channel() -> None:
    """Two deployments in two schemas of one database do not wake each other."""
    assert channel_name("public") == "relay_wakeup"
    assert channel_name("tenant_a") != channel_name("tenant_b")
    assert len(channel_name("x" * 200)) <= 63
