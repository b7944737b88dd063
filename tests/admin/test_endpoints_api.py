"""Endpoints managed at run time: create, read, change, rotate, delete, tenants, limits."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from receiver_kit import Verifier
from tests.admin.harness import ADMIN_YAML, Ops, Switch, always, receiver
from tests.conftest import endpoint_yaml
from tests.support import ON_POSTGRES, wait_until

pytestmark = pytest.mark.both_backends


def create(ops: Ops, body: dict[str, Any]) -> httpx.Response:
    return ops.http.post("/v1/endpoints", json=body)


def created(ops: Ops, **body: Any) -> dict[str, Any]:
    response = create(ops, body)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def api_rows(ops: Ops) -> int:
    count: int = ops.relay.rows("SELECT count(*) FROM api_endpoints")[0][0]
    return count


@pytest.fixture
def ops(make_ops: Callable[..., Ops]) -> Ops:
    """A relay with one relay.yaml endpoint (`declared`) and tenant limits of 2."""
    declared = receiver()
    return make_ops(endpoint_yaml("declared", declared.url + "/hooks"),
                    {"declared": declared}, ADMIN_YAML + "limits: {endpoints_per_tenant: 2}\n"
                    "ingest: {tenant_field: data.customer}\n")


def test_create_generates_name_and_secret_shown_once(ops: Ops) -> None:
    """No name, no secret: both are generated; the secret is in the 201 only."""
    target = receiver()
    ops.receivers["t"] = target
    answer = created(ops, url=target.url + "/hooks", allow_http=True, events=["license.*"],
                     description="Acme's CRM")
    name, secret = answer["name"], answer["secret"]
    assert name.startswith("ep_") and secret.startswith("whsec_")
    assert answer["source"] == "api" and answer["events"] == ["license.*"]
    assert answer["timeout"] == "5s"  # inherited from relay.yaml's delivery section
    shown = ops.get(f"/v1/endpoints/{name}")
    assert shown.status_code == 200 and "secret" not in shown.json()
    listed = ops.get("/v1/endpoints").json()
    assert [e["name"] for e in listed["data"]] == ["declared", name]
    assert [e["source"] for e in listed["data"]] == ["config", "api"]
    for text in (shown.text, json.dumps(listed)):
        assert secret not in text
    # The secret signs what is delivered to it.
    ops.send("license.created", licenseKey="K-1")
    [request] = target.wait_for(1)
    event = Verifier(secret=secret).verify(request.body, request.headers)
    assert event.type == "license.created"


def test_bad_bodies_name_each_field_and_store_nothing(ops: Ops) -> None:
    """One schema for relay.yaml and the API: the same messages, every problem at once."""
    response = create(ops, {"url": "ftp://x", "max_in_flight": 0, "retry_shedule": ["1s"],
                            "signature": "md5"})
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == "urn:relay:problem:invalid-endpoint"
    fields = {e["field"]: e["message"] for e in problem["errors"]}
    assert fields["url"].startswith("expected an http:// or https:// URL")
    assert fields["max_in_flight"].startswith("expected a whole number from 1 to 1000")
    assert fields["retry_shedule"] == "unknown key (did you mean 'retry_schedule'?)"
    assert fields["signature"].startswith("expected one of standard, x-webhook, babel")
    for body in (b"[1, 2]", b"not json", b'{"url": "https://a.example", "secret": 5}'):
        answer = ops.http.post("/v1/endpoints", content=body,
                               headers={"Content-Type": "application/json"})
        assert answer.status_code in (400, 422), answer.text
        assert answer.headers["content-type"] == "application/problem+json"
    answer = create(ops, {"url": "http://plain.example/hooks"})
    assert answer.json()["errors"][0]["field"] == "url"
    assert api_rows(ops) == 0


def test_relay_yaml_endpoints_are_read_only(ops: Ops) -> None:
    for response in (ops.http.patch("/v1/endpoints/declared", json={"enabled": False}),
                     ops.http.delete("/v1/endpoints/declared"),
                     ops.post("/v1/endpoints/declared/rotate-secret", {})):
        assert response.status_code == 409, response.text
        assert response.json()["type"] == "urn:relay:problem:endpoint-provisioned"
    taken = create(ops, {"name": "declared", "url": "https://a.example"})
    assert taken.status_code == 409
    assert taken.json()["type"] == "urn:relay:problem:endpoint-exists"


def test_concurrent_creates_of_one_name_one_wins(ops: Ops) -> None:
    statuses: list[int] = []
    barrier = threading.Barrier(4)

    def attempt() -> None:
        with httpx.Client(base_url=ops.relay.url, headers=dict(ops.http.headers),
                          timeout=30) as client:
            barrier.wait()
            statuses.append(client.post("/v1/endpoints", json={
                "name": "same", "url": "https://same.example/hooks"}).status_code)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201, 409, 409, 409]
    assert api_rows(ops) == 1


def test_tenant_routing_and_the_per_tenant_limit(ops: Ops) -> None:
    """Untenanted endpoints get every event; tenant T's only T's; the plan's limit holds."""
    acme, globex = receiver(), receiver()
    ops.receivers.update(acme=acme, globex=globex)
    created(ops, name="acme-crm", url=acme.url, allow_http=True, tenant="acme")
    created(ops, name="globex-crm", url=globex.url, allow_http=True, tenant="globex",
            signature="x-webhook")
    created(ops, name="acme-two", url=acme.url + "/two", allow_http=True, tenant="acme")
    over = create(ops, {"url": acme.url, "allow_http": True, "tenant": "acme"})
    assert over.status_code == 409 and over.json()["type"] == "urn:relay:problem:endpoint-limit"
    response = ops.relay.post(json.dumps({"type": "license.created",
                                          "data": {"customer": "acme"}}))
    assert response.json()["deliveries"] == 3  # declared, acme-crm, acme-two
    response = ops.relay.post('{"type": "license.created"}', {"X-Tenant": "globex"})
    assert response.json()["deliveries"] == 2  # declared, globex-crm
    response = ops.relay.post('{"type": "license.created"}')
    assert response.json()["deliveries"] == 1  # declared only
    acme.wait_for(2)
    globex.wait_for(1)
    page = ops.get("/v1/deliveries", tenant="acme").json()["data"]
    assert {d["endpoint"] for d in page} == {"declared", "acme-crm", "acme-two"}
    assert all(d["tenant"] == "acme" for d in page)
    assert [e["name"] for e in ops.get("/v1/endpoints", tenant="acme").json()["data"]] == [
        "acme-crm", "acme-two"]
    assert [e["name"] for e in ops.get("/v1/endpoints", source="config").json()["data"]] == [
        "declared"]
    bad = ops.relay.post('{"type": "a.b"}', {"X-Tenant": "has space"})
    assert bad.status_code == 400 and bad.json()["type"] == "urn:relay:problem:invalid-tenant"


