"""Sources through the admin API: relay.yaml's model, stored with sealed secrets, live at once."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable

import httpx
import pytest

from relay.http.schemas import SourceListOut, SourceOut
from tests.conftest import endpoint_yaml
from tests.support import Receiver, RelayThread

pytestmark = pytest.mark.both_backends

YAML_SOURCE = ('sources:\n  - {"name": "babel", "verify": {"scheme": "babel", '
               '"secret": "yaml-secret"}}\n')
CHAIN = {"name": "licensechain", "path": "/hooks/licensechain",
         "verify": {"scheme": "x-webhook", "secret": "chain-secret-1"},
         "id_from": "field:id", "tenant_from": "field:data.userId"}
BODY = b'{"id":"lc-1","type":"license.created","data":{"userId":"user-9"}}'


def signed(secret: str, body: bytes = BODY) -> dict[str, str]:
    return {"X-Webhook-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


@pytest.fixture
def relay(make_relay: Callable[..., RelayThread], receiver: Receiver) -> RelayThread:
    return make_relay(endpoint_yaml("all", receiver.url + "/all"), extra=YAML_SOURCE)


def api(relay: RelayThread, method: str, path: str, body: object = None) -> httpx.Response:
    return httpx.request(method, relay.url + path, timeout=10,
                         content=None if body is None else json.dumps(body),
                         headers={"Content-Type": "application/json"})


def test_a_source_made_through_the_api_takes_requests_at_once(
    relay: RelayThread, receiver: Receiver
) -> None:
    """201 with the source as relay.yaml spells it, no secret; its path verifies and stores."""
    created = api(relay, "POST", "/v1/sources", CHAIN)
    assert created.status_code == 201, created.text
    SourceOut.model_validate(created.json())
    assert created.json()["origin"] == "api" and created.json()["path"] == "/hooks/licensechain"
    assert created.headers["location"] == "/v1/sources/licensechain"
    assert "chain-secret-1" not in created.text
    answer = relay.post(BODY, signed("chain-secret-1"), path="/hooks/licensechain")
    assert answer.status_code == 202, answer.text
    assert answer.json()["id"] == "lc-1"
    assert relay.rows("SELECT source, tenant FROM events WHERE id = ?", ("lc-1",)) == [
        ("licensechain", "user-9")]
    refused = relay.post(BODY, signed("chain-secret-2"), path="/hooks/licensechain")
    assert refused.status_code == 401
    assert "(verify)" in refused.json()["detail"]
    listing = api(relay, "GET", "/v1/sources")
    SourceListOut.model_validate(listing.json())
    assert [(s["name"], s["origin"]) for s in listing.json()["data"]] == [
        ("babel", "config"), ("licensechain", "api")]
    one = api(relay, "GET", "/v1/sources/licensechain").json()
    assert one["accepted"] == 1 and one["refused"] == {"signature": 1}
    assert "secret" not in json.dumps(one["verify"])


def test_mistakes_and_conflicts(relay: RelayThread) -> None:
    """422 naming the field; 409 for relay.yaml's names and taken ones; 404 for unknown."""
    bad = api(relay, "POST", "/v1/sources", {"name": "x", "verify": {"scheme": "hmac",
                                                                       "secret": "s"}})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "verify"
    assert "header" in bad.json()["errors"][0]["message"]
    unknown_key = api(relay, "POST", "/v1/sources", {**CHAIN, "type_form": "field:type"})
    assert unknown_key.status_code == 422
    assert "did you mean 'type_from'" in unknown_key.json()["errors"][0]["message"]
    same_path = api(relay, "POST", "/v1/sources", {**CHAIN, "path": "/v1/sources/babel"})
    assert same_path.status_code == 422 and same_path.json()["errors"][0]["field"] == "path"
    taken = api(relay, "POST", "/v1/sources", {**CHAIN, "name": "babel", "path": None})
    assert taken.status_code == 409
    assert taken.json()["type"] == "urn:relay:problem:source-provisioned"
    assert api(relay, "DELETE", "/v1/sources/babel").status_code == 409
    assert api(relay, "PUT", "/v1/sources/babel", CHAIN).status_code == 409
    assert api(relay, "POST", "/v1/sources", CHAIN).status_code == 201
    again = api(relay, "POST", "/v1/sources", CHAIN)
    assert again.status_code == 409 and again.json()["type"] == "urn:relay:problem:source-exists"
    assert api(relay, "GET", "/v1/sources/nope").status_code == 404
    assert api(relay, "DELETE", "/v1/sources/nope").status_code == 404
    renamed = api(relay, "PUT", "/v1/sources/licensechain", {**CHAIN, "name": "other"})
    assert renamed.status_code == 422 and renamed.json()["errors"][0]["field"] == "name"


def test_replace_rotates_or_keeps_secrets_and_delete_closes_the_path(relay: RelayThread) -> None:
    """PUT with `secrets` rotates; PUT without keeps them; DELETE: the path answers 404."""
    assert api(relay, "POST", "/v1/sources", CHAIN).status_code == 201
    rotated = {**CHAIN, "verify": {"scheme": "x-webhook",
                                   "secrets": ["chain-secret-2", "chain-secret-1"]}}
    assert api(relay, "PUT", "/v1/sources/licensechain", rotated).status_code == 200
    for secret in ("chain-secret-1", "chain-secret-2"):
        body = BODY.replace(b"lc-1", secret.encode())
        assert relay.post(body, signed(secret, body),
                          path="/hooks/licensechain").status_code == 202
    kept = {**CHAIN, "verify": {"scheme": "x-webhook"}, "id_from": "field:data.userId"}
    answer = api(relay, "PUT", "/v1/sources/licensechain", kept)
    assert answer.status_code == 200 and answer.json()["id_from"] == "field:data.userId"
    body = BODY.replace(b"lc-1", b"lc-kept")
    stored = relay.post(body, signed("chain-secret-2", body), path="/hooks/licensechain")
    assert stored.status_code == 202 and stored.json()["id"] == "user-9"
    assert api(relay, "DELETE", "/v1/sources/licensechain").status_code == 204
    gone = relay.post(BODY, signed("chain-secret-2"), path="/hooks/licensechain")
    assert gone.status_code == 404
    # Its events stay: the two of the rotation and the one read with the kept secret.
    assert relay.rows("SELECT count(*) FROM events WHERE source = ?", ("licensechain",)) == [
        (3,)]


def test_api_sources_survive_a_restart_and_route_api_endpoints(
    relay: RelayThread, receiver: Receiver
) -> None:
    """The row outlives the process; an endpoint may name an API source in `sources`."""
    assert api(relay, "POST", "/v1/sources", CHAIN).status_code == 201
    endpoint = api(relay, "POST", "/v1/endpoints", {
        "name": "chain-only", "url": receiver.url + "/chain-only", "allow_http": True,
        "sources": ["licensechain"]})
    assert endpoint.status_code == 201, endpoint.text
    relay.stop()
    again = RelayThread(relay.config_path, relay.port, relay.db).start()
    try:
        answer = again.post(BODY, signed("chain-secret-1"), path="/hooks/licensechain")
        assert answer.status_code == 202, answer.text
        assert answer.json()["deliveries"] == 2  # all, chain-only
        assert again.post(b'{"type":"license.created"}').json()["deliveries"] == 1
    finally:
        again.stop()
