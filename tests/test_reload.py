"""SIGHUP reload of relay.yaml in a running relay process."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from relay.signing import generate_secret
from tests.conftest import SECRET, endpoint_yaml
from tests.support import Receiver, RelayProcess, base_config, db_rows, free_port, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.both_backends]


def test_sighup_applies_a_valid_file_and_keeps_the_old_one_on_errors(
    make_receiver: Callable[..., Receiver], tmp_path: Path
) -> None:
    """Valid: new endpoint, rotated secret, removed endpoint held. Invalid: old config kept."""
    release = threading.Event()
    first = make_receiver(lambda i, r: ("hang", 1.5) if not release.is_set() else (200, {}, b""))
    second = make_receiver()
    port = free_port()
    db = tmp_path / "relay.db"
    config = tmp_path / "relay.yaml"
    config.write_text(base_config(port, db, endpoint_yaml("first", first.url),
                                  log_level="info"))
    relay = RelayProcess(config, port, tmp_path / "relay.log").start()
    try:
        assert relay.post({"type": "license.created", "n": 0}).status_code == 202
        first.wait_for(1)  # this attempt is in flight during the reload below

        new_secret = generate_secret()
        config.write_text(base_config(
            port, db,
            endpoint_yaml("first", first.url, events=["order.*"])
            + endpoint_yaml("second", second.url, secret=[new_secret, SECRET]),
            log_level="info",
        ))
        assert relay.proc is not None
        relay.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "config_reloaded" in (tmp_path / "relay.log").read_text(),
                   message="the reload to be logged")
        answer = relay.post({"type": "license.expired", "n": 1}).json()
        assert answer["deliveries"] == 1  # only "second" takes license.* now
        [request] = second.wait_for(1)
        signatures = request.header("webhook-signature") or ""
        assert len(signatures.split(" ")) == 2
        Webhook(new_secret).verify(request.body, request.headers)
        # The attempt that was in flight during the reload completes.
        wait_until(lambda: db_rows(db, "SELECT status FROM deliveries WHERE id = 1")
                   == [("delivered",)], message="the in-flight delivery to complete")

        config.write_text("endpoints: [{name: broken}]\n")
        relay.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "reload_rejected" in (tmp_path / "relay.log").read_text(),
                   message="the bad file to be rejected")
        assert "endpoints[0].url: is required" in (tmp_path / "relay.log").read_text()
        assert relay.post({"type": "license.updated"}).json()["deliveries"] == 1
        second.wait_for(2)

        # Removing "second": its new deliveries wait, and come back when it returns.
        config.write_text(base_config(port, db, endpoint_yaml("first", first.url,
                                                              events=["order.*"]),
                                      log_level="info"))
        relay.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: (tmp_path / "relay.log").read_text().count("config_reloaded") == 2,
                   message="the second reload")
        release.set()
        assert relay.post({"type": "order.created"}).json()["deliveries"] == 1
        first.wait_for(2)
        time.sleep(0.3)
        assert len(second.requests) == 2
        assert relay.terminate() == 0
    finally:
        if relay.proc is not None and relay.proc.poll() is None:
            relay.proc.kill()
