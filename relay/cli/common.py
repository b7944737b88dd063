"""What every `relay` command shares: exit codes, the call to the relay, and the way it prints.

Exit codes scripts can rely on:

    0  done
    1  the command failed: the relay answered an error (404 included), is not
       running, or `relay test` did not get a 2xx from the endpoint
    2  usage or configuration error (`relay check` on a bad file, a bad flag,
       a filter the relay rejects with 400)

Commands that talk to a running relay read only the listener and the tokens
of relay.yaml (`load_client_settings`), so a secret in an unset environment
variable does not stop `relay endpoints`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from relay import timefmt
from relay.config import ClientSettings, load_client_settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2



def default_config_path() -> str:
    return os.environ.get("RELAY_CONFIG", "relay.yaml")



def settings(args: argparse.Namespace) -> ClientSettings:
    return load_client_settings(args.config)



def print_answer(status: int, answer: object, as_json: bool,
                  describe: Callable[[dict[str, object]], str]) -> int:
    ok = 200 <= status < 300
    if as_json:
        print(json.dumps(answer, indent=2))
    elif ok and isinstance(answer, dict):
        print(describe(answer))
    else:
        detail = answer.get("detail") if isinstance(answer, dict) else answer
        print(f"error {status}: {detail}", file=sys.stderr)
    return EXIT_OK if ok else EXIT_FAILED


def error(message: str, code: int) -> int:
    print(f"relay: {message}", file=sys.stderr)
    return code



def call(args: argparse.Namespace, method: str, path: str, *, timeout_s: float = 30.0,
         **kwargs: Any) -> tuple[int, Any]:
    from relay.client import RelayClient

    with RelayClient(settings(args), timeout_s=timeout_s) as client:
        return client.admin_json(method, path, **kwargs)



def failed(status: int, answer: Any) -> int:
    """Print the relay's problem document as one line; 400 is the caller's mistake (2)."""
    detail = answer.get("detail") if isinstance(answer, dict) else None
    message = f"error {status}: {detail or answer}"
    if status == 401:
        message += " (the CLI sends admin.token from relay.yaml; check it matches the relay's)"
    print(f"relay: {message}", file=sys.stderr)
    return EXIT_USAGE if status == 400 else EXIT_FAILED


def run_admin(args: argparse.Namespace, method: str, path: str,
               show: Callable[[Any], None], **kwargs: Any) -> int:
    """Call the API; print its JSON (`--json`) or what `show` makes of a success."""
    status, answer = call(args, method, path, **kwargs)
    if args.json:
        print(json.dumps(answer, indent=2))
        return EXIT_OK if status < 300 else exit_for(status)
    if status >= 300:
        return failed(status, answer)
    show(answer)
    return EXIT_OK


def exit_for(status: int) -> int:
    return EXIT_USAGE if status == 400 else EXIT_FAILED


def relative(text: str | None, now: float | None = None, *, due: bool = False) -> str:
    """'3m ago', 'in 4m', 'now', or '-' for no time: what a person scans a table for."""
    return timefmt.relative(text, time.time() if now is None else now, due=due, empty="-")


def absolute(text: str | None) -> str:
    return timefmt.absolute(text, empty="-")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns two spaces apart, the last one not padded."""
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) if i < len(row) - 1 else cell
                  for i, cell in enumerate(row)).rstrip()
        for row in cells
    )


def fields(pairs: Sequence[tuple[str, object]]) -> str:
    """`key   value` lines with the values aligned."""
    width = max(len(key) for key, _ in pairs)
    return "\n".join(f"{key.ljust(width)}  {'-' if value is None else value}"
                     for key, value in pairs)


def short(text: str | None, width: int = 48) -> str:
    if not text:
        return "-"
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def last_result(d: dict[str, Any]) -> str:
    """The status code, and the error when it says more than "endpoint answered <code>"."""
    code, error = d.get("last_status_code"), d.get("last_error") or ""
    if code is None:
        return short(error, 44)
    said = f"endpoint answered {code}"
    if error.startswith(said):
        error = error[len(said):].lstrip("; ")
    return f"{code} {short(error, 40)}" if error else str(code)


def next_attempt(text: str | None, now: float) -> str:
    return relative(text, now, due=True)


def delivery_rows(deliveries: Sequence[dict[str, Any]], now: float) -> list[list[object]]:
    return [[d["id"], relative(d["created_at"], now), d["endpoint"], d["event_type"],
             d["status"], d["attempt_count"], last_result(d),
             next_attempt(d["next_attempt_at"], now)] for d in deliveries]


DELIVERY_HEADERS = ("ID", "CREATED", "ENDPOINT", "TYPE", "STATUS", "ATTEMPTS", "LAST RESULT",
                     "NEXT ATTEMPT")


def plural(count: int, word: str) -> str:
    if count == 1:
        return f"1 {word}"
    return f"{count} {word[:-1]}ies" if word.endswith("y") else f"{count} {word}s"
