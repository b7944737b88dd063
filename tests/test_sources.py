"""Inbound sources: each seed platform's own webhook, signed as its document says, is taken.

One relay with a source per seed platform (and one per generic scheme) runs
for the module; each test tells its events apart by their bodies and ids.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from relay.http.schemas import SourceListOut
from relay.signing import Signer
from tests.admin.harness import run_cli
from tests.conftest import SECRET, endpoint_yaml
from tests.support import Received, Receiver, RelayThread, base_config, free_port, wait_until

pytestmark = pytest.mark.both_backends

BABEL_SECRET = "babel-test-secret-4f1c"
VALIDATOR_SECRET = "lv-test-secret-77aa"
PLATFORM_SECRET = "whsec_cGxhdGZvcm0tdGVzdC1zZWNyZXQ"
PLATFORM_OLD_SECRET = "whsec_b2xkLXBsYXRmb3JtLXNlY3JldA"
CHAIN_SECRET = "optional-custom-secret"
MANAGER_SECRET = "your-webhook-secret"

SOURCES = [
    {"name": "babel", "verify": {"scheme": "babel", "secret": BABEL_SECRET},
     "type_from": "header:X-Babel-Event", "id_from": "header:X-Babel-Webhook-Id",
     "tenant_from": "field:CustomerId"},
    {"name": "validator", "verify": {"scheme": "x-webhook", "secret": VALIDATOR_SECRET}},
    {"name": "platform", "path": "/hooks/license-platform",
     "verify": {"scheme": "x-webhook", "secrets": [PLATFORM_SECRET, PLATFORM_OLD_SECRET]}},
    {"name": "licensechain", "verify": {"scheme": "x-webhook", "secret": CHAIN_SECRET},
     "id_from": "field:id", "tenant_from": "field:data.userId"},
    {"name": "license-manager", "verify": {"scheme": "x-webhook", "secret": MANAGER_SECRET},
     "tenant_from": "field:payload.customer_id"},
    {"name": "upstream", "verify": {"scheme": "standard", "secret": SECRET, "tolerance": "5m"}},
    {"name": "github-style", "verify": {"scheme": "hmac", "header": "X-Hub-Signature-256",
                                        "prefix": "sha256=", "secret": "gh-secret"}},
    {"name": "stamped", "verify": {"scheme": "hmac", "header": "X-Signature",
                                   "algorithm": "sha512", "encoding": "base64",
                                   "signed": "timestamp.body", "timestamp_header": "X-Timestamp",
                                   "tolerance": "1m", "secret": "stamp-secret"}},
    {"name": "token", "verify": {"scheme": "bearer", "tokens": ["t-new", "t-old"]}},
    {"name": "basic", "verify": {"scheme": "basic", "username": "platform", "password": "pw-1"}},
    {"name": "open", "verify": {"scheme": "none"}, "type_from": "field:meta.kind"},
]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[RelayThread]:
    folder = tmp_path_factory.mktemp("sources")
    port, db = free_port(), folder / "relay.db"
    endpoints = (endpoint_yaml("all", receiver.url + "/all")
                 + endpoint_yaml("babel-only", receiver.url + "/babel-only", sources=["babel"])
                 + endpoint_yaml("default-only", receiver.url + "/default-only",
                                 sources=["default"]))
    extra = "sources:\n" + "".join(f"  - {json.dumps(s)}\n" for s in SOURCES)
    config = folder / "relay.yaml"
    config.write_text(base_config(port, db, endpoints, extra))
    server = RelayThread(config, port, db).start()
    yield server
    server.stop()


def hex_hmac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def delivered(receiver: Receiver, path: str, body: bytes) -> Received:
    """The delivery of `body` to `path` (waits for it)."""
    def find() -> Received | None:
        return next((r for r in list(receiver.requests) if r.path == path and r.body == body),
                    None)
    found: Received = wait_until(find, message=f"a delivery to {path}")
    return found


def stored(relay: RelayThread, source: str) -> int:
    return int(relay.rows("SELECT count(*) FROM events WHERE source = ?", (source,))[0][0])


def refused(relay: RelayThread, source: str, reason: str) -> float:
    text = httpx.get(relay.url + "/metrics", timeout=10).text
    line = (r"^relay_source_requests_refused_total"
            rf'\{{reason="{reason}",source="{re.escape(source)}"\}} (\S+)$')
    match = re.search(line, text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def assert_refused(relay: RelayThread, source: str, reason: str,
                   send: Callable[[], httpx.Response]) -> dict[str, object]:
    """`send` gets a 401 problem, stores nothing and is counted by source and reason."""
    before, counted = stored(relay, source), refused(relay, source, reason)
    response = send()
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, object] = response.json()
    assert problem["type"] == "urn:relay:problem:signature-invalid"
    assert "nothing was stored" in str(problem["detail"])
    assert stored(relay, source) == before
    assert refused(relay, source, reason) == counted + 1
    return problem


# -- the five seed platforms, as their documents show their requests --------------------------


def babel_request(webhook_id: str, body: bytes, signature: str | None = None) -> dict[str, str]:
    """Babel's headers (seed 000): id, event, dispatch time, HMAC-SHA256 of the body."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "Babel Licensing Service",
        "X-Babel-Webhook-Id": webhook_id,
        "X-Babel-Event": "license.created",
        "X-Babel-Timestamp": "2025-06-02T09:30:00Z",
        "X-Babel-Signature": signature if signature is not None else hex_hmac(BABEL_SECRET, body),
    }


