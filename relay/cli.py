"""The `relay` command: run the relay, check its config, and talk to a running one.

Exit codes scripts can rely on:

    0  done
    1  the command failed (the relay answered an error, or is not running)
    2  usage or configuration error (`relay check` on a bad file)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from relay import __version__
from relay.config import Config, load_config
from relay.exceptions import ConfigError

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def default_config_path() -> str:
    return os.environ.get("RELAY_CONFIG", "relay.yaml")


def _load(args: argparse.Namespace) -> Config:
    return load_config(args.config)


def cmd_check(args: argparse.Namespace) -> int:
    config = _load(args)
    print(f"{args.config}: OK")
    print(config.summary())
    return EXIT_OK


def cmd_keygen(args: argparse.Namespace) -> int:
    from relay.signing import generate_secret

    print(generate_secret())
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from relay.server import serve

    config = _load(args)
    return serve(config)


def _read_data(value: str | None) -> object:
    if value is None:
        return {}
    text = value
    if value.startswith("@"):
        path = Path(value[1:])
        try:
            text = sys.stdin.read() if value == "@-" else path.read_text(encoding="utf-8")
        except OSError as exc:
            code = _error(f"--data: cannot read {path}: {exc.strerror}", EXIT_USAGE)
            raise SystemExit(code) from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise SystemExit(_error(f"--data: not valid JSON: {exc}", EXIT_USAGE)) from None


def cmd_send(args: argparse.Namespace) -> int:
    from relay.client import RelayClient

    config = _load(args)
    body = json.dumps({"type": args.type, "data": _read_data(args.data)}).encode()
    headers = {"X-Event-Type": args.type}
    if args.key:
        headers["Idempotency-Key"] = args.key
    with RelayClient(config) as client:
        response = client.send_event(body, headers)
    return _print_answer(response.status_code, response.json(), args.json, _describe_ingest)


def _describe_ingest(answer: dict[str, object]) -> str:
    deliveries = answer.get("deliveries")
    duplicate = " (duplicate: already received, nothing new queued)" if answer.get(
        "duplicate") else ""
    return (f"{answer.get('id')}  {answer.get('type')}  -> {deliveries} "
            f"deliver{'y' if deliveries == 1 else 'ies'}{duplicate}")


def _print_answer(status: int, answer: object, as_json: bool,
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


def _error(message: str, code: int) -> int:
    print(f"relay: {message}", file=sys.stderr)
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relay",
        description="A webhook relay for license platforms: durable ingest, signed delivery.",
    )
    parser.add_argument("--version", action="version", version=f"relay {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", default=default_config_path(),
                        help="relay.yaml to use (default: $RELAY_CONFIG or ./relay.yaml)")
    common.add_argument("--json", action="store_true", help="print JSON for scripts")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", parents=[common], help="run the relay")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("check", parents=[common], help="validate relay.yaml and summarise it")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("keygen", help="print a new whsec_ signing secret")
    p.set_defaults(func=cmd_keygen)
    p = sub.add_parser("send", parents=[common], help="send an event to the running relay")
    p.add_argument("type", help="event type, e.g. license.created")
    p.add_argument("--data", help="the event's data: JSON, @file, or @- for stdin")
    p.add_argument("--key", help="Idempotency-Key (the event id); resending it is a no-op")
    p.set_defaults(func=cmd_send)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from relay.client import RelayNotRunning

    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"{args.config}: invalid configuration", file=sys.stderr)
        for line in exc.errors:
            print(f"  {line}", file=sys.stderr)
        return EXIT_USAGE
    except RelayNotRunning as exc:
        return _error(str(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
