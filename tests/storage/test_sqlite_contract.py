"""The storage contract on SQLite: one database file per test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from relay.storage.base import Storage
from relay.storage.sqlite import SQLiteStorage
from tests.storage.contract import StorageContract


class TestSQLiteStorage(StorageContract):
    shares_limits = False  # one process: its lanes enforce the limits exactly
    recovers_live_leases = True  # the lock file makes this process the only user
    wakes_other_instances = False  # the lock file admits no other instance

    @pytest.fixture
    def make_store(self, tmp_path: Path) -> Callable[[], Storage]:
        return lambda: SQLiteStorage(tmp_path / "relay.db")