def babel_body(license_id: str) -> bytes:
    return json.dumps({
        "Id": 1017, "LicenseId": license_id, "UserKey": "AAAA-BBBB-CCCC-DDDD",
        "Licensee": "Contoso Ltd", "LicensingMode": 1, "IssueDate": "2025-06-02T09:29:58Z",
        "SupportExpireDate": "2026-06-02T00:00:00Z", "ExpireDate": "2026-06-02T00:00:00Z",
        "CustomerId": 42, "OrderId": 311, "TemplateId": 3, "Revoked": False, "Trace": False,
        "EventType": "license.created", "Timestamp": "2025-06-02T09:30:00Z",
    }, separators=(",", ":")).encode()


def test_babel_webhook_is_verified_stored_and_delivered(relay: RelayThread,
                                                        receiver: Receiver) -> None:
    """Babel's X-Babel-* request: its webhook id is the event id, CustomerId the tenant."""
    body = babel_body("LIC-0001")
    # C#'s Convert.ToHexString writes upper case; the digest is compared case-blind.
    headers = babel_request("wh-81f3", body, hex_hmac(BABEL_SECRET, body).upper())
    response = relay.post(body, headers, path="/v1/sources/babel")
    assert response.status_code == 202, response.text
    assert response.json() == {"id": "wh-81f3", "type": "license.created", "deliveries": 2,
                               "duplicate": False}
    for path in ("/all", "/babel-only"):
        sent = delivered(receiver, path, body)
        assert sent.header("webhook-id") == "wh-81f3"
    row = relay.rows("SELECT source, tenant FROM events WHERE id = ?", ("wh-81f3",))
    assert row == [("babel", "42")]


def test_babel_retry_is_a_duplicate_and_a_changed_body_a_conflict(relay: RelayThread) -> None:
    """Babel retries a failed delivery 5 minutes later with the same webhook id."""
    body = babel_body("LIC-0002")
    first = relay.post(body, babel_request("wh-retry", body), path="/v1/sources/babel")
    again = relay.post(body, babel_request("wh-retry", body), path="/v1/sources/babel")
    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["duplicate"] is True and again.json()["id"] == "wh-retry"
    changed = babel_body("LIC-0003")
    conflict = relay.post(changed, babel_request("wh-retry", changed), path="/v1/sources/babel")
    assert conflict.status_code == 409
    assert relay.rows("SELECT count(*) FROM deliveries WHERE event_id = ?", ("wh-retry",)) \
        == [(2,)]


