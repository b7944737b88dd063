"""The operator commands of the `relay` CLI, run as subprocesses against real relays."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from relay.cli import relative, table
from tests.admin.harness import ADMIN_YAML, DEAD_URL, Ops, Switch, receiver, run_cli
from tests.conftest import endpoint_yaml
from tests.support import ROOT, base_config, free_port, wait_until

pytestmark = pytest.mark.both_backends


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_endpoints_table_and_json(states_relay: Ops) -> None:
    """`relay endpoints` prints one aligned row per endpoint; --json is the API's answer."""
    result = states_relay.cli("endpoints")
    assert result.code == 0, result.err
    header, *rows = lines(result.out)
    assert header.split() == ["NAME", "STATUS", "LAST", "SENT", "NEXT", "RETRY", "PENDING",
                              "SCHEDULED", "HELD", "FAILED", "DELIVERED", "URL"]
    status_column = header.index("STATUS")
    table_rows = {row.split()[0]: row for row in rows[:5]}
    assert {name: row[status_column:].split()[0] for name, row in table_rows.items()} == {
        "good": "ok", "flaky": "error", "broken": "error", "paused": "paused", "slow": "ok"}
    assert "in 59m" in table_rows["flaky"]  # its retry, an hour out
    assert any(line.strip().startswith("broken: error since") for line in rows)
    as_json = states_relay.cli("endpoints", "--json")
    assert as_json.code == 0
    assert [e["name"] for e in as_json.json()["data"]] == list(table_rows)


def test_deliveries_filters_and_paging(states_relay: Ops) -> None:
    """`relay deliveries` filters by status, endpoint and type, and pages with --cursor."""
    failed = states_relay.cli("deliveries", "--status", "failed")
    assert failed.code == 0, failed.err
    header, *rows = lines(failed.out)
    assert header.split()[:5] == ["ID", "CREATED", "ENDPOINT", "TYPE", "STATUS"]
    assert len(rows) == 2
    assert all(" broken " in row and " failed " in row for row in rows)
    # created within the last second on a fast machine, a few seconds ago on a slow one
    assert all("500" in row and ("ago" in row or "now" in row) for row in rows)
    first = states_relay.cli("deliveries", "--endpoint", "good", "--limit", "1")
    *_, more = lines(first.out)
    assert more.startswith("more: add --cursor ")
    second = states_relay.cli("deliveries", "--endpoint", "good", "--limit", "1",
                              "--cursor", more.split()[-1])
    ids = [lines(r.out)[1].split()[0] for r in (first, second)]
    assert ids[0] != ids[1]
    orders = states_relay.cli("deliveries", "--type", "order.created", "--json")
    assert {d["event_type"] for d in orders.json()["data"]} == {"order.created"}
    none = states_relay.cli("deliveries", "--since", "2999-01-01T00:00:00Z")
    assert none.out.strip() == "no deliveries match"


def test_delivery_and_event_detail(states_relay: Ops) -> None:
    """`relay delivery ID` shows every attempt and the response; `relay event ID` the rest."""
    [failed, _] = states_relay.get("/v1/deliveries", endpoint="broken").json()["data"]
    result = states_relay.cli("delivery", failed["id"])
    assert result.code == 0, result.err
    out = result.out
    assert out.startswith(f"{failed['id']}  failed  broken  ")
    assert f"event         {failed['event_id']}" in out
    attempt_rows = [line for line in out.splitlines() if line[:1].isdigit()]
    assert len(attempt_rows) == 3
    assert all(" 500 " in row for row in attempt_rows)
    assert 'response to attempt 3 (500):\n  {"error": "database is down"}' in out
    event = states_relay.cli("event", failed["event_id"])
    assert event.code == 0, event.err
    assert f'"type": "{failed["event_type"]}"' in event.out
    delivery_rows = [line for line in event.out.splitlines() if line.startswith("dlv_")]
    assert len(delivery_rows) == 5
    assert any(" broken " in row and " failed " in row for row in delivery_rows)


def test_errors_and_exit_codes(states_relay: Ops, tmp_path: Path) -> None:
    """404 exits 1, a filter the relay rejects exits 2, a stopped relay exits 1 and says so."""
    missing = states_relay.cli("delivery", "dlv_987654")
    assert missing.code == 1
    assert missing.out == ""
    assert missing.err.startswith("relay: error 404: no delivery dlv_987654")
    bad = states_relay.cli("deliveries", "--status", "lost")
    assert bad.code == 2
    assert "status: 'lost' is not a delivery state" in bad.err
    assert states_relay.cli("recover", "good").code == 2  # --since is required
    wrong_token = tmp_path / "wrong.yaml"
    wrong_token.write_text(states_relay.config_path.read_text().replace(
        "t0p-admin-token", "not-the-token"))
    denied = states_relay.cli("endpoints", config=wrong_token)
    assert denied.code == 1
    assert "error 401" in denied.err
    assert "admin.token" in denied.err
    stopped = tmp_path / "stopped.yaml"
    stopped.write_text(base_config(free_port(), tmp_path / "none.db", endpoint_yaml("a", DEAD_URL)))
    for command in (["endpoints"], ["deliveries"], ["test", "a"], ["pause", "a"]):
        result = run_cli(*command, "-c", str(stopped))
        assert result.code == 1, command
        assert "no relay is answering at http://127.0.0.1:" in result.err


