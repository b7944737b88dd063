"""SQLiteStore across real processes sharing one file."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from receiver_kit import ClaimStatus, SQLiteStore

ROOT = Path(__file__).resolve().parents[2]

RACER = textwrap.dedent(
    """
    import json, os, random, sys, time
    sys.path.insert(0, sys.argv[1])
    from receiver_kit import SQLiteStore

    db, go, count, seed = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    store = SQLiteStore(db)
    order = list(range(count))
    random.Random(seed).shuffle(order)
    while not os.path.exists(go):
        time.sleep(0.001)
    won = []
    for n in order:
        claim = store.claim(f"evt_{n}")
        if claim.acquired:
            won.append(n)
            time.sleep(0.0005)  # the handler runs while the claim is held
            store.complete(claim)
    print(json.dumps(won))
    """
)

DIER = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, sys.argv[1])
    from receiver_kit import SQLiteStore

    store = SQLiteStore(sys.argv[2])
    assert store.claim("evt_dead").acquired
    os._exit(17)  # killed mid-processing: no release, no complete
    """
)


def spawn(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, str(ROOT), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_racing_process_each_event_once(tmp_path):
    """Two processes claim the same 300 ids at once, in different orders: each id is
    processed by exactly one of them."""
    db, go = tmp_path / "claims.db", tmp_path / "go"
    SQLiteStore(db).purge()  # create the file and table up front
    racers = [spawn(RACER, str(db), str(go), "300", str(seed)) for seed in (1, 2)]
    time.sleep(0.3)  # let both import and wait at the start line
    go.touch()
    won = []
    for racer in racers:
        out, err = racer.communicate(timeout=60)
        assert racer.returncode == 0, err
        won.append(set(json.loads(out)))
    assert won[0].isdisjoint(won[1])
    assert won[0] | won[1] == set(range(300))
    assert won[0], "expected both processes to win some ids"
    assert won[1], "expected both processes to win some ids"
    assert SQLiteStore(db).claim("evt_7").status is ClaimStatus.DUPLICATE


def test_claim_of_a_killed_process_expires_after_the_lease(tmp_path):
    """A process that dies holding a claim blocks the id only until its lease expires."""
    db = tmp_path / "claims.db"
    dier = spawn(DIER, str(db))
    dier.communicate(timeout=30)
    assert dier.returncode == 17
    assert SQLiteStore(db).claim("evt_dead").status is ClaimStatus.IN_PROGRESS
    later = SQLiteStore(db, clock=lambda: time.time() + 61)
    assert later.claim("evt_dead").acquired


def test_connections_are_per_thread_and_close_cleanly(tmp_path):
    """A store used from many threads can be closed, then used again."""
    import threading

    store = SQLiteStore(tmp_path / "claims.db")
    results = []

    def work(n: int) -> None:
        results.append(store.claim(f"evt_{n}").acquired)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True] * 8
    store.close()
    assert store.claim("evt_0").status is ClaimStatus.IN_PROGRESS
    store.close()


def test_sqlite_store_refuses_memory_databases():
    """':memory:' would give every thread its own database: refused with a pointer."""
    from receiver_kit import ConfigurationError

    with pytest.raises(ConfigurationError, match="MemoryStore"):
        SQLiteStore(":memory:")


def test_construction_has_no_side_effect(tmp_path):
    """Building a SQLiteStore creates no file until the first claim."""
    path = tmp_path / "later.db"
    store = SQLiteStore(path)
    assert not path.exists()
    store.claim("evt_1")
    assert path.exists()
