"""The OpenAPI document: every route in it, every example valid, every answer its schema."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from starlette.routing import Route

from relay.config import DeliveryConfig, validate_endpoint
from relay.http import schemas
from relay.http.admin import admin_routes
from relay.http.openapi import OPERATIONS, document
from tests.admin.harness import Ops


def test_every_route_is_in_the_document_and_nothing_else() -> None:
    served = {(method.lower(), route.path.replace(":path", ""))
              for route in admin_routes() if isinstance(route, Route) and route.path != "/docs"
              for method in (route.methods or ()) if method != "HEAD"}
    served |= {("post", "/v1/events"), ("post", "/v1/events/batch"), ("get", "/healthz"),
               ("get", "/readyz"), ("post", "/v1/sources/{name}")}
    described = {(method, path) for path, methods in document()["paths"].items()
                 for method in methods}
    assert served == described


def test_every_example_validates() -> None:
    for op in OPERATIONS:
        if op.example is None:
            continue
        if op.body is not None and op.body.__name__ == "EndpointConfig" and not op.partial_body:
            endpoint, problems = validate_endpoint({**op.example, "secret": "whsec_" + "a" * 32},
                                                   DeliveryConfig())
            assert endpoint is not None, problems
        elif op.body is not None and not op.partial_body:
            op.body.model_validate(op.example)
    document_text = json.dumps(document())
    assert "whsec_" not in document_text


def test_the_document_is_valid_openapi_3_1_json_schema() -> None:
    doc = document()
    assert doc["openapi"] == "3.1.0"
    refs = {ref.rsplit("/", 1)[-1] for ref in _refs(doc)}
    assert refs <= set(doc["components"]["schemas"]), refs - set(doc["components"]["schemas"])


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["$ref"]] if "$ref" in value else []
        return found + [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


def check(model: type[BaseModel], answer: httpx.Response) -> None:
    assert answer.status_code < 300, answer.text
    model.model_validate(answer.json())


def test_answers_match_their_schemas(states_relay: Ops) -> None:
    """Real answers of a relay with work in every state, validated (extra fields refused)."""
    check(schemas.EndpointPageOut, states_relay.get("/v1/endpoints"))
    check(schemas.EndpointOut, states_relay.get("/v1/endpoints/good"))
    page = states_relay.get("/v1/deliveries")
    check(schemas.DeliveryPageOut, page)
    delivery = page.json()["data"][0]
    check(schemas.DeliveryDetailOut, states_relay.get(f"/v1/deliveries/{delivery['id']}"))
    check(schemas.EventOut, states_relay.get(f"/v1/events/{delivery['event_id']}"))
    check(schemas.EventPageOut, states_relay.get("/v1/events", limit=1))
    missing = states_relay.get("/v1/endpoints/missing")
    assert missing.status_code == 404
    schemas.ProblemOut.model_validate(missing.json())
    check(schemas.HealthOut, httpx.get(states_relay.relay.url + "/healthz", timeout=10))
    check(schemas.ReadyOut, httpx.get(states_relay.relay.url + "/readyz", timeout=10))


@pytest.mark.parametrize("path", ["/docs"])
def test_the_reference_page_renders_offline(states_relay: Ops, path: str) -> None:
    page = httpx.get(states_relay.relay.url + path, timeout=10)
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "/v1/endpoints/{name}/rotate-secret" in page.text
    assert "EndpointConfig" in page.text and "retry_schedule" in page.text
    assert "http://" not in page.text.replace("http://127.0.0.1", "").lower().replace(
        "http:// or https://", "")
