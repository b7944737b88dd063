"""The `relay` command: run the relay, check its config, and talk to a running one.

`local` commands read relay.yaml whole (`run`, `check`, `keygen`); the others
are clients of the running relay's API (`operator`, `manage`), and read only
its listener and tokens. Exit codes are in `relay.cli.common`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from relay import __version__
from relay.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    absolute,
    default_config_path,
    error,
    relative,
    table,
)
from relay.cli.manage import add_endpoint_commands
from relay.cli.operator import (
    cmd_deliveries,
    cmd_delivery,
    cmd_endpoints,
    cmd_event,
    cmd_events,
    cmd_pause,
    cmd_recover,
    cmd_reload,
    cmd_resume,
    cmd_retry,
    cmd_send,
    cmd_test,
)
from relay.config import load_config
from relay.exceptions import ConfigError

__all__ = ["absolute", "build_parser", "main", "relative", "table"]


def cmd_check(args: argparse.Namespace) -> int:
    from relay.http.app import check_telemetry

    config = load_config(args.config)
    check_telemetry(config)  # tracing asked for without the [otel] extra is an error here too
    print(f"{args.config}: OK")
    print(config.summary())
    return EXIT_OK


def cmd_keygen(args: argparse.Namespace) -> int:
    if args.secrets_key:
        from relay.secrets_at_rest import generate_key

        print(generate_key())
        return EXIT_OK
    from relay.signing import generate_secret

    print(generate_secret())
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from relay.server import serve

    return serve(load_config(args.config))


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
    p.add_argument("--secrets-key", action="store_true",
                   help="print a new secrets_key instead (seals API endpoints' secrets)")
    p.set_defaults(func=cmd_keygen)
    p = sub.add_parser("send", parents=[common], help="send an event to the running relay")
    p.add_argument("type", help="event type, e.g. license.created")
    p.add_argument("--data", help="the event's data: JSON, @file, or @- for stdin")
    p.add_argument("--key", help="Idempotency-Key (the event id); resending it is a no-op")
    p.set_defaults(func=cmd_send)

    p = sub.add_parser("endpoints", parents=[common],
                       help="list endpoints; create, update, delete, rotate-secret")
    p.add_argument("--tenant", help="only this tenant's endpoints")
    p.add_argument("--source", choices=["config", "api"], help="relay.yaml's or the API's")
    p.add_argument("--status", help="ok, error, paused or disabled")
    p.add_argument("--cursor", help="the next page, as printed after a full page")
    p.set_defaults(func=cmd_endpoints)
    add_endpoint_commands(p.add_subparsers(dest="action", metavar="ACTION"), common)
    p = sub.add_parser("reload", parents=[common],
                       help="make the running relay re-read relay.yaml, and say if it took it")
    p.set_defaults(func=cmd_reload)
    p = sub.add_parser("deliveries", parents=[common], help="list deliveries, newest first")
    p.add_argument("--status",
                   help="pending, delivering, scheduled, delivered, failed, held or cancelled")
    p.add_argument("--tenant", help="only this tenant's deliveries")
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
    p = sub.add_parser("events", parents=[common], help="list events received, newest first")
    p.add_argument("--tenant", help="only this tenant's events")
    p.add_argument("--type", help="only this event type")
    p.add_argument("--source", help="only those of this sources: entry (default: /v1/events)")
    p.add_argument("--since", help="received since: a duration ago (2h) or an ISO 8601 time")
    p.add_argument("--until", help="received until: a duration ago or an ISO 8601 time")
    p.add_argument("--limit", type=int, help="how many to show (default 50, at most 500)")
    p.add_argument("--cursor", help="the next page, as printed after a full page")
    p.set_defaults(func=cmd_events)
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
        return error(str(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
