"""WebhookMiddleware through Starlette's real TestClient."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kit_http_contract import SECRET, HTTPContract, Recorder, answer_of, assert_problem, delivery
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from receiver_kit import SQLiteStore, Verifier
from receiver_kit.contrib.starlette import WebhookMiddleware, get_event
from receiver_kit.testing import signed_request


async def receive_async(request: Request) -> JSONResponse:
    event = request.state.webhook_event
    assert (await request.body()).startswith(b"{")  # the body is replayed to the app
    return JSONResponse({"handled": event.id, "type": event.type})


def health(request: Request) -> PlainTextResponse:
    with pytest.raises(LookupError):
        get_event(request)
    return PlainTextResponse("ok")


def recording(recorder: Recorder) -> Callable[[Request], JSONResponse]:
    """The endpoint that hands the middleware's event to `recorder`."""

    def receive(request: Request) -> JSONResponse:
        status, document = recorder.handle(get_event(request))
        return JSONResponse(document, status_code=status)

    return receive


def build_app(db_path, recorder: Recorder) -> Starlette:
    receive = recording(recorder)
    app = Starlette(
        routes=[
            Route("/webhooks", receive, methods=["POST"]),
            Route("/webhooks/babel", receive_async, methods=["POST"]),
            Route("/health", health),
        ]
    )
    app.add_middleware(
        WebhookMiddleware,
        verifier=Verifier(SECRET),
        store=SQLiteStore(db_path),
        paths=["/webhooks"],
        max_body_bytes=64 * 1024,
    )
    return app


@pytest.fixture
def client(tmp_path, recorder):
    return TestClient(build_app(tmp_path / "claims.db", recorder))


class TestStarletteMiddleware(HTTPContract):
    """The SPEC 6 answers through WebhookMiddleware."""


def test_paths_outside_the_prefixes_are_not_verified(client):
    """/health is not under /webhooks: no signature needed."""
    assert client.get("/health").text == "ok"


def test_async_endpoint_gets_the_event_and_the_replayed_body(client):
    """An async endpoint under the prefix reads the event from request.state and the body."""
    body, headers = delivery()
    response = client.post("/webhooks/babel", content=body, headers=headers)
    assert response.status_code == 200
    assert response.json()["handled"] == headers["webhook-id"]


def test_oversized_body_is_413(client):
    """A body over max_body_bytes is refused before it is read whole."""
    body, headers = signed_request({"type": "x", "blob": "a" * 70_000}, SECRET)
    assert_problem(answer_of(client.post("/webhooks", content=body, headers=headers)), 413)


def test_babel_scheme_through_the_middleware(tmp_path):
    """The middleware verifies the hex schemes too (X-Babel-* headers)."""
    app = Starlette(routes=[Route("/hooks", receive_async, methods=["POST"])])
    app.add_middleware(
        WebhookMiddleware, verifier=Verifier("babel-secret", scheme="babel"), paths="/hooks"
    )
    body, headers = signed_request({"EventType": "license.revoked", "Id": 7}, "babel-secret",
                                   scheme="babel")
    response = TestClient(app).post("/hooks", content=body, headers=headers)
    assert response.status_code == 200
    assert response.json()["type"] == "license.revoked"
    assert headers["X-Babel-Event"] == "license.revoked"


def test_store_failure_is_503(tmp_path, recorder):
    """When the store fails the middleware answers 503 so the sender retries."""
    db = tmp_path / "claims.db"
    db.mkdir()  # a directory where the database file should be: SQLite cannot open it
    app = Starlette(routes=[Route("/webhooks", recording(recorder), methods=["POST"])])
    app.add_middleware(WebhookMiddleware, verifier=Verifier(SECRET), store=SQLiteStore(db))
    body, headers = delivery()
    response = TestClient(app).post("/webhooks", content=body, headers=headers)
    assert_problem(answer_of(response), 503)