def test_babel_with_a_wrong_or_missing_signature_is_refused(relay: RelayThread) -> None:
    """A signature by another secret, or none, is a 401 and nothing is stored."""
    body = babel_body("LIC-0004")
    forged = hex_hmac("not-the-secret", body)
    assert_refused(relay, "babel", "signature", lambda: relay.post(
        body, babel_request("wh-forged", body, forged), path="/v1/sources/babel"))
    headers = babel_request("wh-unsigned", body)
    del headers["X-Babel-Signature"]
    problem = assert_refused(relay, "babel", "missing", lambda: relay.post(
        body, headers, path="/v1/sources/babel"))
    assert "X-Babel-Signature" in str(problem["detail"])
    # A browser page of another site, even with a valid signature, is not the platform.
    cross = relay.post(body, {**babel_request("wh-page", body), "Sec-Fetch-Site": "cross-site"},
                       path="/v1/sources/babel")
    assert cross.status_code == 403
    assert relay.rows("SELECT count(*) FROM events WHERE id = ?", ("wh-page",)) == [(0,)]
    # The body changed after signing (one byte): the signature no longer matches.
    tampered = body.replace(b"Contoso", b"Cantoso")
    assert_refused(relay, "babel", "signature", lambda: relay.post(
        tampered, babel_request("wh-tampered", body), path="/v1/sources/babel"))


# Seed 001's example payload, with its whitespace: the signature covers these bytes.
VALIDATOR_BODY = b"""{
"event": "license.validated",
"timestamp": "2025-01-03T14:25:30.000Z",
"data": {
"licenseId": "lic_xyz789",
"licenseKey": "ABCD-1234-EFGH-5678",
"licenseName": "Production License",
"fingerprint": "device-abc-123",
"deviceName": "MacBook Pro",
"deviceType": "desktop",
"ipAddress": "192.168.1.100",
"currentActivations": 3,
"maxActivations": 5
}
}"""


def test_license_validator_webhook(relay: RelayThread, receiver: Receiver) -> None:
    """Seed 001: X-Webhook-Signature, hex HMAC-SHA256 of the raw body; the type is `event`."""
    headers = {"Content-Type": "application/json",
               "X-Webhook-Signature": hex_hmac(VALIDATOR_SECRET, VALIDATOR_BODY)}
    response = relay.post(VALIDATOR_BODY, headers, path="/v1/sources/validator")
    assert response.status_code == 202, response.text
    assert response.json()["type"] == "license.validated"
    assert response.json()["deliveries"] == 1  # not to babel-only, not to default-only
    assert delivered(receiver, "/all", VALIDATOR_BODY).body == VALIDATOR_BODY
    wrong = {**headers, "X-Webhook-Signature": hex_hmac(VALIDATOR_SECRET, VALIDATOR_BODY + b" ")}
    assert_refused(relay, "validator", "signature", lambda: relay.post(
        VALIDATOR_BODY, wrong, path="/v1/sources/validator"))


def test_license_platform_webhook_at_its_own_path_with_a_rotated_secret(
    relay: RelayThread, receiver: Receiver
) -> None:
    """Seed 002: a whsec_ secret signs X-Webhook-Signature; the old secret still works."""
    body = b'{"type":"activation.created","data":{"licenseId":"lic_77","environment":"production"}}'
    for secret in (PLATFORM_SECRET, PLATFORM_OLD_SECRET):
        response = relay.post(body, {"X-Webhook-Signature": hex_hmac(secret, body)},
                              path="/hooks/license-platform")
        assert response.status_code == 202, response.text
    assert stored(relay, "platform") >= 2
    assert_refused(relay, "platform", "signature", lambda: relay.post(
        body, {"X-Webhook-Signature": hex_hmac("whsec_revoked", body)},
        path="/hooks/license-platform"))
    assert httpx.post(relay.url + "/v1/sources/platform", content=body, timeout=10,
                      headers={"Content-Type": "application/json"}).status_code == 404


