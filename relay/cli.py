"""The `relay` command: run the relay, check its config, and talk to a running one.

The operator commands (`endpoints`, `deliveries`, `delivery`, `retry`,
`recover`, `test`, `pause`, `resume`, `event`) are thin clients of the admin
API: they print aligned tables with relative times for people, or the API's
own JSON with `--json` for scripts.

Exit codes scripts can rely on:

    0  done
    1  the command failed: the relay answered an error (404 included), is not
       running, or `relay test` did not get a 2xx from the endpoint
    2  usage or configuration error (`relay check` on a bad file, a bad flag,
       a filter the relay rejects with 400)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from relay import __version__, timefmt
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


# -- operator commands: clients of the admin API ---------------------------------------------

TEST_WAIT_MARGIN_S = 15.0  # on top of the endpoint's timeout, which the relay waits out


def _call(args: argparse.Namespace, method: str, path: str, *, timeout_s: float = 30.0,
          config: Config | None = None, **kwargs: Any) -> tuple[int, Any]:
    from relay.client import RelayClient

    config = config or _load(args)
    with RelayClient(config, timeout_s=timeout_s) as client:
        return client.admin_json(method, path, **kwargs)


def _failed(status: int, answer: Any) -> int:
    """Print the relay's problem document as one line; 400 is the caller's mistake (2)."""
    detail = answer.get("detail") if isinstance(answer, dict) else None
    message = f"error {status}: {detail or answer}"
    if status == 401:
        message += " (the CLI sends admin.token from relay.yaml; check it matches the relay's)"
    print(f"relay: {message}", file=sys.stderr)
    return EXIT_USAGE if status == 400 else EXIT_FAILED


def _run_admin(args: argparse.Namespace, method: str, path: str,
               show: Callable[[Any], None], **kwargs: Any) -> int:
    """Call the API; print its JSON (`--json`) or what `show` makes of a success."""
    status, answer = _call(args, method, path, **kwargs)
    if args.json:
        print(json.dumps(answer, indent=2))
        return EXIT_OK if status < 300 else _exit_for(status)
    if status >= 300:
        return _failed(status, answer)
    show(answer)
    return EXIT_OK


def _exit_for(status: int) -> int:
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


def _short(text: str | None, width: int = 48) -> str:
    if not text:
        return "-"
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def _last_result(d: dict[str, Any]) -> str:
    """The status code, and the error when it says more than "endpoint answered <code>"."""
    code, error = d.get("last_status_code"), d.get("last_error") or ""
    if code is None:
        return _short(error, 44)
    said = f"endpoint answered {code}"
    if error.startswith(said):
        error = error[len(said):].lstrip("; ")
    return f"{code} {_short(error, 40)}" if error else str(code)


def _next_attempt(text: str | None, now: float) -> str:
    return relative(text, now, due=True)


def _delivery_rows(deliveries: Sequence[dict[str, Any]], now: float) -> list[list[object]]:
    return [[d["id"], relative(d["created_at"], now), d["endpoint"], d["event_type"],
             d["status"], d["attempt_count"], _last_result(d),
             _next_attempt(d["next_attempt_at"], now)] for d in deliveries]


_DELIVERY_HEADERS = ("ID", "CREATED", "ENDPOINT", "TYPE", "STATUS", "ATTEMPTS", "LAST RESULT",
                     "NEXT ATTEMPT")


def _plural(count: int, word: str) -> str:
    if count == 1:
        return f"1 {word}"
    return f"{count} {word[:-1]}ies" if word.endswith("y") else f"{count} {word}s"


def cmd_endpoints(args: argparse.Namespace) -> int:
    def show(answer: Any) -> None:
        now = time.time()
        rows = []
        notes = []
        for e in answer["data"]:
            c = e["counts"]
            rows.append([e["name"], e["status"], relative(e["last_sent_at"], now),
                         relative(e["next_retry_at"], now), c["pending"] + c["delivering"],
                         c["scheduled"], c["held"], c["failed"], c["delivered"],
                         e["url"] or "(not in relay.yaml)"])
            if e["status"] != "ok":
                since = (f" since {relative(e['failing_since'], now)}"
                         if e["status"] == "error" and e["failing_since"] else "")
                notes.append(f"  {e['name']}: {e['status']}{since}: {e['status_reason']}")
        if not rows:
            print("no endpoints: add some under `endpoints:` in relay.yaml")
            return
        print(table(("NAME", "STATUS", "LAST SENT", "NEXT RETRY", "PENDING", "SCHEDULED", "HELD",
                     "FAILED", "DELIVERED", "URL"), rows))
        if notes:
            print()
            print("\n".join(notes))

    return _run_admin(args, "GET", "/v1/endpoints", show)


def cmd_deliveries(args: argparse.Namespace) -> int:
    params = {key: value for key, value in (
        ("status", args.status), ("endpoint", args.endpoint), ("type", args.type),
        ("since", args.since), ("until", args.until), ("cursor", args.cursor),
        ("limit", None if args.limit is None else str(args.limit)),
    ) if value is not None}

    def show(answer: Any) -> None:
        if not answer["data"]:
            print("no deliveries match" if params else "no deliveries yet")
            return
        print(table(_DELIVERY_HEADERS, _delivery_rows(answer["data"], time.time())))
        if answer.get("next_cursor"):
            print(f"\nmore: add --cursor {answer['next_cursor']}")

    return _run_admin(args, "GET", "/v1/deliveries", show, params=params)


def cmd_delivery(args: argparse.Namespace) -> int:
    def show(d: Any) -> None:
        now = time.time()
        print(f"{d['id']}  {d['status']}  {d['endpoint']}  {d['event_type']}")
        print(fields([
            ("event", d["event_id"]),
            ("created", f"{absolute(d['created_at'])} ({relative(d['created_at'], now)})"),
            ("attempts", d["attempt_count"]),
            ("next attempt", _next_attempt(d["next_attempt_at"], now)),
            ("last error", d["last_error"]),
        ]))
        attempts = d["attempts"]
        if not attempts:
            print("\nno attempt yet")
            return
        print()
        print(table(("ATTEMPT", "STARTED", "DURATION", "STATUS", "ERROR"), [
            [a["attempt"], relative(a["started_at"], now),
             "-" if a["duration_ms"] is None else f"{a['duration_ms']:g}ms",
             a["status_code"], _short(a["error"], 70)]
            for a in attempts
        ]))
        last = next((a for a in reversed(attempts) if a["status_code"] is not None), None)
        if last is not None:
            body = last["response"].strip() or "(empty body)"
            print(f"\nresponse to attempt {last['attempt']} ({last['status_code']}):")
            print("\n".join("  " + line for line in body.splitlines()[:40]))

    return _run_admin(args, "GET", f"/v1/deliveries/{quote(args.id, safe='')}", show)


def cmd_retry(args: argparse.Namespace) -> int:
    def show(d: Any) -> None:
        print(f"{d['id']} queued: {d['status']}, due now (was {d['previous_status']})")

    return _run_admin(args, "POST", f"/v1/deliveries/{quote(args.id, safe='')}/retry", show)


def cmd_recover(args: argparse.Namespace) -> int:
    def show(answer: Any) -> None:
        since = f"failed since {absolute(answer['since'])} ({relative(answer['since'])})"
        if answer["requeued"]:
            print(f"{answer['endpoint']}: requeued {_plural(answer['requeued'], 'delivery')} "
                  f"{since}")
        else:
            print(f"{answer['endpoint']}: nothing to requeue, no delivery {since}")

    return _run_admin(args, "POST", f"/v1/endpoints/{quote(args.name, safe='')}/recover", show,
                      json={"since": args.since})


def cmd_test(args: argparse.Namespace) -> int:
    config = _load(args)
    endpoint = config.endpoint(args.name)
    wait = (endpoint.timeout_s if endpoint else config.delivery.timeout_s) + TEST_WAIT_MARGIN_S

    def show(answer: Any) -> int:
        d = answer["delivery"]
        where = f"({d['id']}, event {answer['event_id']})"
        if answer["outcome"] == "pending":
            print(f"{args.name}: test event queued but not attempted yet {where}; "
                  f"follow it with `relay delivery {d['id']}`")
            return EXIT_FAILED
        attempt = d["attempts"][-1]
        took = f"{attempt['duration_ms']:g}ms" if attempt["duration_ms"] is not None else "-"
        if answer["outcome"] == "delivered":
            print(f"{args.name}: test delivered, {attempt['status_code']} in {took} {where}")
            return EXIT_OK
        result = attempt["error"] or f"endpoint answered {attempt['status_code']}"
        retry = (f"; next attempt {relative(d['next_attempt_at'])}"
                 if d["next_attempt_at"] else "")
        print(f"{args.name}: test failed after {took}: {result} {where}{retry}")
        if attempt["response"].strip():
            print("\n".join("  " + line for line in attempt["response"].splitlines()[:20]))
        return EXIT_FAILED

    status, answer = _call(args, "POST", f"/v1/endpoints/{quote(args.name, safe='')}/test",
                           timeout_s=wait, config=config)
    if args.json:
        print(json.dumps(answer, indent=2))
        if status >= 300:
            return _exit_for(status)
        return EXIT_OK if answer.get("outcome") == "delivered" else EXIT_FAILED
    if status >= 300:
        return _failed(status, answer)
    return show(answer)


def cmd_pause(args: argparse.Namespace) -> int:
    def show(e: Any) -> None:
        print(f"{e['name']} paused: {_plural(e['held'], 'waiting delivery')} held; "
              f"`relay resume {e['name']}` sends them")

    return _run_admin(args, "POST", f"/v1/endpoints/{quote(args.name, safe='')}/pause", show)


def cmd_resume(args: argparse.Namespace) -> int:
    def show(e: Any) -> None:
        print(f"{e['name']} resumed ({e['status']}): "
              f"{_plural(e['released'], 'held delivery')} released")

    return _run_admin(args, "POST", f"/v1/endpoints/{quote(args.name, safe='')}/resume", show)


def cmd_event(args: argparse.Namespace) -> int:
    def show(e: Any) -> None:
        now = time.time()
        print(f"{e['id']}  {e['type']}  received {absolute(e['received_at'])} "
              f"({relative(e['received_at'], now)}), {e['size_bytes']} bytes")
        if e.get("payload_text") is not None:  # a body that does not read back as JSON
            print(e["payload_text"][:2000])
        else:
            print(json.dumps(e["payload"], indent=2)[:2000])
        print()
        if e["deliveries"]:
            print(table(_DELIVERY_HEADERS, _delivery_rows(e["deliveries"], now)))
        else:
            print("no deliveries: no enabled endpoint subscribes to this type")

    return _run_admin(args, "GET", f"/v1/events/{quote(args.id, safe='')}", show)


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

    p = sub.add_parser("endpoints", parents=[common],
                       help="list endpoints with their status and queue")
    p.set_defaults(func=cmd_endpoints)
    p = sub.add_parser("deliveries", parents=[common], help="list deliveries, newest first")
    p.add_argument("--status", help="pending, delivering, scheduled, delivered, failed or held")
    p.add_argument("--endpoint", help="only this endpoint's deliveries")
    p.add_argument("--type", help="only this event type")
    p.add_argument("--since", help="created since: a duration ago (2h, 30m) or an ISO 8601 time")
    p.add_argument("--until", help="created until: a duration ago or an ISO 8601 time")
    p.add_argument("--limit", type=int, help="how many to show (default 50, at most 500)")
    p.add_argument("--cursor", help="the next page, as printed after a full page")
    p.set_defaults(func=cmd_deliveries)
    p = sub.add_parser("delivery", parents=[common],
                       help="show one delivery with every attempt and the last response")
    p.add_argument("id", help="delivery id, e.g. dlv_42")
    p.set_defaults(func=cmd_delivery)
    p = sub.add_parser("retry", parents=[common], help="make one delivery due now")
    p.add_argument("id", help="delivery id, e.g. dlv_42")
    p.set_defaults(func=cmd_retry)
    p = sub.add_parser("recover", parents=[common],
                       help="requeue an endpoint's failed deliveries since a time")
    p.add_argument("name", help="endpoint name")
    p.add_argument("--since", required=True,
                   help="a duration ago (2h, 1d) or an ISO 8601 time")
    p.set_defaults(func=cmd_recover)
    p = sub.add_parser("test", parents=[common],
                       help="send a webhook.test event to an endpoint and show the outcome")
    p.add_argument("name", help="endpoint name")
    p.set_defaults(func=cmd_test)
    p = sub.add_parser("pause", parents=[common],
                       help="stop sending to an endpoint (deliveries are held, not dropped)")
    p.add_argument("name", help="endpoint name")
    p.set_defaults(func=cmd_pause)
    p = sub.add_parser("resume", parents=[common],
                       help="send to a paused or disabled endpoint again")
    p.add_argument("name", help="endpoint name")
    p.set_defaults(func=cmd_resume)
    p = sub.add_parser("event", parents=[common], help="show one event and its deliveries")
    p.add_argument("id", help="event id, e.g. evt_...")
    p.set_defaults(func=cmd_event)
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