def test_patch_changes_fields_and_null_resets(ops: Ops) -> None:
    switch = Switch()
    target = receiver(switch)
    ops.receivers["t"] = target
    created(ops, name="crm", url=target.url, allow_http=True, events=["order.*"],
            retry_schedule=["300ms", "1h"],
            headers={"Authorization": "Bearer downstream-token", "X-Team": "billing"},
            max_in_flight=3)
    response = ops.http.patch("/v1/endpoints/crm", json={"events": ["license.*"],
                                                         "max_in_flight": None})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["events"] == ["license.*"] and answer["max_in_flight"] == 10
    assert answer["headers"] == {"Authorization": "…", "X-Team": "billing"}
    # Sending the masked answer back keeps the stored credential.
    response = ops.http.patch("/v1/endpoints/crm", json={"headers": answer["headers"]})
    assert response.status_code == 200
    ops.send("license.created")
    [request] = target.wait_for(1)
    assert request.header("Authorization") == "Bearer downstream-token"
    for body, field in (({"secret": "whsec_x"}, "secret"), ({"name": "other"}, "name"),
                        ({"url": "nope"}, "url")):
        response = ops.http.patch("/v1/endpoints/crm", json=body)
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == field
    assert ops.http.patch("/v1/endpoints/missing", json={}).status_code == 404
    # Disabled through the API: it receives nothing new, and what waits for it is held.
    switch.status = 503
    ops.send("license.created")
    wait_until(lambda: ops.counts("crm")["scheduled"] == 1, message="a scheduled retry")
    assert ops.http.patch("/v1/endpoints/crm", json={"enabled": False}).status_code == 200
    assert ops.counts("crm")["held"] == 1
    assert ops.relay.post('{"type": "license.created"}').json()["deliveries"] == 1  # declared
    assert ops.get("/v1/endpoints/crm").json()["status"] == "disabled"
    switch.status = 200
    assert ops.http.patch("/v1/endpoints/crm", json={"enabled": True}).status_code == 200
    wait_until(lambda: ops.counts("crm")["delivered"] == 2, message="the held one delivered")