def licensechain_body(event_id: str) -> bytes:
    """Seed 003's event structure, as JSON.stringify writes it (the bytes it signs)."""
    return json.dumps({
        "id": event_id, "type": "license.created",
        "data": {"id": "license-id", "licenseKey": "ABC123", "userId": "user-9",
                 "productId": "product-id", "status": "active",
                 "expiresAt": "2024-12-31T23:59:59Z", "createdAt": "2024-01-01T00:00:00Z"},
        "timestamp": "2024-01-01T00:00:00Z", "signature": "hmac-sha256-signature",
    }, separators=(",", ":")).encode()


def test_licensechain_webhook_id_in_the_body_makes_retries_duplicates(
    relay: RelayThread, receiver: Receiver
) -> None:
    """Seed 003: X-Webhook-Signature and X-Webhook-Timestamp; the body's `id` is the event id."""
    event_id = str(uuid.uuid4())
    body = licensechain_body(event_id)
    headers = {"Content-Type": "application/json",
               "X-Webhook-Signature": hex_hmac(CHAIN_SECRET, body),
               "X-Webhook-Timestamp": str(int(time.time()))}
    first = relay.post(body, headers, path="/v1/sources/licensechain")
    assert first.status_code == 202, first.text
    assert first.json()["id"] == event_id
    assert delivered(receiver, "/all", body).header("webhook-id") == event_id
    # A later retry: a new timestamp header, the same event.
    retry = relay.post(body, {**headers, "X-Webhook-Timestamp": str(int(time.time()) + 60)},
                       path="/v1/sources/licensechain")
    assert retry.status_code == 200 and retry.json()["duplicate"] is True
    assert relay.rows("SELECT tenant, source FROM events WHERE id = ?", (event_id,)) == [
        ("user-9", "licensechain")]
    assert_refused(relay, "licensechain", "signature", lambda: relay.post(
        licensechain_body(str(uuid.uuid4())), headers, path="/v1/sources/licensechain"))


LICENSE_MANAGER_BODY = (b'{"event_type":"license.expiring","timestamp":"2024-01-15T10:30:00Z",'
                        b'"payload":{"license_id":123,"license_code":"LIC-ABC-123",'
                        b'"product_id":"PROD-001","product_reference_id":"My Product",'
                        b'"customer_id":"CUST-001","email":"[email protected]",'
                        b'"expires_at":"2024-01-22T10:30:00Z","days_until_expiry":7}}')


def test_license_manager_webhook(relay: RelayThread, receiver: Receiver) -> None:
    """Seed 004: X-Webhook-Event, a raw hex HMAC without sha256=, its own User-Agent."""
    headers = {"Content-Type": "application/json", "X-Webhook-Event": "license.expiring",
               "X-Webhook-Signature": hex_hmac(MANAGER_SECRET, LICENSE_MANAGER_BODY),
               "User-Agent": "LicenseManager-Webhook/1.0"}
    response = relay.post(LICENSE_MANAGER_BODY, headers, path="/v1/sources/license-manager")
    assert response.status_code == 202, response.text
    assert response.json()["type"] == "license.expiring"
    assert delivered(receiver, "/all", LICENSE_MANAGER_BODY).body == LICENSE_MANAGER_BODY
    tenants = relay.rows("SELECT tenant FROM events WHERE source = ?", ("license-manager",))
    assert ("CUST-001",) in tenants
    assert_refused(relay, "license-manager", "signature", lambda: relay.post(
        LICENSE_MANAGER_BODY, {**headers, "X-Webhook-Signature": "abc123def456"},
        path="/v1/sources/license-manager"))


# -- the relay's standard scheme, the generic ones ---------------------------------------------


def test_another_relays_delivery_is_taken_with_its_event_id(
    relay: RelayThread, make_relay: Callable[..., RelayThread], receiver: Receiver
) -> None:
    """A relay whose endpoint is this relay's `standard` source: the event id carries over."""
    upstream = make_relay(endpoint_yaml("downstream", relay.url + "/v1/sources/upstream"))
    body = b'{"type":"order.created","data":{"OrderNumber":"SO-1001"}}'
    answer = upstream.post(body).json()
    sent = delivered(receiver, "/all", body)
    assert sent.header("webhook-id") == answer["id"]
    assert relay.rows("SELECT source FROM events WHERE id = ?", (answer["id"],)) == [
        ("upstream",)]


