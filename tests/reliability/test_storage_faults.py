"""Storage faults: a full disk and a locked database answer 503, never a 2xx, and recover."""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import endpoint_yaml
from tests.support import Receiver, RelayThread

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs: a real filesystem that really runs out of space."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot mount a small tmpfs in CI: {result.stderr.strip()}")
        pytest.skip(f"mounting a tmpfs needs root: {result.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb") as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()
    return filler


def test_disk_full_answers_503_and_recovers(
    make_relay: Callable[..., RelayThread], receiver: Receiver, small_disk: Path
) -> None:
    """With no space left, ingest is refused with 503 + Retry-After; freed space heals it."""
    relay = make_relay(endpoint_yaml("crm", receiver.url), db=small_disk / "relay.db")
    assert relay.post(b'{"type": "license.created", "n": 0}').status_code == 202
    relay.wait_statuses({"delivered": 1})
    filler = fill(small_disk)
    statuses = []
    for i in range(30):
        body = f'{{"type": "license.created", "n": {i + 1}, "pad": "{uuid.uuid4().hex * 30}"}}'
        answer = relay.post(body)
        statuses.append(answer.status_code)
        if answer.status_code == 503:
            assert answer.headers["retry-after"]
            assert answer.json()["type"] == "urn:relay:problem:storage-unavailable"
    assert 503 in statuses
    refused_from = statuses.index(503)
    assert set(statuses[refused_from:]) == {503}, f"a 2xx after the disk filled: {statuses}"
    accepted = statuses.count(202)
    ready = httpx.get(relay.url + "/readyz")
    assert ready.status_code == 503
    filler.unlink()
    assert relay.post(b'{"type": "license.created", "n": 99}').status_code == 202
    relay.wait_statuses({"delivered": accepted + 2}, timeout=15)
    assert httpx.get(relay.url + "/readyz").status_code == 200
    assert relay.rows("PRAGMA integrity_check") == [("ok",)]