def test_delete_cancels_waiting_deliveries_and_keeps_their_log(ops: Ops) -> None:
    down = receiver(always(503))
    ops.receivers["down"] = down
    created(ops, name="gone", url=down.url, allow_http=True, retry_schedule=["1h"])
    ops.send("license.created")
    ops.send("license.created")
    wait_until(lambda: ops.counts("gone")["scheduled"] == 2, message="two scheduled")
    response = ops.http.delete("/v1/endpoints/gone")
    assert response.status_code == 204
    assert ops.get("/v1/endpoints/gone").status_code == 404
    log = ops.get("/v1/deliveries", endpoint="gone").json()["data"]
    assert [d["status"] for d in log] == ["cancelled", "cancelled"]
    assert ops.http.delete("/v1/endpoints/gone").status_code == 404
    # The name can be used again, afresh.
    again = created(ops, name="gone", url=down.url, allow_http=True)
    assert again["counts"]["cancelled"] == 2 and again["status"] == "ok"


def test_rotation_signs_with_both_until_the_previous_expires(ops: Ops) -> None:
    target = receiver()
    ops.receivers["t"] = target
    first = created(ops, name="crm", url=target.url, allow_http=True)["secret"]
    response = ops.post("/v1/endpoints/crm/rotate-secret", {"expire_previous_in": "2s"})
    assert response.status_code == 200, response.text
    second = response.json()["secret"]
    assert second != first and response.json()["previous_expires_at"] is not None
    assert "secret" not in ops.get("/v1/endpoints/crm").json()
    ops.send("license.created")
    [request] = target.wait_for(1)
    for secret in (first, second):  # a receiver on either secret verifies the overlap
        Webhook(secret).verify(request.body, request.headers)
        Verifier(secret=secret).verify(request.body, request.headers)
    time.sleep(2.2)
    ops.send("license.created")
    requests = target.wait_for(2)
    assert len(requests[1].header("webhook-signature").split()) == 1
    Verifier(secret=second).verify(requests[1].body, requests[1].headers)
    too_long = ops.post("/v1/endpoints/crm/rotate-secret", {"expire_previous_in": "8d"})
    assert too_long.status_code == 422
    assert too_long.json()["errors"][0]["field"] == "expire_previous_in"


def test_endpoints_survive_a_restart(make_ops: Callable[..., Ops], tmp_path: Any) -> None:
    target = receiver()
    db = tmp_path / "kept.db"
    ops = make_ops("  []\n", {"t": target}, db=db)
    secret = created(ops, name="kept", url=target.url, allow_http=True, tenant="acme")["secret"]
    ops.relay.stop()
    if not ON_POSTGRES:
        key = db.with_name(db.name + ".key")
        assert key.stat().st_mode & 0o777 == 0o600
        assert secret not in db.read_bytes().decode("latin-1")
    again = make_ops("  []\n", {}, db=db)
    shown = again.get("/v1/endpoints/kept").json()
    assert shown["source"] == "api" and shown["tenant"] == "acme"
    again.relay.post('{"type": "a.b"}', {"X-Tenant": "acme"})
    [request] = target.wait_for(1)
    Verifier(secret=secret).verify(request.body, request.headers)


