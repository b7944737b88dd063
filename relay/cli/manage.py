"""`relay endpoints create|update|delete|rotate-secret`: the endpoint API from a shell.

A new or rotated secret is printed once, on a line of its own, with a warning
on standard error that it will not be shown again; `--json` prints the API's
answer, secret included, for a script to store.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any
from urllib.parse import quote

from relay.cli.common import EXIT_OK, EXIT_USAGE, call, error, exit_for, failed

__all__ = ["add_endpoint_commands"]

_FIELDS = (  # (flag, body key, what it takes)
    ("--url", "url", "the URL deliveries are POSTed to"),
    ("--events", "events", "event types or globs, comma separated (default *)"),
    ("--tenant", "tenant", "the tenant (platform customer) it belongs to"),
    ("--signature", "signature", "standard, x-webhook or babel"),
    ("--description", "description", "a note for people"),
    ("--filter", "filter", "a content filter, e.g. 'data.productId == \"prod_42\"'"),
    ("--timeout", "timeout", "per-attempt limit, e.g. 10s"),
    ("--max-in-flight", "max_in_flight", "attempts in flight at once"),
    ("--rate-limit", "rate_limit", "e.g. 50/s"),
    ("--ordering", "ordering", "none or fifo"),
    ("--body", "body", "exact (default) or compact: JSON.stringify(JSON.parse(body))"),
    ("--format", "format", "raw (default) or slack: a Slack/Teams message about each event"),
)
_BOOLEANS = (("--allow-http", "allow_http"), ("--disabled", "enabled"))


def add_endpoint_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the subcommands of `relay endpoints` to its parser's subparsers."""
    p = sub.add_parser("create", parents=[common], help="create an endpoint (prints its secret)")
    p.add_argument("--name", help="its name (default: generated, ep_...)")
    p.add_argument("--secret", help="its signing secret (default: generated)")
    _field_flags(p)
    p.set_defaults(func=cmd_create)
    p = sub.add_parser("update", parents=[common], help="change an API endpoint's fields")
    p.add_argument("name", help="endpoint name")
    _field_flags(p)
    p.add_argument("--enable", dest="enable", action="store_true",
                   help="enable it again (after --disabled)")
    p.set_defaults(func=cmd_update)
    p = sub.add_parser("delete", parents=[common],
                       help="delete an API endpoint; its waiting deliveries are cancelled")
    p.add_argument("name", help="endpoint name")
    p.set_defaults(func=cmd_delete)
    p = sub.add_parser("rotate-secret", parents=[common],
                       help="give an API endpoint a new secret (prints it)")
    p.add_argument("name", help="endpoint name")
    p.add_argument("--expire-previous-in", default=None,
                   help="how long the previous secret keeps signing (default 24h, at most 7d)")
    p.set_defaults(func=cmd_rotate)


def _field_flags(p: argparse.ArgumentParser) -> None:
    for flag, _, meaning in _FIELDS:
        p.add_argument(flag, help=meaning)
    p.add_argument("--allow-http", action="store_true", default=None,
                   help="allow a plain http:// URL")
    p.add_argument("--disabled", action="store_true", default=None,
                   help="create or set it disabled (receives nothing)")
    p.add_argument("--header", action="append", default=[], metavar="NAME=VALUE",
                   help="an extra header on every request (repeatable)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                   help="any other endpoint field, e.g. --set 'retry_schedule=[\"5s\",\"1m\"]'")


def _body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for flag, key, _ in _FIELDS:
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is None:
            continue
        if key == "events":
            value = [part.strip() for part in value.split(",") if part.strip()]
        elif key == "max_in_flight":
            value = int(value) if value.isascii() and value.isdigit() else value
        body[key] = value
    if args.allow_http:
        body["allow_http"] = True
    if args.disabled:
        body["enabled"] = False
    if getattr(args, "enable", False):
        body["enabled"] = True
    headers = {}
    for item in args.header:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(error(f"--header: expected NAME=VALUE, got {item!r}", EXIT_USAGE))
        headers[name.strip()] = value
    if headers:
        body["headers"] = headers
    for item in args.set:
        key, sep, text = item.partition("=")
        if not sep:
            raise SystemExit(error(f"--set: expected KEY=JSON, got {item!r}", EXIT_USAGE))
        try:
            body[key.strip()] = json.loads(text)
        except ValueError:
            body[key.strip()] = text  # a bare word: taken as a string
    return body


def _invalid(status: int, answer: Any) -> int:
    """Each field error on its own line, as `relay check` prints config errors."""
    if isinstance(answer, dict) and answer.get("errors"):
        print("relay: the relay refused the endpoint:", file=sys.stderr)
        for item in answer["errors"]:
            print(f"  {item.get('field')}: {item.get('message')}", file=sys.stderr)
        return EXIT_USAGE
    return failed(status, answer)


def _show_secret(name: str, secret: str, what: str) -> None:
    print(f"{name}: {what}")
    print(f"secret: {secret}")
    print("keep this secret now: the relay will not show it again", file=sys.stderr)


def cmd_create(args: argparse.Namespace) -> int:
    body = _body(args)
    for key in ("name", "secret"):
        if getattr(args, key):
            body[key] = getattr(args, key)
    status, answer = call(args, "POST", "/v1/endpoints", json=body)
    if args.json:
        print(json.dumps(answer, indent=2))
        return EXIT_OK if status < 300 else exit_for(status)
    if status >= 300:
        return _invalid(status, answer)
    tenant = f", tenant {answer['tenant']}" if answer.get("tenant") else ""
    _show_secret(answer["name"], answer["secret"],
                 f"created -> {answer['url']} (events {', '.join(answer['events'])}, "
                 f"{answer['signature']} signature{tenant})")
    return EXIT_OK


def cmd_update(args: argparse.Namespace) -> int:
    body = _body(args)
    if not body:
        return error("update: give at least one field to change (see --help)", EXIT_USAGE)
    status, answer = call(args, "PATCH", f"/v1/endpoints/{quote(args.name, safe='')}",
                          json=body)
    if args.json:
        print(json.dumps(answer, indent=2))
        return EXIT_OK if status < 300 else exit_for(status)
    if status >= 300:
        return _invalid(status, answer)
    print(f"{answer['name']}: updated ({', '.join(sorted(body))}); status {answer['status']}")
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    status, answer = call(args, "DELETE", f"/v1/endpoints/{quote(args.name, safe='')}")
    if status >= 300:
        if args.json:
            print(json.dumps(answer, indent=2))
            return exit_for(status)
        return failed(status, answer)
    if args.json:
        print(json.dumps({"name": args.name, "deleted": True}))
    else:
        print(f"{args.name}: deleted; its waiting deliveries are cancelled")
    return EXIT_OK


def cmd_rotate(args: argparse.Namespace) -> int:
    body = ({} if args.expire_previous_in is None
            else {"expire_previous_in": args.expire_previous_in})
    status, answer = call(args, "POST",
                          f"/v1/endpoints/{quote(args.name, safe='')}/rotate-secret", json=body)
    if args.json:
        print(json.dumps(answer, indent=2))
        return EXIT_OK if status < 300 else exit_for(status)
    if status >= 300:
        return _invalid(status, answer)
    until = answer.get("previous_expires_at")
    _show_secret(answer["name"], answer["secret"],
                 f"new secret; the previous one signs too until {until}" if until
                 else "new secret; the previous one no longer signs")
    return EXIT_OK
