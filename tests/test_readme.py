"""README's examples are real output: its commands are run and what they print compared.

Only what changes from run to run is masked (ids, times, durations, ports);
everything else must match the README character for character, so an answer
or a message that drifts fails here first.
"""

from __future__ import annotations

import itertools
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from receiver_kit.contrib._common import duplicate_body
from relay import __version__
from relay.signing import generate_secret
from tests.admin.harness import run_cli
from tests.support import ROOT, Receiver, RelayThread, free_port, storage_url

README = (ROOT / "README.md").read_text(encoding="utf-8")
CRM_ERROR = b'{"error": "column \\"license_key\\" does not exist"}'
_MASKS = [
    (re.compile(r"evt_[0-9a-f]{28}"), "evt_…"),
    (re.compile(r"dlv_\d+"), "dlv_…"),
    (re.compile(r"\d+(?:\.\d+)?ms\b"), "…ms"),
    (re.compile(r"\b(in|after) \d+s\b"), r"\1 …s"),
    (re.compile(r"^date: .*$", re.MULTILINE), "date: …"),
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:…"),
]


def mask(text: str) -> str:
    for pattern, replacement in _MASKS:
        text = pattern.sub(replacement, text)
    return text.rstrip("\n")


def block_after(marker: str) -> str:
    """The first fenced block after `marker` in the README, without its fences."""
    rest = README.split(marker, 1)[1]
    return rest.split("```", 2)[1].split("\n", 1)[1]


def console_output(command: str) -> str:
    """What the README prints under `$ command` in a console block, up to the next prompt."""
    after = README.split(f"$ {command}\n", 1)[1]
    return re.split(r"\n\n\$ |\n```", after, maxsplit=1)[0]


def matches_with_ellipsis(expected: str, actual: str) -> bool:
    """A README line `...` stands for any number of lines."""
    pattern = "\n".join(".*?" if line == "..." else re.escape(line)
                        for line in expected.splitlines())
    return re.fullmatch(pattern.replace("\n.*?\n", "(?:\n.*?)*\n"), actual, re.DOTALL) is not None


@dataclass
class Tour:
    """The bundled relay.yaml, served on a free port, delivering to a receiver that says 200."""

    config: Path
    relay: RelayThread
    crm_answer: list[tuple[int, bytes]]

    def cli(self, command: str) -> tuple[int, str, str]:
        args = shlex.split(command)
        assert args[0] in ("relay", ".venv/bin/relay"), command
        done = run_cli(*args[1:], "-c", str(self.config))
        return done.code, done.out, done.err


@pytest.fixture(scope="module")
def tour(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tour]:
    tmp = tmp_path_factory.mktemp("readme")
    crm_answer = [(500, CRM_ERROR)]
    example = Receiver().start()
    crm = Receiver(lambda i, r: (crm_answer[0][0], {}, crm_answer[0][1])).start()
    port = free_port()
    text = (ROOT / "relay.yaml").read_text()
    text = text.replace("listen: 127.0.0.1:8787", f"listen: 127.0.0.1:{port}")
    text = text.replace("storage: sqlite:///./relay.db", f"storage: {storage_url(tmp / 'r.db')}")
    text = text.replace("http://127.0.0.1:9000/webhooks", example.url + "/webhooks")
    text += (f"  - {{name: crm-sync, url: '{crm.url}/hooks/license', allow_http: true, "
             f"events: [order.created], secret: {generate_secret()}, "
             "retry_schedule: [5s, 1m]}\n")
    config = tmp / "relay.yaml"
    config.write_text(text)
    relay = RelayThread(config, port, tmp / "r.db").start()
    try:
        yield Tour(config, relay, crm_answer)
    finally:
        relay.stop()
        example.stop()
        crm.stop()


