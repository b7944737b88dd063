"""WebhookDependency through FastAPI's real TestClient."""

from typing import Annotated

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from kit_http_contract import SECRET, HTTPContract, Recorder, delivery

from receiver_kit import MemoryStore, SQLiteStore, Verifier, WebhookEvent
from receiver_kit.contrib.fastapi import WebhookDependency


def build_app(db_path, recorder: Recorder, *, install: bool = True) -> FastAPI:
    app = FastAPI()
    webhook = WebhookDependency(Verifier(SECRET), store=SQLiteStore(db_path))
    if install:
        webhook.install(app)

    @app.post("/webhooks")
    def receive(event: Annotated[WebhookEvent, webhook.depends()]) -> JSONResponse:
        if event.type == "test.teapot":
            raise HTTPException(status_code=418, detail="short and stout")
        status, document = recorder.handle(event)
        if status >= 300:
            raise HTTPException(status_code=status, detail=document["error"])
        return JSONResponse(document, status_code=status)

    return app


@pytest.fixture
def client(tmp_path, recorder):
    return TestClient(build_app(tmp_path / "claims.db", recorder))


class TestFastAPIDependency(HTTPContract):
    """The SPEC 6 answers through FastAPI's TestClient."""


def test_raised_http_exception_passes_through_and_releases(client):
    """A handler's own HTTPException keeps its status and body, and releases the claim."""
    body, headers = delivery("test.teapot")
    response = client.post("/webhooks", content=body, headers=headers)
    assert response.status_code == 418
    assert response.json() == {"detail": "short and stout"}
    again = client.post("/webhooks", content=body, headers=headers)
    assert again.status_code == 418  # released: processed again, not "duplicate"


def test_returned_error_status_via_http_exception_releases(client):
    """Raising HTTPException(503) from the handler releases the claim for the retry."""
    body, headers = delivery("test.status")
    assert client.post("/webhooks", content=body, headers=headers).status_code == 503
    assert client.post("/webhooks", content=body, headers=headers).status_code == 200


def test_without_install_answers_keep_fastapi_shape(tmp_path, recorder):
    """Without install() the kit's answers still carry the right status, in FastAPI's shape."""
    client = TestClient(build_app(tmp_path / "claims.db", recorder, install=False))
    body, headers = delivery()
    headers["webhook-signature"] = "v1,bad"
    response = client.post("/webhooks", content=body, headers=headers)
    assert response.status_code == 401
    assert "signature" in response.json()["detail"]


def test_validation_errors_of_other_parameters_release_the_claim():
    """A 422 from another parameter passes through, and the claim is released."""
    store = MemoryStore()
    app = FastAPI()
    webhook = WebhookDependency(Verifier(SECRET), store=store)
    webhook.install(app)

    @app.post("/webhooks")
    def receive(
        tenant: int, event: Annotated[WebhookEvent, webhook.depends()]
    ) -> dict[str, str]:
        return {"id": event.id}

    client = TestClient(app)
    body, headers = delivery()
    assert client.post("/webhooks?tenant=x", content=body, headers=headers).status_code == 422
    assert client.post("/webhooks?tenant=1", content=body, headers=headers).status_code == 200


def test_dependency_reuses_the_middlewares_event():
    """Behind WebhookMiddleware the dependency yields the middleware's event, no second claim."""
    from receiver_kit.contrib.starlette import WebhookMiddleware

    store = MemoryStore()
    app = FastAPI()
    webhook = WebhookDependency(Verifier(SECRET), store=store)
    app.add_middleware(WebhookMiddleware, verifier=Verifier(SECRET), store=store)

    @app.post("/webhooks")
    def receive(event: Annotated[WebhookEvent, webhook.depends()]) -> dict[str, str]:
        return {"id": event.id}

    client = TestClient(app)
    body, headers = delivery()
    assert client.post("/webhooks", content=body, headers=headers).json() == {
        "id": headers["webhook-id"]
    }
    assert client.post("/webhooks", content=body, headers=headers).json()["duplicate"] is True
