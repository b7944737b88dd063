"""Three relay processes on one PostgreSQL queue: every delivery once, none lost on a crash."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import endpoint_yaml
from tests.postgres.conftest import Cluster
from tests.postgres.pg import PgClient
from tests.postgres.receiver import FastReceiver
from tests.support import RelayProcess, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

# Short leases so a dead relay's work is taken over within seconds, not minutes.
FAST_LEASES = "delivery:\n  timeout: 1s\n  lease_margin: 1s\n  retry_schedule: [100ms, 200ms]\n" \
              "  jitter: 0\n  allow_networks: [127.0.0.0/8]\n  shutdown_grace: 5s\n" \
              "  concurrency: 64\n"


TYPES = ("license.created", "order.created", "invoice.paid")


def post_batches(relays: Cluster, count: int, start: int = 0) -> None:
    """`count` events in batches of 500, spread over the relays, three types in turn."""
    def post(first: int) -> None:
        relay = relays[(first // 500) % len(relays)]
        items = [{"type": TYPES[n % 3], "n": n}
                 for n in range(first, min(first + 500, start + count))]
        response = httpx.post(relay.url + "/v1/events/batch", content=json.dumps(items),
                              headers={"Content-Type": "application/json"}, timeout=30)
        assert response.status_code == 202, response.text

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(post, range(start, start + count, 500)))


def delivered_by(relay: RelayProcess) -> int:
    """Deliveries this relay process brought to `delivered`, from its /metrics."""
    text = httpx.get(relay.url + "/metrics", timeout=10).text
    return sum(int(float(n)) for n in re.findall(
        r'^relay_deliveries_total\{[^}]*outcome="delivered"[^}]*\} (\S+)$', text, re.M))


def test_ten_thousand_events_three_relays_each_delivery_attempted_once(
    make_cluster: Callable[..., Cluster], fast_receiver: FastReceiver, pg: PgClient,
    schema: str,
) -> None:
    """10,000 events, three endpoints, three relays: each delivery attempted exactly once."""
    url = fast_receiver.url
    relays = make_cluster(3, endpoint_yaml("licenses", url + "/licenses", events=["license.*"])
                          + endpoint_yaml("orders", url + "/orders", events=["order.*"])
                          + endpoint_yaml("billing", url + "/billing", events=["invoice.*"],
                                          max_in_flight=20))
    post_batches(relays, 10_000)
    wait_until(lambda: fast_receiver.total() >= 10_000, timeout=60, interval=0.2,
               message=f"10,000 deliveries (got {fast_receiver.total()})")
    time.sleep(0.3)  # anything claimed twice would arrive now
    assert fast_receiver.total() == 10_000
    assert fast_receiver.duplicates() == {}
    for path, share in (("/licenses", 3_334), ("/orders", 3_333), ("/billing", 3_333)):
        assert len(set(fast_receiver.log(path).ids)) == share, path
    wait_until(lambda: pg.fetch("SELECT status, count(*) FROM deliveries GROUP BY status",
                                schema=schema) == [("delivered", 10_000)],
               timeout=10, message="every delivery recorded as delivered")
    assert pg.fetch("SELECT count(*) FROM attempts", schema=schema) == [(10_000,)]
    shares = [delivered_by(relay) for relay in relays]
    assert sum(shares) == 10_000
    assert all(share > 0 for share in shares), f"a relay did no work: {shares}"


def test_a_killed_relay_s_work_is_finished_by_the_others_after_its_leases_expire(
    make_cluster: Callable[..., Cluster], pg: PgClient, schema: str,
) -> None:
    """SIGKILL one of three mid-run: its in-flight deliveries are retried elsewhere; none lost."""
    receiver = FastReceiver(delays={"/slow": 0.2}).start()
    try:
        relays = make_cluster(3, endpoint_yaml("slow", receiver.url + "/slow", timeout="1s",
                                               max_in_flight=30), extra=FAST_LEASES)
        # Enough work that the victim still holds leases when it is killed, even
        # on a loaded machine (the whole run takes several seconds).
        post_batches(relays, 1000)
        wait_until(lambda: receiver.total() >= 150, timeout=20, message="the run to be going")
        # The relay holding the most leases right now (lease_owner is host:pid).
        pids = {relay.proc.pid: relay for relay in relays if relay.proc is not None}
        owners = pg.fetch("SELECT lease_owner, count(*) FROM deliveries WHERE "
                          "status = 'delivering' GROUP BY 1 ORDER BY 2 DESC", schema=schema)
        victim = next(pids[int(owner.rsplit(":", 1)[1])] for owner, _ in owners
                      if int(owner.rsplit(":", 1)[1]) in pids)
        victim.kill()
        assert victim.proc is not None and victim.proc.returncode == -9
        wait_until(lambda: len(set(receiver.log("/slow").ids)) >= 1000, timeout=60,
                   interval=0.1, message=f"1000 distinct deliveries (got "
                                         f"{len(set(receiver.log('/slow').ids))})")
        wait_until(lambda: pg.fetch("SELECT status, count(*) FROM deliveries GROUP BY status",
                                    schema=schema) == [("delivered", 1000)],
                   timeout=10, message="every delivery recorded as delivered")
    finally:
        receiver.stop()
    lost = pg.fetch("SELECT count(*) FROM attempts WHERE error LIKE 'interrupted: %lease%'",
                    schema=schema)[0][0]
    assert 1 <= lost <= 30, "the killed relay had attempts in flight, at most max_in_flight"
    # At least once: only what the dead relay had in flight may have been sent twice.
    assert sum(n - 1 for n in receiver.duplicates().values()) <= lost