def test_test_pause_resume_retry_recover(make_ops: Callable[..., Ops]) -> None:
    """The action commands print what they did and exit 1 only when the action failed."""
    switch = Switch(200)
    live = receiver(switch)
    ops = make_ops(endpoint_yaml("live", live.url + "/hooks")
                   + endpoint_yaml("dead", DEAD_URL, retry_schedule=["1h"]), {"live": live})
    delivered = ops.cli("test", "live")
    assert delivered.code == 0, delivered.err
    assert delivered.out.startswith("live: test delivered, 200 in ")
    dead = ops.cli("test", "dead")
    assert dead.code == 1
    assert dead.out.startswith("dead: test failed after ")
    assert "next attempt in 59m" in dead.out
    as_json = ops.cli("test", "dead", "--json")
    assert as_json.code == 1
    assert as_json.json()["outcome"] == "failed"
    paused = ops.cli("pause", "dead")
    assert paused.code == 0
    assert paused.out.strip() == ("dead paused: 2 waiting deliveries held; "
                                  "`relay resume dead` sends them")
    resumed = ops.cli("resume", "dead")
    assert resumed.out.strip() == "dead resumed (error): 2 held deliveries released"
    switch.status = 500
    ops.send()
    ops.wait_counts("live", failed=1)
    switch.status = 200
    [failed] = ops.get("/v1/deliveries", endpoint="live", status="failed").json()["data"]
    retried = ops.cli("retry", failed["id"])
    assert retried.code == 0, retried.err
    assert retried.out.strip() == f"{failed['id']} queued: scheduled, due now (was failed)"
    ops.wait_counts("live", delivered=2, failed=0)
    nothing = ops.cli("recover", "live", "--since", "1h")
    assert nothing.code == 0
    assert nothing.out.startswith("live: nothing to requeue, no delivery failed since ")
    assert ops.cli("pause", "nope").code == 1


@contextlib.contextmanager
def relay_process(config: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`relay run -c FILE` in its own process, stopped with SIGTERM like a supervisor would."""
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "relay.cli", "run", "-c", str(config)],
                                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)

    def healthy() -> bool:
        assert proc.poll() is None, log.read_text()
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        return False

    try:
        wait_until(healthy, 15, interval=0.05, message="`relay run` to answer")
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()


@pytest.mark.slow
def test_operator_story_break_find_fix_recover(tmp_path: Path) -> None:
    """As in the README: break a receiver, find the failure, read it, fix, recover, delivered."""
    switch = Switch(500, b'{"error": "column license_key does not exist"}')
    crm = receiver(switch)
    port = free_port()
    config = tmp_path / "relay.yaml"
    config.write_text(base_config(port, tmp_path / "relay.db",
                                  endpoint_yaml("crm", crm.url + "/hooks"), ADMIN_YAML))

    def relay(*args: str) -> tuple[int, str]:
        result = run_cli(*args, "-c", str(config))
        return result.code, result.out + result.err

    try:
        with relay_process(config, port, tmp_path / "relay.log"):
            for key in ("LIC-1", "LIC-2", "LIC-3"):
                code, out = relay("send", "license.created", "--data",
                                  json.dumps({"licenseKey": key}))
                assert code == 0, out
            wait_until(lambda: relay("deliveries", "--status", "failed", "--json")[1].count(
                '"status": "failed"') == 3, 15, message="three failed deliveries")
            code, out = relay("endpoints")
            assert code == 0
            assert lines(out)[1].split()[:2] == ["crm", "error"]
            code, out = relay("deliveries", "--status", "failed")
            failed_ids = [line.split()[0] for line in lines(out)[1:]]
            assert len(failed_ids) == 3
            code, out = relay("delivery", failed_ids[0])
            assert "column license_key does not exist" in out
            switch.status, switch.body = 200, b"ok"
            code, out = relay("recover", "crm", "--since", "1h")
            assert code == 0
            assert out.startswith("crm: requeued 3 deliveries failed since ")
            wait_until(lambda: relay("deliveries", "--status", "delivered", "--json")[1].count(
                '"status": "delivered"') == 3, 15, message="the recovered deliveries")
            code, out = relay("deliveries", "--status", "failed")
            assert out.strip() == "no deliveries match"
            code, out = relay("endpoints")
            assert lines(out)[1].split()[:2] == ["crm", "ok"]
        assert sorted(json.loads(b)["data"]["licenseKey"] for b in crm.bodies()[-3:]) == [
            "LIC-1", "LIC-2", "LIC-3"]
    finally:
        crm.stop()


def test_relative_times_and_tables() -> None:
    """Times read as people say them; columns line up whatever their width."""
    now = 1_800_000_000.0

    def at(offset: float) -> str:
        from relay.timefmt import iso

        text = iso(now + offset)
        assert text is not None
        return text

    assert relative(at(-0.2), now) == "now"
    assert relative(at(-42), now) == "42s ago"
    assert relative(at(-185), now) == "3m ago"
    assert relative(at(240), now) == "in 4m"
    assert relative(at(-7300), now) == "2h 1m ago"
    assert relative(at(3 * 86400 + 5), now) == "in 3d"
    assert relative(None, now) == "-"
    assert table(("A", "LONGER"), [["wide cell", None], ["x", "y"]]).splitlines() == [
        "A          LONGER", "wide cell  -", "x          y"]


def test_event_whose_body_is_not_json_for_the_api_shows_its_text(states_relay: Ops) -> None:
    """`relay event` prints `payload_text` for a body the API cannot give back as JSON."""
    response = states_relay.relay.post('{"type": "odd.thing", "v": 1e400}')
    assert response.status_code == 202, response.text
    event = states_relay.cli("event", response.json()["id"])
    assert event.code == 0, event.err
    assert '"v": 1e400' in event.out
    assert "null" not in event.out.splitlines()[1]
