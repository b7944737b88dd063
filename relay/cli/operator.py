"""The operator commands: thin clients of the admin API (SPEC section 5).

Each prints an aligned table with relative times for people, or the API's
own JSON with `--json` for scripts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from relay.cli.common import (
    DELIVERY_HEADERS,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    absolute,
    call,
    delivery_rows,
    error,
    exit_for,
    failed,
    fields,
    next_attempt,
    plural,
    print_answer,
    relative,
    run_admin,
    settings,
    short,
    table,
)
from relay.units import parse_duration
from relay.wire import compact_json


def _read_data(value: str | None) -> object:
    if value is None:
        return {}
    text = value
    if value.startswith("@"):
        path = Path(value[1:])
        try:
            text = sys.stdin.read() if value == "@-" else path.read_text(encoding="utf-8")
        except OSError as exc:
            code = error(f"--data: cannot read {path}: {exc.strerror}", EXIT_USAGE)
            raise SystemExit(code) from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise SystemExit(error(f"--data: not valid JSON: {exc}", EXIT_USAGE)) from None


def cmd_send(args: argparse.Namespace) -> int:
    from relay.client import RelayClient

    body = compact_json({"type": args.type, "data": _read_data(args.data)})
    headers = {"X-Event-Type": args.type}
    if args.key:
        headers["Idempotency-Key"] = args.key
    with RelayClient(settings(args)) as client:
        response = client.send_event(body, headers)
    return print_answer(response.status_code, response.json(), args.json, _describe_ingest)


def _describe_ingest(answer: dict[str, object]) -> str:
    deliveries = answer.get("deliveries")
    duplicate = " (duplicate: already received, nothing new queued)" if answer.get(
        "duplicate") else ""
    return (f"{answer.get('id')}  {answer.get('type')}  -> {deliveries} "
            f"deliver{'y' if deliveries == 1 else 'ies'}{duplicate}")


TEST_WAIT_MARGIN_S = 15.0  # on top of the endpoint's timeout, which the relay waits out


def cmd_endpoints(args: argparse.Namespace) -> int:
    params = {key: value for key, value in (
        ("tenant", args.tenant), ("source", args.source), ("status", args.status),
        ("cursor", args.cursor)) if value is not None}

    def show(answer: Any) -> None:
        now = time.time()
        rows = []
        notes = []
        tenants = any(e.get("tenant") for e in answer["data"])
        for e in answer["data"]:
            c = e["counts"]
            row = [e["name"], e["status"], relative(e["last_sent_at"], now),
                   relative(e["next_retry_at"], now), c["pending"] + c["delivering"],
                   c["scheduled"], c["held"], c["failed"], c["delivered"]]
            if tenants:
                row.append(e.get("tenant"))
            row.append(e["url"] or "(not in relay.yaml)")
            rows.append(row)
            if e["status"] != "ok":
                since = (f" since {relative(e['failing_since'], now)}"
                         if e["status"] == "error" and e["failing_since"] else "")
                notes.append(f"  {e['name']}: {e['status']}{since}: {e['status_reason']}")
        if not rows:
            print("no endpoints match" if params else
                  "no endpoints: add some under `endpoints:` in relay.yaml, or "
                  "`relay endpoints create --url ...`")
            return
        headers = ["NAME", "STATUS", "LAST SENT", "NEXT RETRY", "PENDING", "SCHEDULED", "HELD",
                   "FAILED", "DELIVERED", *(["TENANT"] if tenants else []), "URL"]
        print(table(headers, rows))
        if notes:
            print()
            print("\n".join(notes))
        if answer.get("next_cursor"):
            print(f"\nmore: add --cursor {answer['next_cursor']}")

    return run_admin(args, "GET", "/v1/endpoints", show, params=params)


def cmd_reload(args: argparse.Namespace) -> int:
    def show(answer: Any) -> None:
        if answer["applied"]:
            print(f"relay.yaml reloaded: {answer['endpoints']} endpoints")
            return
        print("relay.yaml was rejected; the relay runs on the previous config:",
              file=sys.stderr)
        for line in answer["errors"]:
            print(f"  {line}", file=sys.stderr)

    status, answer = call(args, "POST", "/v1/reload")
    if args.json:
        print(json.dumps(answer, indent=2))
    elif status < 300:
        show(answer)
    else:
        return failed(status, answer)
    if status >= 300:
        return exit_for(status)
    return EXIT_OK if answer.get("applied") else EXIT_USAGE


def _list_params(args: argparse.Namespace, *names: str) -> dict[str, str]:
    """A list command's options, as the API's query parameters (those given only)."""
    values = {name: getattr(args, name) for name in (*names, "since", "until", "cursor",
                                                     "limit")}
    return {key: str(value) for key, value in values.items() if value is not None}


def cmd_deliveries(args: argparse.Namespace) -> int:
    params = _list_params(args, "status", "endpoint", "type", "tenant")

    def show(answer: Any) -> None:
        if not answer["data"]:
            print("no deliveries match" if params else "no deliveries yet")
            return
        print(table(DELIVERY_HEADERS, delivery_rows(answer["data"], time.time())))
        if answer.get("next_cursor"):
            print(f"\nmore: add --cursor {answer['next_cursor']}")

    return run_admin(args, "GET", "/v1/deliveries", show, params=params)


def cmd_events(args: argparse.Namespace) -> int:
    params = _list_params(args, "tenant", "type", "source")

    def show(answer: Any) -> None:
        if not answer["data"]:
            print("no events match" if params else "no events yet")
            return
        now = time.time()
        print(table(("ID", "RECEIVED", "TYPE", "TENANT", "SOURCE", "BYTES", "DELIVERIES"), [
            [e["id"], relative(e["received_at"], now), e["type"], e["tenant"], e["source"],
             e["size_bytes"], e["delivery_count"]] for e in answer["data"]]))
        if answer.get("next_cursor"):
            print(f"\nmore: add --cursor {answer['next_cursor']}")

    return run_admin(args, "GET", "/v1/events", show, params=params)


def cmd_delivery(args: argparse.Namespace) -> int:
    def show(d: Any) -> None:
        now = time.time()
        print(f"{d['id']}  {d['status']}  {d['endpoint']}  {d['event_type']}")
        print(fields([
            ("event", d["event_id"]),
            ("created", f"{absolute(d['created_at'])} ({relative(d['created_at'], now)})"),
            ("attempts", d["attempt_count"]),
            ("next attempt", next_attempt(d["next_attempt_at"], now)),
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
             a["status_code"], short(a["error"], 70)]
            for a in attempts
        ]))
        last = next((a for a in reversed(attempts) if a["status_code"] is not None), None)
        if last is not None:
            body = last["response"].strip() or "(empty body)"
            print(f"\nresponse to attempt {last['attempt']} ({last['status_code']}):")
            print("\n".join("  " + line for line in body.splitlines()[:40]))

    return run_admin(args, "GET", f"/v1/deliveries/{quote(args.id, safe='')}", show)


def cmd_retry(args: argparse.Namespace) -> int:
    def show(d: Any) -> None:
        print(f"{d['id']} queued: {d['status']}, due now (was {d['previous_status']})")

    return run_admin(args, "POST", f"/v1/deliveries/{quote(args.id, safe='')}/retry", show)


def cmd_recover(args: argparse.Namespace) -> int:
    def show(answer: Any) -> None:
        since = f"failed since {absolute(answer['since'])} ({relative(answer['since'])})"
        if answer["requeued"]:
            print(f"{answer['endpoint']}: requeued {plural(answer['requeued'], 'delivery')} "
                  f"{since}")
        else:
            print(f"{answer['endpoint']}: nothing to requeue, no delivery {since}")

    return run_admin(args, "POST", f"/v1/endpoints/{quote(args.name, safe='')}/recover", show,
                     json={"since": args.since})


def cmd_test(args: argparse.Namespace) -> int:
    # The relay waits out the endpoint's timeout: ask it how long that is.
    status, endpoint = call(args, "GET", f"/v1/endpoints/{quote(args.name, safe='')}")
    timeout = parse_duration(endpoint.get("timeout") or 10) if status == 200 else 10.0
    wait = timeout + TEST_WAIT_MARGIN_S

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

    status, answer = call(args, "POST", f"/v1/endpoints/{quote(args.name, safe='')}/test",
                          timeout_s=wait)
    if args.json:
        print(json.dumps(answer, indent=2))
        if status >= 300:
            return exit_for(status)
        return EXIT_OK if answer.get("outcome") == "delivered" else EXIT_FAILED
    if status >= 300:
        return failed(status, answer)
    return show(answer)


def cmd_pause(args: argparse.Namespace) -> int:
    def show(e: Any) -> None:
        print(f"{e['name']} paused: {plural(e['held'], 'waiting delivery')} held; "
              f"`relay resume {e['name']}` sends them")

    return run_admin(args, "POST", f"/v1/endpoints/{quote(args.name, safe='')}/pause", show)


def cmd_resume(args: argparse.Namespace) -> int:
    def show(e: Any) -> None:
        print(f"{e['name']} resumed ({e['status']}): "
              f"{plural(e['released'], 'held delivery')} released")

    return run_admin(args, "POST", f"/v1/endpoints/{quote(args.name, safe='')}/resume", show)


def cmd_event(args: argparse.Namespace) -> int:
    def show(e: Any) -> None:
        now = time.time()
        print(f"{e['id']}  {e['type']}  received {absolute(e['received_at'])} "
              f"({relative(e['received_at'], now)}), {e['size_bytes']} bytes")
        tenant = f", tenant {e['tenant']}" if e.get("tenant") else ""
        print(f"source {e.get('source', 'default')}{tenant}")
        if e.get("payload_text") is not None:  # a body that does not read back as JSON
            print(e["payload_text"][:2000])
        else:
            print(json.dumps(e["payload"], indent=2)[:2000])
        print()
        if e["deliveries"]:
            print(table(DELIVERY_HEADERS, delivery_rows(e["deliveries"], now)))
        else:
            print("no deliveries: no enabled endpoint subscribes to this type")

    return run_admin(args, "GET", f"/v1/events/{quote(args.id, safe='')}", show)
