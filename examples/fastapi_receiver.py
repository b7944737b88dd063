"""Demo webhook receiver on FastAPI: verifies, deduplicates and logs license events.

Run it next to the relay (the relay's demo endpoint posts to it)::

    python examples/fastapi_receiver.py                 # http://127.0.0.1:9000/webhooks
    python examples/fastapi_receiver.py --port 9100 --scheme x-webhook --secret my-secret

The secret comes from ``--secret``, else ``$RELAY_DEMO_SECRET``, else the demo
value below; the scheme from ``--scheme`` or ``$RELAY_DEMO_SCHEME``. Processed
event ids are kept in a SQLite file (``--db``, default ``fastapi_receiver_events.db``),
so a redelivery after a restart is still recognised as a duplicate.

Every received event prints one line: time, type, id, and a summary of its data.
``GET /received`` lists the last events (for scripts and tests).
"""

# No `from __future__ import annotations`: FastAPI must evaluate the
# Annotated[...] of an endpoint defined inside create_app() at definition time.
import argparse
import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import Annotated, Any

try:
    from receiver_kit import Verifier as _installed  # noqa: F401
except ImportError:  # a source checkout without (or with a stale) `pip install -e .`
    sys.modules.pop("receiver_kit", None)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi import FastAPI

from receiver_kit import SQLiteStore, Verifier, WebhookEvent
from receiver_kit.contrib.fastapi import WebhookDependency

DEMO_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
# Already on the line as the event type and time.
SKIPPED_FIELDS = {"type", "event", "event_type", "EventType", "timestamp", "Timestamp"}


def summarize(event: WebhookEvent, width: int = 110) -> str:
    """One readable line: when, what, which event, and the data's first fields."""
    data = event.data
    if isinstance(data, dict):
        fields = [
            f"{key}={value}"
            for key, value in data.items()
            if isinstance(value, str | int | float | bool) and key not in SKIPPED_FIELDS
        ]
        detail = " ".join(fields[:5])
    else:
        detail = repr(data)
    when = time.strftime("%H:%M:%S", time.localtime(event.timestamp or time.time()))
    line = f"{when}  {event.type or '(no type)':<24} {event.id}  {detail}"
    return line if len(line) <= width else line[: width - 3] + "..."


def create_app(
    secret: str | list[str] = DEMO_SECRET,
    scheme: str = "standard",
    db_path: str | os.PathLike[str] = "fastapi_receiver_events.db",
) -> FastAPI:
    """The receiver app; one per process (the SQLite store is shared with other processes)."""
    app = FastAPI(title="License webhook receiver (demo)")
    webhook = WebhookDependency(Verifier(secret, scheme=scheme), store=SQLiteStore(db_path))
    webhook.install(app)
    received: deque[dict[str, Any]] = deque(maxlen=1000)

    @app.post("/webhooks")
    def receive(event: Annotated[WebhookEvent, webhook.depends()]) -> dict[str, str]:
        print(summarize(event), flush=True)
        received.append({"id": event.id, "type": event.type, "timestamp": event.timestamp})
        return {"received": event.id}

    @app.get("/received")
    def recent() -> list[dict[str, Any]]:
        return list(received)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


app = create_app(
    os.environ.get("RELAY_DEMO_SECRET", DEMO_SECRET),
    os.environ.get("RELAY_DEMO_SCHEME", "standard"),
    os.environ.get("RELAY_DEMO_DB", "fastapi_receiver_events.db"),
)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--secret", default=os.environ.get("RELAY_DEMO_SECRET", DEMO_SECRET))
    parser.add_argument(
        "--scheme",
        default=os.environ.get("RELAY_DEMO_SCHEME", "standard"),
        choices=["standard", "x-webhook", "babel"],
    )
    parser.add_argument("--db",
                        default=os.environ.get("RELAY_DEMO_DB", "fastapi_receiver_events.db"))
    args = parser.parse_args(argv)
    receiver = create_app(args.secret, args.scheme, args.db)
    print(
        f"starting receiver on http://{args.host}:{args.port}/webhooks "
        f"(scheme {args.scheme}, store {args.db})",
        flush=True,
    )
    uvicorn.run(receiver, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