def test_openapi_lists_the_endpoint_routes(ops: Ops) -> None:
    document = ops.get("/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    assert {"get", "post"} <= set(document["paths"]["/v1/endpoints"])
    assert {"get", "patch", "delete"} <= set(document["paths"]["/v1/endpoints/{name}"])
    assert httpx.get(ops.relay.url + "/openapi.json", timeout=10).status_code == 401


def test_secrets_appear_only_in_the_create_and_rotate_answers(
        ops: Ops, capfd: pytest.CaptureFixture[str]) -> None:
    """Every answer and every log line of a full life cycle, searched for the secrets."""
    target = receiver(always(500, b"nope"))
    ops.receivers["t"] = target
    given = "whsec_" + "c2VjcmV0LWdpdmVuLWJ5LXRoZS1jYWxsZXItMTIzNA=="
    first = create(ops, {"name": "crm", "url": target.url, "allow_http": True,
                         "secret": given, "retry_schedule": []})
    rotated = ops.post("/v1/endpoints/crm/rotate-secret", {})
    secrets = [given, rotated.json()["secret"]]
    assert first.json()["secret"] == given
    answers = [
        ops.post("/v1/endpoints/crm/test"), ops.get("/v1/endpoints"),
        ops.get("/v1/endpoints/crm"), ops.get("/v1/deliveries"), ops.get("/metrics"),
        ops.http.patch("/v1/endpoints/crm", json={"description": "x"}),
        ops.http.patch("/v1/endpoints/crm", json={"signature": "bogus"}),
        ops.get("/openapi.json"), ops.http.get("/ui/endpoints/crm"),
    ]
    deliveries = ops.get("/v1/deliveries").json()["data"]
    answers += [ops.get(f"/v1/deliveries/{d['id']}") for d in deliveries]
    answers.append(ops.http.delete("/v1/endpoints/crm"))
    logged = capfd.readouterr()
    assert "delivery_failed" in logged.out  # the relay's log is what was searched
    for secret in secrets:
        key = secret.removeprefix("whsec_")
        for answer in answers:
            assert key not in answer.text, answer.request.url
        assert key not in logged.out + logged.err


def test_the_cli_manages_endpoints_and_shows_a_secret_once(ops: Ops) -> None:
    target = receiver()
    ops.receivers["t"] = target
    made = ops.cli("endpoints", "create", "--url", target.url + "/hooks", "--allow-http",
                   "--events", "license.*,order.created", "--tenant", "acme", "--name", "crm")
    assert made.code == 0, made.err
    assert made.out.startswith("crm: created -> ")
    secret = made.out.split("secret: ", 1)[1].strip()
    assert secret.startswith("whsec_") and "will not show it again" in made.err
    listed = ops.cli("endpoints", "--tenant", "acme")
    assert listed.code == 0 and "crm" in listed.out and "TENANT" in listed.out
    assert secret not in listed.out
    bad = ops.cli("endpoints", "update", "crm", "--max-in-flight", "0", "--url", "ftp://x")
    assert bad.code == 2
    assert "max_in_flight: expected a whole number" in bad.err and "url:" in bad.err
    assert ops.cli("endpoints", "update", "crm", "--events", "order.*").code == 0
    assert ops.get("/v1/endpoints/crm").json()["events"] == ["order.*"]
    assert ops.get("/v1/endpoints/crm").json()["body"] == "exact"
    assert ops.cli("endpoints", "update", "crm", "--body", "compact").code == 0
    assert ops.get("/v1/endpoints/crm").json()["body"] == "compact"
    refused = ops.cli("endpoints", "update", "crm", "--body", "pretty")
    assert refused.code == 2 and "body: expected one of exact, compact" in refused.err
    both = ops.cli("endpoints", "update", "crm", "--format", "slack")  # body is compact
    assert both.code == 2 and "body: compact re-serialises the event" in both.err
    assert ops.cli("endpoints", "update", "crm", "--body", "exact", "--format", "slack",
                   "--filter", "data.seats >= 10").code == 0
    answer = ops.get("/v1/endpoints/crm").json()
    assert (answer["format"], answer["filter"]) == ("slack", "data.seats >= 10")
    rotated = ops.cli("endpoints", "rotate-secret", "crm", "--expire-previous-in", "1h")
    assert rotated.code == 0 and "signs too until" in rotated.out
    assert rotated.out.split("secret: ", 1)[1].strip() != secret
    assert ops.cli("endpoints", "delete", "crm").code == 0
    assert ops.cli("endpoints", "delete", "crm").code == 1
    provisioned = ops.cli("endpoints", "delete", "declared")
    assert provisioned.code == 1 and "declared in relay.yaml" in provisioned.err


def test_cli_commands_work_with_unset_secrets_in_relay_yaml(ops: Ops) -> None:
    """A `${VAR}` secret unset in this shell does not stop the commands that do not need it."""
    text = ops.config_path.read_text().replace(
        "endpoints:\n", "endpoints:\n  - {name: crm-sync, url: 'https://crm.example/h', "
                        "secret: '${CRM_WEBHOOK_SECRET}'}\n", 1)
    broken = ops.config_path.with_name("unset.yaml")
    broken.write_text(text)
    listed = ops.cli("endpoints", config=broken)
    assert listed.code == 0, listed.err
    assert "declared" in listed.out
    checked = ops.cli("check", config=broken)
    assert checked.code == 2
    assert "endpoints[0].secret: environment variable CRM_WEBHOOK_SECRET is not set" in (
        checked.err)
    missing_token = ops.config_path.with_name("token.yaml")
    missing_token.write_text(ops.config_path.read_text().replace(
        "token: t0p-admin-token", "token: ${ADMIN_TOKEN_UNSET}"))
    refused = ops.cli("endpoints", config=missing_token)
    assert refused.code == 2
    assert "admin.token: environment variable ADMIN_TOKEN_UNSET is not set" in refused.err


def test_relay_reload_reports_a_rejected_file(ops: Ops) -> None:
    good = ops.config_path.read_text()
    ops.config_path.write_text(good.replace("delivery:\n", "delivery:\n  concurrency: zero\n"))
    rejected = ops.cli("reload")
    assert rejected.code == 2
    assert "delivery.concurrency: expected a whole number" in rejected.err
    ready = httpx.get(ops.relay.url + "/readyz", timeout=10).json()
    assert ready["config"]["rejected"] is True and ready["config"]["errors"] == 1
    assert "relay_config_rejected 1.0" in ops.get("/metrics").text
    ops.config_path.write_text(good)
    applied = ops.cli("reload")
    assert applied.code == 0 and applied.out.startswith("relay.yaml reloaded")
    assert httpx.get(ops.relay.url + "/readyz", timeout=10).json()["config"]["rejected"] is False
