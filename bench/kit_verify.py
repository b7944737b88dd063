"""Benchmark: receiver_kit verification against standardwebhooks and the raw HMAC floor.

::

    python -m bench.kit_verify [--quick]

On the same 1 KiB and 64 KiB JSON payloads it times:

* full verification (headers, timestamp window, signature, JSON parse):
  ``Verifier.verify`` against ``standardwebhooks.Webhook.verify``; target
  ratio <= 1.0;
* the signature check alone (``Verifier.check_signature``, for the
  ``standard`` and ``x-webhook`` schemes) against the floor: one
  ``hmac.new(key, body, sha256).hexdigest()`` plus ``hmac.compare_digest``;
  targets <= 2.0 at 1 KiB and <= 1.2 at 64 KiB.

Each figure is microseconds per call, median/min/max over several repeats;
ours and the baseline are measured alternately in each repeat so that drift
of the machine affects both alike. `run(quick)` returns one dict per
comparison, for `bench/__main__.py`.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    from receiver_kit import Verifier as _installed  # noqa: F401
except ImportError:  # a source checkout without (or with a stale) `pip install -e .`
    sys.modules.pop("receiver_kit", None)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import standardwebhooks

from bench.common import Figures, report
from receiver_kit import Verifier
from receiver_kit.testing import sign

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
HEX_SECRET = "lic_hook_secret_7f3a"
SIZES = {"1KiB": 1024, "64KiB": 64 * 1024}
SIGNATURE_TARGETS = {"1KiB": 2.0, "64KiB": 1.2}


def payload(size: int) -> bytes:
    """A license event padded with realistic records to exactly `size` bytes."""
    event: dict[str, Any] = {
        "type": "license.created",
        "data": {"licenseKey": "ABCD-1234", "product": "Babel Obfuscator", "seats": 5},
        "history": [],
    }
    n = 0
    while len(json.dumps(event, separators=(",", ":"))) < size - 80:
        event["history"].append({"Id": n, "LicenseId": f"LIC-{n:05d}", "Revoked": False})
        n += 1
    body = json.dumps(event, separators=(",", ":"))
    event["pad"] = ""
    event["pad"] = "x" * (size - len(json.dumps(event, separators=(",", ":"))))
    raw = json.dumps(event, separators=(",", ":")).encode()
    assert len(raw) == size, (len(raw), size, len(body))
    return raw


def _per_call_us(fn: Callable[[], object], number: int) -> float:
    return timeit.Timer(fn).timeit(number) / number * 1e6


def compare(
    ours: Callable[[], object],
    baseline: Callable[[], object],
    *,
    repeats: int,
    budget_s: float,
) -> tuple[list[float], list[float]]:
    """Per-call microseconds of both, alternating, `repeats` times."""
    number = max(1, int(budget_s / max(timeit.Timer(baseline).timeit(20) / 20, 1e-9)))
    ours_us: list[float] = []
    base_us: list[float] = []
    for _ in range(repeats):
        ours_us.append(_per_call_us(ours, number))
        base_us.append(_per_call_us(baseline, number))
    return ours_us, base_us


Case = tuple[str, Callable[[], object], str, Callable[[], object], float | None]


def cases(label: str, size: int) -> list[Case]:
    """The comparisons for one payload size: (name, ours, baseline name, baseline, target)."""
    body = payload(size)
    msg_id, ts = "evt_bench_1", int(time.time())
    headers = sign(body, SECRET, msg_id=msg_id, timestamp=ts)
    signature = headers["webhook-signature"]
    ours = Verifier(SECRET)
    theirs = standardwebhooks.Webhook(SECRET)
    hex_verifier = Verifier(HEX_SECRET, scheme="x-webhook")
    key = HEX_SECRET.encode()
    hex_signature = hmac.new(key, body, hashlib.sha256).hexdigest()

    def floor() -> bool:
        return hmac.compare_digest(hmac.new(key, body, hashlib.sha256).hexdigest(), hex_signature)

    assert ours.verify(body, headers).payload == theirs.verify(body, headers)
    assert floor()
    floor_name = "floor: hmac.new(key, body, sha256).hexdigest() + compare_digest"
    return [
        (
            f"verify, full with JSON parse, {label}",
            lambda: ours.verify(body, headers),
            "standardwebhooks.Webhook.verify",
            lambda: theirs.verify(body, headers),
            1.0,
        ),
        (
            f"signature check alone, standard, {label}",
            lambda: ours.check_signature(body, signature, msg_id=msg_id, timestamp=ts),
            floor_name,
            floor,
            SIGNATURE_TARGETS[label],
        ),
        (
            f"signature check alone, x-webhook, {label}",
            lambda: hex_verifier.check_signature(body, hex_signature),
            floor_name,
            floor,
            SIGNATURE_TARGETS[label],
        ),
        (
            f"for reference: standardwebhooks without JSON, {label}",
            lambda: theirs.verify(body, headers, json_parse=False),
            floor_name,
            floor,
            None,
        ),
    ]


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Run every comparison, print each, and return one dict per comparison."""
    repeats, budget_s = (5, 0.03) if quick else (15, 0.15)
    results: list[dict[str, Any]] = []
    for label, size in SIZES.items():
        for name, ours_fn, baseline_name, baseline_fn, target in cases(label, size):
            ours_us, base_us = compare(ours_fn, baseline_fn, repeats=repeats, budget_s=budget_s)
            measured = (
                "standardwebhooks verify(json_parse=False)"
                if name.startswith("for reference")
                else "receiver_kit"
            )
            row = report(
                f"kit_verify: {name}",
                Figures(measured, "us/call", ours_us),
                Figures(baseline_name, "us/call", base_us),
                target="" if target is None else f"<= {target:g}",
                higher_is_better=False,
            )
            row["ok"] = None if target is None else bool(row["ratio"] <= target)  # type: ignore[operator]
            results.append(row)
    missed = [r["benchmark"] for r in results if r["ok"] is False]
    print("\nkit_verify: all targets met" if not missed else f"\nkit_verify: MISSED {missed}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="receiver_kit verification benchmark")
    parser.add_argument("--quick", action="store_true", help="fewer, shorter repeats")
    args = parser.parse_args(argv)
    run(args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