def test_standard_signature_outside_the_tolerance_is_refused(relay: RelayThread) -> None:
    """A Standard Webhooks request signed an hour ago is a replay: 401, nothing stored."""
    body = b'{"type":"license.revoked"}'
    old = int(time.time()) - 3600
    headers = Signer("standard", [SECRET]).headers("evt_stale", "license.revoked", old, body)
    problem = assert_refused(relay, "upstream", "timestamp", lambda: relay.post(
        body, headers, path="/v1/sources/upstream"))
    assert "webhook-timestamp" in str(problem["detail"])
    fresh = Signer("standard", [SECRET]).headers("evt_fresh", "license.revoked",
                                                 int(time.time()), body)
    forged = {**fresh, "webhook-id": "evt_other"}  # the id is signed too
    assert_refused(relay, "upstream", "signature", lambda: relay.post(
        body, forged, path="/v1/sources/upstream"))
    assert relay.post(body, fresh, path="/v1/sources/upstream").status_code == 202


def test_generic_hmac_with_a_prefix(relay: RelayThread) -> None:
    """`hmac`: header, `sha256=` prefix, hex of the body."""
    body = b'{"event":"report.created","Id":5}'
    signature = "sha256=" + hex_hmac("gh-secret", body)
    ok = relay.post(body, {"X-Hub-Signature-256": signature}, path="/v1/sources/github-style")
    assert ok.status_code == 202, ok.text
    assert_refused(relay, "github-style", "signature", lambda: relay.post(
        body, {"X-Hub-Signature-256": hex_hmac("gh-secret", body)},
        path="/v1/sources/github-style"))


def stamped(body: bytes, stamp: int, secret: str = "stamp-secret") -> dict[str, str]:
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha512).digest()
    return {"X-Timestamp": str(stamp), "X-Signature": base64.b64encode(digest).decode()}


def test_generic_hmac_signing_the_timestamp(relay: RelayThread) -> None:
    """`hmac` sha512, base64, over `{timestamp}.{body}`: a stale or rewritten stamp is refused."""
    body = b'{"type":"license.expired"}'
    now = int(time.time())
    assert relay.post(body, stamped(body, now), path="/v1/sources/stamped").status_code == 202
    assert_refused(relay, "stamped", "timestamp", lambda: relay.post(
        body, stamped(body, now - 600), path="/v1/sources/stamped"))
    rewritten = {**stamped(body, now - 600), "X-Timestamp": str(now)}
    assert_refused(relay, "stamped", "signature", lambda: relay.post(
        body, rewritten, path="/v1/sources/stamped"))


def test_bearer_and_basic_sources(relay: RelayThread) -> None:
    """Tokens and passwords, each of a rotation, compared in constant time."""
    body = b'{"type":"license.deleted"}'
    for token in ("t-new", "t-old"):
        answer = relay.post(body, {"Authorization": f"Bearer {token}"}, path="/v1/sources/token")
        assert answer.status_code == 202, answer.text
    problem = assert_refused(relay, "token", "signature", lambda: relay.post(
        body, {"Authorization": "Bearer t-guess"}, path="/v1/sources/token"))
    assert problem["source"] == "token"
    missing = relay.post(body, path="/v1/sources/token")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    good = "Basic " + base64.b64encode(b"platform:pw-1").decode()
    assert relay.post(body, {"Authorization": good}, path="/v1/sources/basic").status_code == 202
    bad = "Basic " + base64.b64encode(b"platform:pw-2").decode()
    assert_refused(relay, "basic", "signature", lambda: relay.post(
        body, {"Authorization": bad}, path="/v1/sources/basic"))


