"""The HTTP behaviour every framework integration must show (SPEC 6), as a test base class.

Each framework's test module subclasses `HTTPContract` and provides the
fixtures `recorder` (conftest gives a fresh `Recorder` for the test app's
handler to report to) and `post(body, headers) -> Answer`, sending through
the framework's real test client. The default `post` sends through a
``client`` fixture that is a Starlette (httpx) TestClient, as FastAPI's is.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from receiver_kit import WebhookEvent
from receiver_kit.testing import sign, signed_request

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@dataclass
class Answer:
    status: int
    content_type: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def answer_of(response: Any) -> Answer:
    """A response of Starlette's (httpx-based) TestClient as an `Answer`."""
    return Answer(response.status_code, response.headers["content-type"], response.content)


Post = Callable[[bytes, dict[str, str]], Answer]


class Recorder:
    """What the test handlers do, chosen by event type, and what they saw.

    ``test.raise`` raises, ``test.status`` answers 503, ``test.block`` waits
    on `gate` (after setting `entered`); anything else answers 200.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.calls: list[str] = []
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.fail_next = True

    def handle(self, event: WebhookEvent) -> tuple[int, dict[str, Any]]:
        """The handler body shared by every framework's test app."""
        assert isinstance(event, WebhookEvent)
        self.calls.append(event.id)
        if event.type == "test.raise" and self.fail_next:
            self.fail_next = False
            raise RuntimeError("handler crashed")
        if event.type == "test.status" and self.fail_next:
            self.fail_next = False
            return 503, {"error": "downstream unavailable"}
        if event.type == "test.block":
            self.entered.set()
            self.gate.wait(10)
        return 200, {"handled": event.id, "type": event.type}


def delivery(event_type: str = "license.created", **extra: Any) -> tuple[bytes, dict[str, str]]:
    payload = {"type": event_type, "data": {"licenseKey": "ABCD-1234", **extra}}
    return signed_request(payload, SECRET, msg_id="evt_" + uuid.uuid4().hex)


def assert_problem(answer: Answer, status: int) -> dict[str, Any]:
    assert answer.status == status, answer.body
    assert answer.content_type.startswith("application/problem+json")
    document = answer.json()
    assert document["status"] == status
    assert {"type", "title", "status", "detail"} <= set(document)
    assert SECRET not in answer.body.decode()
    return document  # type: ignore[no-any-return]


class HTTPContract:
    """SPEC 6 answers: 401 bad/missing signature, 400 malformed, 200 duplicate,
    409 in flight, the handler's answer otherwise, 500 on an exception."""

    #: False where the integration cannot see a status the handler *returns*
    #: (the FastAPI dependency): there, failure is signalled by raising.
    sees_returned_status = True

    @pytest.fixture
    def post(self, client: Any) -> Post:
        def send(body: bytes, headers: dict[str, str]) -> Answer:
            return answer_of(client.post("/webhooks", content=body, headers=headers))

        return send

    def test_valid_delivery_runs_the_handler(self, post: Post, recorder: Recorder) -> None:
        """A signed delivery reaches the handler once and gets its answer."""
        body, headers = delivery()
        answer = post(body, headers)
        assert answer.status == 200, answer.body
        assert answer.json()["handled"] == headers["webhook-id"]
        assert recorder.calls == [headers["webhook-id"]]

    def test_invalid_signature_is_401(self, post: Post, recorder: Recorder) -> None:
        """A wrong signature is a 401 problem; the handler does not run."""
        body, headers = delivery()
        headers["webhook-signature"] = "v1," + "A" * 43 + "="
        assert_problem(post(body, headers), 401)
        assert recorder.calls == []

    def test_tampered_body_is_401(self, post: Post, recorder: Recorder) -> None:
        """A body changed after signing is a 401 problem."""
        body, headers = delivery()
        assert_problem(post(body.replace(b"ABCD", b"ABCE"), headers), 401)
        assert recorder.calls == []

    def test_missing_signature_header_is_401(self, post: Post, recorder: Recorder) -> None:
        """No signature header is a 401 problem naming the header."""
        body, headers = delivery()
        del headers["webhook-signature"]
        document = assert_problem(post(body, headers), 401)
        assert "webhook-signature" in document["detail"]
        assert recorder.calls == []

    def test_stale_timestamp_is_401(self, post: Post, recorder: Recorder) -> None:
        """A delivery signed an hour ago is refused as stale."""
        body = b'{"type":"license.created"}'
        headers = sign(body, SECRET, timestamp=int(time.time()) - 3600)
        assert_problem(post(body, headers), 401)
        assert recorder.calls == []

    def test_malformed_body_is_400(self, post: Post, recorder: Recorder) -> None:
        """A correctly signed body that is not JSON is a 400 problem."""
        body = b"license.created ABCD-1234"
        assert_problem(post(body, sign(body, SECRET)), 400)
        assert recorder.calls == []

    def test_duplicate_is_200_and_not_processed_again(
        self, post: Post, recorder: Recorder
    ) -> None:
        """The same event id again answers 200 'duplicate' without running the handler."""
        body, headers = delivery()
        assert post(body, headers).status == 200
        again = post(body, headers)
        assert again.status == 200
        # One answer in every integration, the one README's table shows.
        assert again.json() == {"id": headers["webhook-id"], "status": "duplicate",
                                "duplicate": True}
        assert recorder.calls == [headers["webhook-id"]]

    def test_in_flight_duplicate_is_409(self, post: Post, recorder: Recorder) -> None:
        """While the first delivery is being handled, the same id gets 409, never a 2nd run."""
        body, headers = delivery("test.block")
        first: list[Answer] = []
        worker = threading.Thread(target=lambda: first.append(post(body, headers)))
        worker.start()
        try:
            assert recorder.entered.wait(10), "the first delivery never reached the handler"
            assert_problem(post(body, headers), 409)
        finally:
            recorder.gate.set()
            worker.join(20)
        assert first
        assert first[0].status == 200
        assert post(body, headers).json()["duplicate"] is True
        assert recorder.calls == [headers["webhook-id"]]

    def test_handler_exception_is_500_then_the_retry_processes(
        self, post: Post, recorder: Recorder
    ) -> None:
        """An exception answers a 500 problem and releases the claim; the retry is processed."""
        body, headers = delivery("test.raise")
        assert_problem(post(body, headers), 500)
        retry = post(body, headers)
        assert retry.status == 200, retry.body
        assert retry.json()["handled"] == headers["webhook-id"]
        assert recorder.calls == [headers["webhook-id"]] * 2
        assert post(body, headers).json()["duplicate"] is True

    def test_handler_error_status_releases_the_claim(
        self, post: Post, recorder: Recorder
    ) -> None:
        """A non-2xx answer from the handler is passed on and releases the claim."""
        if not self.sees_returned_status:
            pytest.skip("this integration cannot see returned statuses; handlers raise instead")
        body, headers = delivery("test.status")
        assert post(body, headers).status == 503
        assert post(body, headers).status == 200
        assert recorder.calls == [headers["webhook-id"]] * 2