def test_the_tours_curl_prints_what_the_readme_shows(tour: Tour) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is missing: the README's curl example cannot be run")
    marker = "In another terminal, send an event the way a platform\nwould:"
    command = block_after(marker).replace("\\\n", " ").replace("localhost:8787", tour.relay.url)
    done = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=30,
                          check=True)
    shown = README.split(marker, 1)[1].split("```", 4)[3].split("\n", 1)[1]
    assert mask(done.stdout.replace("\r\n", "\n")) == mask(shown)


def test_relay_send_prints_what_the_readme_shows(tour: Tour) -> None:
    block = block_after("The CLI does the same, reading the listener and token from `relay.yaml`:")
    lines = block.splitlines()
    ran = 0
    for command, expected in itertools.pairwise(lines):
        if command.startswith(".venv/bin/relay "):
            code, out, err = tour.cli(command)
            assert code == 0, err
            assert mask(out) == mask(expected.removeprefix("# ")), command
            ran += 1
    assert ran == 2


def test_a_failing_then_fixed_relay_test_prints_what_the_readme_shows(tour: Tour) -> None:
    tour.crm_answer[0] = (500, CRM_ERROR)
    code, out, _ = tour.cli("relay test crm-sync")
    assert code == 1
    failed = console_output("relay test crm-sync")
    assert mask(out) == mask(failed)
    tour.crm_answer[0] = (200, b"")
    code, out, _ = tour.cli("relay test crm-sync")
    assert code == 0
    delivered = README.split("Fix the receiver, check it with a test event")[1]
    assert mask(out) == mask(delivered.split("$ relay test crm-sync\n", 1)[1].split("\n")[0])


def test_the_admin_api_and_receiver_kit_answers_are_the_ones_shown(tour: Tour) -> None:
    row = re.search(r"^\| `GET /healthz` \| `(\{.*?\})` ", README, re.MULTILINE)
    assert row
    healthz = httpx.get(tour.relay.url + "/healthz", timeout=10)
    assert healthz.text == row.group(1).replace("0.1.0", __version__)
    duplicate = re.search(r"^\| event id already processed \| `200` `(\{.*?\})`", README,
                          re.MULTILINE)
    assert duplicate
    assert duplicate.group(1) == duplicate_body("...").decode()


def test_relay_check_prints_what_the_readme_shows(tmp_path: Path) -> None:
    endpoint = block_after("# whsec_3q2+7w...\n```")
    endpoint_yaml = endpoint.split("endpoints:\n", 1)[1]
    config = tmp_path / "relay.yaml"
    config.write_text((ROOT / "relay.yaml").read_text() + endpoint_yaml)
    env_secret = {"CRM_WEBHOOK_SECRET": generate_secret()}
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "relay"), "check", "-c", "relay.yaml"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", **env_secret}, check=False)
    assert done.returncode == 0, done.stderr
    shown = block_after(".venv/bin/relay check -c relay.yaml\n```")
    assert matches_with_ellipsis(shown.rstrip("\n"), done.stdout.rstrip("\n")), done.stdout

    broken = endpoint_yaml.replace("https://crm.example.com", "http://crm.example.com")
    broken = broken.replace("    signature: standard\n",
                            "    signature: standard\n    retry_shedule: [5s, 1m]\n")
    config.write_text((ROOT / "relay.yaml").read_text() + broken)
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "relay"), "check", "-c", "relay.yaml"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", **env_secret}, check=False)
    assert done.returncode == 2
    errors = block_after("in `crm-sync`:")
    assert done.stderr.rstrip("\n") == errors.rstrip("\n")


def test_a_refused_reload_prints_what_the_readme_shows(tour: Tour) -> None:
    good = tour.config.read_text()
    tour.config.write_text(good.replace("  concurrency: 64\n", "  concurrency: zero\n", 1))
    try:
        code, _, err = tour.cli("relay reload")
    finally:
        tour.config.write_text(good)
    assert code == 2
    assert err.rstrip("\n") == console_output("relay reload")
    assert tour.cli("relay reload")[0] == 0