def test_none_on_loopback_takes_a_dotted_type_and_keeps_browser_rules(relay: RelayThread) -> None:
    """`none` needs no proof on a loopback listener, but a page of another site is refused."""
    body = b'{"meta":{"kind":"order.updated"},"OrderNumber":"SO-7"}'
    answer = relay.post(body, path="/v1/sources/open")
    assert answer.status_code == 202 and answer.json()["type"] == "order.updated"
    cross = relay.post(body, {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
                       path="/v1/sources/open")
    assert cross.status_code == 403
    missing = relay.post(b'{"type":"x.y"}', path="/v1/sources/open")
    assert missing.status_code == 400
    assert "meta.kind" in missing.json()["detail"] and "sources[10].type_from" in \
        missing.json()["detail"]


def test_default_source_endpoint_gets_only_v1_events(relay: RelayThread,
                                                     receiver: Receiver) -> None:
    """`sources: [default]` is /v1/events; an endpoint without `sources` gets every source."""
    body = b'{"type":"license.updated","n":"default-only"}'
    answer = relay.post(body)
    assert answer.status_code == 202 and answer.json()["deliveries"] == 2
    delivered(receiver, "/default-only", body)
    delivered(receiver, "/all", body)
    assert relay.rows("SELECT source FROM events WHERE id = ?", (answer.json()["id"],)) == [
        (None,)]


def test_events_show_their_source_in_the_admin_api(relay: RelayThread) -> None:
    """GET /v1/events/{id} says where the event came from; /v1/events is `default`."""
    body = babel_body("LIC-0100")
    relay.post(body, babel_request("wh-api", body), path="/v1/sources/babel")
    event = httpx.get(relay.url + "/v1/events/wh-api", timeout=10).json()
    assert event["source"] == "babel" and event["tenant"] == "42"
    plain = relay.post(b'{"type":"license.updated"}').json()
    assert httpx.get(relay.url + f"/v1/events/{plain['id']}", timeout=10).json()["source"] \
        == "default"


def test_only_post_and_json_bodies(relay: RelayThread) -> None:
    """A source's own path answers 405 to GET and 415 to a form, as /v1/events does; GET
    /v1/sources/{name} is the admin API's."""
    assert httpx.get(relay.url + "/hooks/license-platform", timeout=10).status_code == 405
    assert httpx.get(relay.url + "/v1/sources/babel", timeout=10).json()["origin"] == "config"
    form = httpx.post(relay.url + "/v1/sources/babel", content=b"a=b", timeout=10,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 415


def test_metrics_count_accepted_requests_by_source(relay: RelayThread) -> None:
    """relay_source_requests_accepted_total{source} counts what each source got through."""
    text = httpx.get(relay.url + "/metrics", timeout=10).text
    assert re.search(r'^relay_source_requests_accepted_total\{source="babel"\} [1-9]', text,
                     re.MULTILINE), text


def test_unsourced_paths_are_unaffected(relay: RelayThread, tmp_path: Path) -> None:
    """A name that is no source is a 404 problem."""
    response = httpx.post(relay.url + "/v1/sources/nope", content=b"{}", timeout=10,
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_dashboard_and_cli_show_the_source(relay: RelayThread) -> None:
    """The event and delivery pages, and `relay event`, say which source an event came by."""
    body = babel_body("LIC-0200")
    relay.post(body, babel_request("wh-ui", body), path="/v1/sources/babel")
    with httpx.Client(base_url=relay.url, timeout=10) as client:
        page = client.get("/ui/events/wh-ui")
        assert page.status_code == 200, page.text
        assert re.search(r"<dd class=\"mono\" data-source>babel</dd>", page.text)
        delivery = client.get("/v1/events/wh-ui").json()["deliveries"][0]["id"]
        detail = client.get(f"/ui/deliveries/{delivery}").text
        assert re.search(r"<dd class=\"mono\" data-source>babel</dd>", detail)
        plain = relay.post(b'{"type":"license.updated"}').json()["id"]
        assert re.search(r"data-source>default</dd>", client.get(f"/ui/events/{plain}").text)
    result = run_cli("event", "wh-ui", "-c", str(relay.config_path))
    assert result.code == 0, result.err
    assert "source babel, tenant 42" in result.out


def test_a_reload_adds_changes_and_removes_sources(
    make_relay: Callable[..., RelayThread], receiver: Receiver
) -> None:
    """Sources follow relay.yaml: a new source answers, a rotated secret applies, a removed 404s."""
    relay = make_relay(endpoint_yaml("all", receiver.url + "/reloaded"))
    body = b'{"type":"license.created","n":"reload"}'
    signed = {"X-Webhook-Signature": hex_hmac("first", body)}
    assert relay.post(body, signed, path="/v1/sources/late").status_code == 404

    def reload_with(sources: str) -> None:
        text = relay.config_path.read_text().split("sources:\n")[0]
        relay.config_path.write_text(text + sources)
        answer = httpx.post(relay.url + "/v1/reload", timeout=10,
                            headers={"Content-Type": "application/json"})
        assert answer.status_code == 200, answer.text

    reload_with('sources:\n  - {"name": "late", "verify": {"scheme": "x-webhook", '
                '"secret": "first"}}\n')
    assert relay.post(body, signed, path="/v1/sources/late").status_code == 202
    reload_with('sources:\n  - {"name": "late", "verify": {"scheme": "x-webhook", '
                '"secret": "second"}}\n')
    assert relay.post(body, signed, path="/v1/sources/late").status_code == 401
    rotated = {"X-Webhook-Signature": hex_hmac("second", body)}
    assert relay.post(body, rotated, path="/v1/sources/late").status_code == 202
    reload_with("sources: []\n")
    assert relay.post(body, signed, path="/v1/sources/late").status_code == 404


def test_the_admin_api_lists_sources_without_their_secrets(relay: RelayThread) -> None:
    """GET /v1/sources: paths, schemes and counts as the OpenAPI schema says; no secret."""
    answer = httpx.get(relay.url + "/v1/sources", timeout=10)
    assert answer.status_code == 200
    SourceListOut.model_validate(answer.json())
    by_name = {s["name"]: s for s in answer.json()["data"]}
    assert list(by_name) == [s["name"] for s in SOURCES]
    assert by_name["platform"]["path"] == "/hooks/license-platform"
    assert by_name["babel"]["path"] == "/v1/sources/babel"
    assert by_name["babel"]["id_from"] == "header:X-Babel-Webhook-Id"
    assert by_name["stamped"]["verify"]["tolerance"] == "1m"
    for secret in (BABEL_SECRET, PLATFORM_SECRET, CHAIN_SECRET, "t-new", "pw-1", "gh-secret"):
        assert secret not in answer.text
    body = babel_body("LIC-0300")
    before = by_name["babel"]["refused"].get("signature", 0)
    relay.post(body, babel_request("wh-count", body, "00"), path="/v1/sources/babel")
    after = httpx.get(relay.url + "/v1/sources", timeout=10).json()["data"][0]
    assert after["refused"]["signature"] == before + 1


def test_api_endpoints_take_sources_too(relay: RelayThread, receiver: Receiver) -> None:
    """POST /v1/endpoints with `sources`: checked against relay.yaml's, then routed by them."""
    spec = {"url": receiver.url + "/api-chain", "allow_http": True, "events": ["*"]}
    unknown = httpx.post(relay.url + "/v1/endpoints", json={**spec, "sources": ["nope"]},
                         timeout=10)
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "sources"
    created = httpx.post(relay.url + "/v1/endpoints",
                         json={**spec, "name": "api-chain", "sources": ["licensechain"]},
                         timeout=10)
    assert created.status_code == 201, created.text
    assert created.json()["sources"] == ["licensechain"]
    body = licensechain_body(str(uuid.uuid4()))
    answer = relay.post(body, {"X-Webhook-Signature": hex_hmac(CHAIN_SECRET, body)},
                        path="/v1/sources/licensechain")
    assert answer.json()["deliveries"] == 2  # all, api-chain
    delivered(receiver, "/api-chain", body)
    plain = relay.post(b'{"type":"license.created","for":"not api-chain"}').json()
    assert plain["deliveries"] == 2  # all, default-only
