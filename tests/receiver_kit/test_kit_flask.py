"""The Flask extension and decorator through Flask's real test client."""

from __future__ import annotations

import pytest
from flask import Flask, abort, g
from kit_http_contract import SECRET, Answer, HTTPContract, Recorder, delivery

from receiver_kit import ConfigurationError, MemoryStore, SQLiteStore, Verifier
from receiver_kit.contrib.flask import ReceiverKit, webhook_view
from receiver_kit.testing import signed_request


def build_app(db_path, recorder: Recorder) -> Flask:
    app = Flask(__name__)
    app.config.update(
        RECEIVER_KIT_SECRET=SECRET,
        RECEIVER_KIT_STORE=f"sqlite:///{db_path}",
        RECEIVER_KIT_LEASE=30,
    )
    kit = ReceiverKit(app)

    @app.post("/webhooks")
    @kit.webhook
    def receive(event):
        assert g.webhook_event is event
        if event.type == "test.abort":
            abort(422)
        status, document = recorder.handle(event)
        return document, status

    @app.post("/tenants/<int:tenant>/webhooks")
    @kit.webhook
    async def receive_async(event, tenant):
        return {"handled": event.id, "tenant": tenant}

    return app


@pytest.fixture
def client(tmp_path, recorder):
    return build_app(tmp_path / "claims.db", recorder).test_client()


class TestFlaskExtension(HTTPContract):
    @pytest.fixture
    def post(self, client):
        def send(body: bytes, headers: dict[str, str]) -> Answer:
            response = client.post("/webhooks", data=body, headers=headers)
            return Answer(response.status_code, response.content_type, response.get_data())

        return send


def test_extension_reads_app_config(tmp_path):
    """Secret, scheme, tolerance and store come from RECEIVER_KIT_* keys."""
    app = Flask(__name__)
    app.config.update(
        RECEIVER_KIT_SECRET=["old-secret", "new-secret"],
        RECEIVER_KIT_SCHEME="x-webhook",
        RECEIVER_KIT_TOLERANCE=None,
        RECEIVER_KIT_STORE=f"sqlite:///{tmp_path / 'c.db'}",
        RECEIVER_KIT_TTL=3600,
    )
    kit = ReceiverKit()
    kit.init_app(app)
    settings = kit.settings(app)
    assert settings.verifier.scheme == "x-webhook"
    assert settings.verifier.tolerance is None
    assert isinstance(settings.store, SQLiteStore)
    assert settings.store.ttl_s == 3600


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "RECEIVER_KIT_SECRET is not set"),
        ({"RECEIVER_KIT_SECRET": "whsec_%%%"}, "RECEIVER_KIT_SECRET"),
        ({"RECEIVER_KIT_SECRET": SECRET, "RECEIVER_KIT_SCHEME": "hmac"}, "RECEIVER_KIT_SCHEME"),
        ({"RECEIVER_KIT_SECRET": SECRET, "RECEIVER_KIT_TOLERANCE": -5}, "RECEIVER_KIT_TOLERANCE"),
        ({"RECEIVER_KIT_SECRET": SECRET, "RECEIVER_KIT_STORE": "mongo://x"}, "RECEIVER_KIT_STORE"),
        ({"RECEIVER_KIT_SECRET": SECRET, "RECEIVER_KIT_LEASE": 0}, "RECEIVER_KIT_LEASE"),
    ],
)
def test_misconfiguration_fails_at_init_app(config, message):
    """A bad config fails when the extension is initialised, naming the key."""
    app = Flask(__name__)
    app.config.update(config)
    with pytest.raises(ConfigurationError, match=message) as info:
        ReceiverKit(app)
    assert "%%%" not in str(info.value)


def test_async_view_with_url_parameters(client):
    """Async views work and still receive their URL parameters after the event."""
    body, headers = delivery()
    response = client.post("/tenants/7/webhooks", data=body, headers=headers)
    assert response.status_code == 200
    assert response.json == {"handled": headers["webhook-id"], "tenant": 7}


def test_abort_passes_through_and_releases(client):
    """werkzeug HTTPExceptions (abort) keep their status and release the claim."""
    body, headers = delivery("test.abort")
    assert client.post("/webhooks", data=body, headers=headers).status_code == 422
    assert client.post("/webhooks", data=body, headers=headers).status_code == 422


def test_standalone_decorator_with_babel_and_no_store():
    """webhook_view works without the extension; store=None only verifies."""
    app = Flask(__name__)

    @app.post("/babel")
    @webhook_view(Verifier("babel-secret", scheme="babel"), store=None)
    def babel(event):
        return {"type": event.type, "license": event.payload["LicenseId"]}

    client = app.test_client()
    body, headers = signed_request(
        {"Id": 42, "LicenseId": "LIC-0001", "EventType": "license.created"},
        "babel-secret",
        scheme="babel",
    )
    for _ in range(2):  # no store: both deliveries run
        response = client.post("/babel", data=body, headers=headers)
        assert response.json == {"type": "license.created", "license": "LIC-0001"}


def test_extension_accepts_verifier_and_store_from_code():
    """Application factories can pass a Verifier and store instead of config keys."""
    app = Flask(__name__)
    store = MemoryStore()
    kit = ReceiverKit(app, verifier=Verifier(SECRET), store=store)

    @app.post("/w")
    @kit.webhook
    def w(event):
        return "", 204

    body, headers = delivery()
    assert app.test_client().post("/w", data=body, headers=headers).status_code == 204
    assert store.claim(headers["webhook-id"]).status.value == "duplicate"


def test_uninitialised_extension_is_a_clear_error():
    """Using kit.webhook on an app without init_app is a ConfigurationError."""
    app = Flask(__name__)
    kit = ReceiverKit()

    @app.post("/w")
    @kit.webhook
    def w(event):
        return ""

    app.config["PROPAGATE_EXCEPTIONS"] = True
    body, headers = delivery()
    with pytest.raises(ConfigurationError, match="init_app"):
        app.test_client().post("/w", data=body, headers=headers)
