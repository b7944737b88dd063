"""Node.js for the tests: its own JSON.stringify, and a receiver that verifies as JavaScript does.

The tests compare the relay's compact JSON with what node itself writes,
never with a table of expected strings. Node is Debian's `nodejs` package
(scripts/install-node); without it these tests skip, unless CI=true, where
they fail.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
from pathlib import Path
from typing import IO, Any

import pytest

__all__ = ["NODE_RECEIVER", "NodeReceiver", "node", "node_stringify"]

# LicenseChain's receiver from its own documentation (seed 003): express.json()
# parses the body, the signature is checked over JSON.stringify(req.body).
NODE_RECEIVER = r"""
const http = require('http');
const crypto = require('crypto');
const secret = process.env.WEBHOOK_SECRET;
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const raw = Buffer.concat(chunks).toString('utf8');
    let payload;
    try {
      payload = JSON.stringify(JSON.parse(raw));
    } catch (err) {
      res.writeHead(400); res.end('not JSON'); return;
    }
    const signature = req.headers['x-webhook-signature'] || '';
    const expected = crypto.createHmac('sha256', secret).update(payload).digest('hex');
    const ok = signature.length === expected.length
      && crypto.timingSafeEqual(Buffer.from(signature), Buffer.from(expected));
    console.log(JSON.stringify({ok, agent: req.headers['user-agent'] || null}));
    res.writeHead(ok ? 200 : 401, {'Content-Type': 'text/plain'});
    res.end(ok ? 'OK' : 'Invalid signature');
  });
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
"""

_STRINGIFY = (
    "const texts = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
    "process.stdout.write(JSON.stringify(texts.map((t) => JSON.stringify(JSON.parse(t)))));"
)


def node() -> str:
    """The node binary, or skip (fail under CI=true) saying how to get it."""
    found = shutil.which("node") or shutil.which("nodejs")
    if found:
        return found
    reason = ("node is missing: run scripts/install-node (Debian's nodejs) to compare the "
              "relay's compact JSON with JSON.stringify")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + " (CI=true: these tests must run)", pytrace=False)
    pytest.skip(reason)


def node_stringify(texts: list[str]) -> list[str]:
    """`JSON.stringify(JSON.parse(text))` for each text, by node, in one run."""
    done = subprocess.run([node(), "-e", _STRINGIFY], input=json.dumps(texts),
                          capture_output=True, text=True, check=True, timeout=60)
    answer: list[str] = json.loads(done.stdout)
    return answer


class NodeReceiver:
    """The receiver above, on a free port of 127.0.0.1, keyed with `secret`."""

    def __init__(self, secret: str, script_dir: Path) -> None:
        script = script_dir / "receiver.js"
        script.write_text(NODE_RECEIVER)
        self.proc = subprocess.Popen([node(), str(script)], stdout=subprocess.PIPE,
                                     text=True, env={**os.environ, "WEBHOOK_SECRET": secret})
        self._out: IO[str] = self.proc.stdout  # type: ignore[assignment]
        self.url = f"http://127.0.0.1:{int(self._out.readline())}/webhooks/licensechain"
        self._lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self._out:
            self._lines.put(line)

    def next_request(self, timeout: float = 15.0) -> dict[str, Any]:
        """What it made of the next request: `ok` (the signature matched), `agent`."""
        line: dict[str, Any] = json.loads(self._lines.get(timeout=timeout))
        return line

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self._reader.join(timeout=10)  # it ends at the pipe's end, with the process
        self._out.close()
