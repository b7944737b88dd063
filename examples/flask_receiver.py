"""Demo webhook receiver on Flask: verifies, deduplicates and logs license events.

::

    python examples/flask_receiver.py                     # http://127.0.0.1:9000/webhooks
    python examples/flask_receiver.py --port 9100 --scheme babel --secret my-secret

Configuration is ordinary Flask config (``RECEIVER_KIT_*`` keys); processed ids
are kept in a SQLite file so duplicates are recognised across restarts.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

try:
    from receiver_kit import Verifier as _installed  # noqa: F401
except ImportError:  # a source checkout without (or with a stale) `pip install -e .`
    sys.modules.pop("receiver_kit", None)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flask import Flask

from receiver_kit import WebhookEvent
from receiver_kit.contrib.flask import ReceiverKit

DEMO_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
log = logging.getLogger("license_events")


def create_app(
    secret: str | list[str] = DEMO_SECRET,
    scheme: str = "standard",
    db_path: str | os.PathLike[str] = "flask_receiver_events.db",
) -> Flask:
    app = Flask(__name__)
    app.config.update(
        RECEIVER_KIT_SECRET=secret,
        RECEIVER_KIT_SCHEME=scheme,
        RECEIVER_KIT_STORE=f"sqlite:///{os.fspath(db_path)}",
    )
    kit = ReceiverKit(app)

    @app.post("/webhooks")
    @kit.webhook
    def receive(event: WebhookEvent) -> dict[str, str]:
        data = event.data if isinstance(event.data, dict) else {}
        keys = ("licenseKey", "license_code", "LicenseId", "license_id")
        license_ref = next((data[k] for k in keys if k in data), "-")
        log.info("%s %s license=%s", event.type, event.id, license_ref)
        return {"received": event.id}

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--secret", default=os.environ.get("RELAY_DEMO_SECRET", DEMO_SECRET))
    parser.add_argument("--scheme", default="standard", choices=["standard", "x-webhook", "babel"])
    parser.add_argument("--db", default="flask_receiver_events.db")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    create_app(args.secret, args.scheme, args.db).run(host=args.host, port=args.port)


if __name__ == "__main__":
    main()
