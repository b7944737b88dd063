"""The examples run as documented: FastAPI (in-process and as a real server), Flask, Django."""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from starlette.testclient import TestClient

from receiver_kit.testing import signed_request

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
LICENSE_CREATED = {
    "type": "license.created",
    "data": {"licenseKey": "ABCD-1234", "product": "Babel Obfuscator", "seats": 5},
}


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_fastapi_example_verifies_deduplicates_and_prints(tmp_path, capsys):
    """create_app() receives, prints one line per event, and answers duplicates."""
    example = load("fastapi_receiver")
    client = TestClient(example.create_app(SECRET, "standard", tmp_path / "events.db"))
    body, headers = signed_request(LICENSE_CREATED, SECRET, msg_id="evt_demo_1")
    first = client.post("/webhooks", content=body, headers=headers)
    assert first.json() == {"received": "evt_demo_1"}
    line = capsys.readouterr().out
    assert "license.created" in line
    assert "evt_demo_1" in line
    assert "licenseKey=ABCD-1234" in line
    assert client.post("/webhooks", content=body, headers=headers).json()["duplicate"] is True
    assert capsys.readouterr().out == ""
    headers["webhook-signature"] = "v1,forged"
    assert client.post("/webhooks", content=body, headers=headers).status_code == 401
    assert client.get("/received").json()[0]["id"] == "evt_demo_1"
    assert (tmp_path / "events.db").exists()


def test_fastapi_example_hex_scheme(tmp_path):
    """The same app factory serves the x-webhook scheme."""
    example = load("fastapi_receiver")
    client = TestClient(example.create_app("plain-secret", "x-webhook", tmp_path / "e.db"))
    body, headers = signed_request(
        {"event_type": "license.expiring", "payload": {"license_code": "LIC-ABC-123"}},
        "plain-secret",
        scheme="x-webhook",
    )
    assert client.post("/webhooks", content=body, headers=headers).status_code == 200


def test_fastapi_example_runs_as_a_script(tmp_path):
    """`python examples/fastapi_receiver.py --port N` serves real HTTP and logs the event."""
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("RELAY_DEMO_SECRET", None)
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "fastapi_receiver.py"), "--port", str(port),
         "--db", str(tmp_path / "events.db")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "the example did not start"
            time.sleep(0.1)
        body, headers = signed_request(LICENSE_CREATED, SECRET, msg_id="evt_script_1")
        answer = httpx.post(base + "/webhooks", content=body, headers=headers, timeout=5)
        assert answer.status_code == 200
        answer = httpx.post(base + "/webhooks", content=body, headers=headers, timeout=5)
        assert answer.json()["duplicate"] is True
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert f"127.0.0.1:{port}/webhooks" in output
    assert "license.created" in output
    assert output.count("evt_script_1") == 1


def test_flask_example(tmp_path, caplog):
    """The Flask example verifies, deduplicates and logs the license key."""
    example = load("flask_receiver")
    client = example.create_app(SECRET, "standard", tmp_path / "events.db").test_client()
    body, headers = signed_request(LICENSE_CREATED, SECRET, msg_id="evt_flask_1")
    with caplog.at_level(logging.INFO, logger="license_events"):
        assert client.post("/webhooks", data=body, headers=headers).json == {
            "received": "evt_flask_1"
        }
        duplicate = client.post("/webhooks", data=body, headers=headers)
    assert duplicate.json["duplicate"] is True
    messages = [r.getMessage() for r in caplog.records if r.name == "license_events"]
    assert messages == ["license.created evt_flask_1 license=ABCD-1234"]


def test_django_example_project(tmp_path):
    """The Django project migrates, passes `check`, and receives through its real URLconf."""
    env = {**os.environ, "RELAY_DEMO_DB": str(tmp_path / "db.sqlite3")}
    manage = EXAMPLES / "django_receiver" / "manage.py"
    for command in (["migrate", "-v", "0"], ["check"]):
        result = subprocess.run(
            [sys.executable, str(manage), *command], env=env, capture_output=True, text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
    script = textwrap.dedent(
        f"""
        import json, os, sys
        sys.path[:0] = [{str(EXAMPLES / "django_receiver")!r}, {str(ROOT)!r}]
        os.environ["DJANGO_SETTINGS_MODULE"] = "receiver_project.settings"
        import django
        django.setup()
        from django.test import Client
        from receiver_kit.testing import signed_request
        body, headers = signed_request({LICENSE_CREATED!r}, {SECRET!r}, msg_id="evt_dj_1")
        headers.pop("Content-Type")
        client = Client(enforce_csrf_checks=True)
        answers = [client.post("/webhooks", data=body, content_type="application/json",
                               headers=headers) for _ in range(2)]
        headers["webhook-signature"] = "v1,forged"
        answers.append(client.post("/webhooks", data=body, content_type="application/json",
                                   headers=headers))
        print(json.dumps([[a.status_code, a.content.decode()] for a in answers]))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    (ok, first), (dup, second), (forged, _) = __import__("json").loads(result.stdout)
    assert (ok, dup, forged) == (200, 200, 401)
    assert "evt_dj_1" in first
    assert '"duplicate":true' in second
    assert "license.created evt_dj_1 license=ABCD-1234" in result.stderr


@pytest.mark.parametrize("name", ["fastapi_receiver", "flask_receiver"])
def test_examples_expose_a_factory(name):
    """Each example module exposes create_app(secret, scheme, db_path)."""
    assert callable(load(name).create_app)


def test_no_two_examples_or_readme_snippets_share_a_store_by_default() -> None:
    """Two receivers started side by side from the docs keep their own processed ids."""
    defaults = [re.search(r'db_path: str \| os\.PathLike\[str\] = "([^"]+)"',
                          (EXAMPLES / f"{name}.py").read_text())
                for name in ("fastapi_receiver", "flask_receiver")]
    names = [match.group(1) for match in defaults if match]
    assert len(names) == 2 and len(set(names)) == 2, names
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    kit = readme.split("## Receiving deliveries: the receiver kit", 1)[1].split("\n## ", 1)[0]
    code = "\n".join(re.findall(r"```python\n(.*?)```", kit.split("### The core", 1)[0],
                                re.DOTALL))
    files = [a or b for a, b in re.findall(r'SQLiteStore\("([^"]+)"\)|sqlite:///([^"]+)"', code)]
    assert len(files) == 3 and len(set(files)) == 3, files
    assert "uvicorn app:app --port 9000" in kit and "flask --app app run --port 9000" in kit
