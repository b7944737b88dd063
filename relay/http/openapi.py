"""The admin API's OpenAPI 3.1 document, built from the models the API itself validates with.

Request bodies are `relay.config.EndpointConfig` (relay.yaml's own schema) and
the models of `relay.http.schemas`; answers are `relay.http.schemas`. The
routes are listed here once, each with its parameters, body, answers and an
example; a test checks that every route the app serves is in the document,
and that every example validates against its schema.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from relay import __version__
from relay.config import EndpointConfig
from relay.config.sources import SourceConfig
from relay.http import schemas

__all__ = ["OPERATIONS", "Operation", "docs_context", "document"]

_ENDPOINT_EXAMPLE = {
    "name": "crm-sync", "url": "https://crm.example.com/hooks/license",
    "events": ["license.*", "order.created"], "signature": "standard", "tenant": "cus_8f3",
    "description": "License events for Acme's CRM",
    "filter": 'data.productId in ["prod_42", "prod_43"]',
}
_PATCH_EXAMPLE = {"enabled": False, "events": ["license.expired"]}
_SOURCE_EXAMPLE = {
    "name": "babel", "verify": {"scheme": "babel", "secret": "babel-webhook-secret"},
    "type_from": "header:X-Babel-Event", "id_from": "header:X-Babel-Webhook-Id",
    "tenant_from": "field:CustomerId",
}


@dataclass(frozen=True)
class Operation:
    """One route of the admin API, as the document describes it."""

    method: str
    path: str
    summary: str
    answers: dict[int, type[BaseModel] | None]
    body: type[BaseModel] | None = None
    query: tuple[tuple[str, str], ...] = ()  # (name, description)
    example: dict[str, Any] | None = None
    tags: tuple[str, ...] = ()
    description: str = ""
    partial_body: bool = False  # PATCH: every field optional
    public: bool = False  # not behind the admin token (ingest has its own)
    path_params: tuple[tuple[str, str], ...] = field(default=())


_NAME = (("name", "The endpoint's name."),)
_DELIVERY = (("delivery_id", "A delivery id such as dlv_42."),)
_TENANT = (("tenant", "The platform's id of its customer, as on endpoints and events."),)
_PROBLEMS = {400: schemas.ProblemOut, 401: schemas.ProblemOut, 403: schemas.ProblemOut,
             415: schemas.ProblemOut, 503: schemas.ProblemOut}

OPERATIONS: tuple[Operation, ...] = (
    Operation("post", "/v1/events", "Ingest one event, as the platform emits it",
              {202: schemas.IngestOut, 200: schemas.IngestOut, 409: schemas.ProblemOut,
               413: schemas.ProblemOut, 422: schemas.ProblemOut},
              example={"type": "license.created", "data": {"licenseKey": "ABCD-1234"}},
              tags=("ingest",), public=True,
              description="Any JSON object with a type (`X-Event-Type`, or a field among "
                          "ingest.type_fields); `Idempotency-Key` makes it the event's id. "
                          "Needs `Bearer <ingest.token>` when one is set."),
    Operation("post", "/v1/events/batch", "Ingest up to 500 events, all or nothing",
              {202: schemas.BatchOut, 200: schemas.BatchOut, 409: schemas.ProblemOut,
               413: schemas.ProblemOut, 422: schemas.ProblemOut}, tags=("ingest",),
              public=True),
    Operation("post", "/v1/sources/{name}",
              "A platform's own webhook, verified as its source says (or at its `path`)",
              {202: schemas.IngestOut, 200: schemas.IngestOut, 401: schemas.ProblemOut,
               409: schemas.ProblemOut, 413: schemas.ProblemOut, 422: schemas.ProblemOut},
              example={"EventType": "license.created", "LicenseId": "LIC-0001"},
              path_params=(("name", "The source's name in relay.yaml."),), tags=("ingest",),
              public=True,
              description="The body as the platform sends it, with its own signature "
                          "headers (X-Babel-Signature, X-Webhook-Signature, webhook-signature, "
                          "or a source's `hmac` header). A missing or wrong signature: 401 "
                          "signature-invalid, nothing stored. The platform's delivery id "
                          "(`id_from`) is the event id, so its retries are duplicates."),
    Operation("get", "/v1/sources", "Every source, relay.yaml's first, and what it took",
              {200: schemas.SourceListOut}, tags=("sources",)),
    Operation("post", "/v1/sources", "Make a source; its path takes the platform's requests now",
              {201: schemas.SourceOut, 409: schemas.ProblemOut, 422: schemas.InvalidEndpointOut},
              body=SourceConfig, example=_SOURCE_EXAMPLE, tags=("sources",),
              description="Every field relay.yaml takes for a source. Its secrets are sealed "
                          "under secrets_key and never returned."),
    Operation("get", "/v1/sources/{name}", "One source with its counts",
              {200: schemas.SourceOut, 404: schemas.ProblemOut},
              path_params=(("name", "The source's name."),), tags=("sources",)),
    Operation("put", "/v1/sources/{name}", "Replace an API source",
              {200: schemas.SourceOut, 404: schemas.ProblemOut, 409: schemas.ProblemOut,
               422: schemas.InvalidEndpointOut},
              body=SourceConfig, example=_SOURCE_EXAMPLE,
              path_params=(("name", "The source's name."),), tags=("sources",),
              description="The whole source; a `verify` without `secret`, `token` or "
                          "`password` keeps the stored ones. relay.yaml's sources answer 409 "
                          "source-provisioned."),
    Operation("delete", "/v1/sources/{name}", "Delete an API source; its events stay",
              {204: None, 404: schemas.ProblemOut, 409: schemas.ProblemOut},
              path_params=(("name", "The source's name."),), tags=("sources",)),
    Operation("get", "/healthz", "Liveness: the process answers", {200: schemas.HealthOut},
              tags=("operations",), public=True),
    Operation("get", "/readyz", "Readiness: the store takes writes, lanes run",
              {200: schemas.ReadyOut, 503: schemas.ProblemOut}, tags=("operations",),
              public=True),
    Operation("get", "/metrics", "Prometheus metrics (text)", {200: None},
              tags=("operations",)),
    Operation("get", "/openapi.json", "This document", {200: None}, tags=("operations",)),
    Operation("post", "/v1/reload", "Re-read relay.yaml now (as SIGHUP); says if it took it",
              {200: schemas.ReloadOut}, tags=("operations",)),
    Operation("get", "/v1/endpoints", "List endpoints, relay.yaml's first",
              {200: schemas.EndpointPageOut}, tags=("endpoints",),
              query=(("tenant", "Only this tenant's endpoints."),
                     ("source", "config or api."),
                     ("status", "ok, error, paused or disabled."),
                     ("limit", "Page size, 1 to 500 (default 100)."),
                     ("cursor", "next_cursor of the previous page."))),
    Operation("post", "/v1/endpoints", "Create an endpoint; its secret is in this answer only",
              {201: schemas.CreatedEndpointOut, 409: schemas.ProblemOut,
               422: schemas.InvalidEndpointOut},
              body=EndpointConfig, example=_ENDPOINT_EXAMPLE, tags=("endpoints",),
              description="Every field relay.yaml takes for an endpoint; `name` is generated "
                          "(ep_...) and `secret` too when absent."),
    Operation("get", "/v1/endpoints/{name}", "One endpoint with its status and counts",
              {200: schemas.EndpointOut, 404: schemas.ProblemOut}, path_params=_NAME,
              tags=("endpoints",)),
    Operation("patch", "/v1/endpoints/{name}", "Change an API endpoint's fields",
              {200: schemas.EndpointOut, 404: schemas.ProblemOut, 409: schemas.ProblemOut,
               422: schemas.InvalidEndpointOut},
              body=EndpointConfig, partial_body=True, example=_PATCH_EXAMPLE,
              path_params=_NAME, tags=("endpoints",),
              description="A field set to null goes back to its default. relay.yaml's "
                          "endpoints answer 409 endpoint-provisioned."),
    Operation("delete", "/v1/endpoints/{name}",
              "Delete an API endpoint; its waiting deliveries are cancelled",
              {204: None, 404: schemas.ProblemOut, 409: schemas.ProblemOut},
              path_params=_NAME, tags=("endpoints",)),
    Operation("post", "/v1/endpoints/{name}/rotate-secret",
              "A new secret; the previous one signs too until it expires",
              {200: schemas.RotatedSecretOut, 404: schemas.ProblemOut, 409: schemas.ProblemOut,
               422: schemas.InvalidEndpointOut},
              body=schemas.RotateSecretIn, example={"expire_previous_in": "24h"},
              path_params=_NAME, tags=("endpoints",)),
    Operation("post", "/v1/endpoints/{name}/test",
              "Send a webhook.test event through the delivery path; answers its outcome",
              {200: schemas.TestOut, 202: schemas.TestOut, 404: schemas.ProblemOut,
               409: schemas.ProblemOut}, path_params=_NAME, tags=("endpoints",)),
    Operation("post", "/v1/endpoints/{name}/pause", "Hold the endpoint's deliveries",
              {200: schemas.EndpointOut, 404: schemas.ProblemOut, 409: schemas.ProblemOut},
              path_params=_NAME, tags=("endpoints",)),
    Operation("post", "/v1/endpoints/{name}/resume",
              "Send again, in the old order; lifts an automatic disable",
              {200: schemas.EndpointOut, 404: schemas.ProblemOut, 409: schemas.ProblemOut},
              path_params=_NAME, tags=("endpoints",)),
    Operation("post", "/v1/endpoints/{name}/recover",
              "Requeue the deliveries that failed since a time",
              {200: schemas.RecoverOut, 404: schemas.ProblemOut, 409: schemas.ProblemOut},
              example={"since": "2h"}, path_params=_NAME, tags=("endpoints",)),
    Operation("get", "/v1/deliveries", "The delivery log, newest first",
              {200: schemas.DeliveryPageOut}, tags=("deliveries",),
              query=(("endpoint", "Only this endpoint's."), ("tenant", "Only this tenant's."),
                     ("status", "pending, delivering, scheduled, delivered, failed, held, "
                                "cancelled."),
                     ("type", "Only this event type."),
                     ("since", "ISO 8601 time or a duration ago (2h)."),
                     ("until", "ISO 8601 time or a duration ago."),
                     ("limit", "1 to 500 (default 50)."),
                     ("cursor", "next_cursor of the previous page."))),
    Operation("get", "/v1/deliveries/{delivery_id}", "One delivery with every attempt",
              {200: schemas.DeliveryDetailOut, 404: schemas.ProblemOut},
              path_params=_DELIVERY, tags=("deliveries",)),
    Operation("post", "/v1/deliveries/{delivery_id}/retry", "Make one delivery due now",
              {200: schemas.RetriedOut, 404: schemas.ProblemOut, 409: schemas.ProblemOut},
              path_params=_DELIVERY, tags=("deliveries",)),
    Operation("get", "/v1/events", "The events received, newest first",
              {200: schemas.EventPageOut}, tags=("events",),
              query=(("tenant", "Only this tenant's events."),
                     ("type", "Only this event type."),
                     ("source", "Only those of this sources: entry (default: /v1/events)."),
                     ("since", "Received since: ISO 8601 time or a duration ago (2h)."),
                     ("until", "Received until: ISO 8601 time or a duration ago."),
                     ("limit", "1 to 500 (default 50)."),
                     ("cursor", "next_cursor of the previous page.")),
              description="Without payloads: `GET /v1/events/{event_id}` has the payload "
                          "and the deliveries. A tenant's page is read from an index of "
                          "tenanted events; type and source narrow it row by row."),
    Operation("get", "/v1/events/{event_id}", "One event as received, with its deliveries",
              {200: schemas.EventOut, 404: schemas.ProblemOut},
              path_params=(("event_id", "The event's id."),), tags=("events",)),
    Operation("post", "/v1/tenants/{tenant}/portal-sessions",
              "A single-use link that signs a browser in to this tenant's portal",
              {201: schemas.PortalSessionOut, 404: schemas.ProblemOut,
               422: schemas.InvalidEndpointOut},
              body=schemas.PortalSessionIn, example={"ttl": "5m"}, path_params=_TENANT,
              tags=("portal",),
              description="Send the customer's browser to `url` (or frame it): it signs "
                          "in to /portal for this tenant only, for portal.session_ttl. A "
                          "second use of the link is refused."),
    Operation("delete", "/v1/tenants/{tenant}/portal-sessions",
              "Sign every browser of this tenant out of the portal",
              {200: schemas.PortalSessionsEndedOut, 404: schemas.ProblemOut},
              path_params=_TENANT, tags=("portal",),
              description="Links not yet opened stop working too."),
)


def _defaults_as_written(schema: dict[str, Any]) -> None:
    """Show the endpoint's defaults as relay.yaml spells them (`10s`, not 10.0)."""
    sample = EndpointConfig.model_validate({"name": "x", "url": "https://x.example",
                                            "signature": "x-webhook"})
    written = sample.model_dump(mode="json", by_alias=True)
    for name, prop in schema["properties"].items():
        if name in written and "default" in prop:
            prop["default"] = written[name]
    schema["properties"]["secret"].pop("default", None)
    schema["properties"]["secret"]["description"] = (
        "The signing secret (a list rotates: newest first). Generated when absent; "
        "never returned after creation.")
    schema["properties"]["signature"]["default"] = "standard"


def _operation_id(op: Operation) -> str:
    words = [w for w in op.path.replace("{", "").replace("}", "").split("/")[2:] if w]
    return "_".join([op.method, *[w.replace("-", "_") for w in words]])


@cache
def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (built once: it depends on nothing but the code)."""
    models: set[type[BaseModel]] = {m for op in OPERATIONS for m in op.answers.values() if m}
    models |= {op.body for op in OPERATIONS if op.body is not None}
    keyed: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (model, "validation" if model in (EndpointConfig, SourceConfig, schemas.RotateSecretIn,
                                           schemas.PortalSessionIn)
         else "serialization") for model in sorted(models, key=lambda m: m.__name__)]
    refs, defs = models_json_schema(keyed, by_alias=True,
                                    ref_template="#/components/schemas/{model}")
    components = dict(defs.get("$defs", {}))
    _defaults_as_written(components["EndpointConfig"])
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        entry: dict[str, Any] = {
            "operationId": _operation_id(op), "summary": op.summary, "tags": list(op.tags),
            "parameters": [
                *({"name": n, "in": "path", "required": True, "description": d,
                   "schema": {"type": "string"}} for n, d in op.path_params),
                *({"name": n, "in": "query", "required": False, "description": d,
                   "schema": {"type": "string"}} for n, d in op.query),
            ],
            "responses": {},
        }
        if op.description:
            entry["description"] = op.description
        if op.public:
            entry["security"] = []
        if op.body is not None:
            schema = refs[(op.body, "validation")]
            if op.partial_body:
                schema = {"allOf": [schema],
                          "description": "Any subset of the fields; null resets one."}
            content: dict[str, Any] = {"schema": schema}
            if op.example is not None:
                content["example"] = op.example
            entry["requestBody"] = {"required": op.method != "post" or op.body is EndpointConfig,
                                    "content": {"application/json": content}}
        elif op.example is not None:
            entry["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": {"type": "object"}, "example": op.example}}}
        for status, model in {**op.answers, **_PROBLEMS}.items():
            if model is None:
                entry["responses"][str(status)] = {
                    "description": "No content" if status == 204 else "See the summary"}
                continue
            media = ("application/problem+json" if issubclass(model, schemas.ProblemOut)
                     else "application/json")
            entry["responses"][str(status)] = {
                "description": (model.__doc__ or model.__name__).strip().split("\n")[0],
                "content": {media: {"schema": refs[(model, "serialization")]}},
            }
        paths.setdefault(op.path, {})[op.method] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": "relay admin API", "version": __version__,
                 "description": "Endpoints, deliveries and events of a relay. Every route "
                                "needs `Authorization: Bearer <admin.token>` when a token "
                                "is set; errors are RFC 9457 problem documents."},
        "servers": [{"url": "/"}],
        "components": {"schemas": components, "securitySchemes": {
            "adminToken": {"type": "http", "scheme": "bearer"}}},
        "security": [{"adminToken": []}],
        "paths": paths,
    }


def _type_of(schema: Any) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " or ".join(_type_of(s) for s in schema["anyOf"])
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {_type_of(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"map to {_type_of(schema['additionalProperties'])}"
    return str(kind)


def docs_context() -> dict[str, Any]:
    """The reference page's content, from the document (so the two cannot disagree)."""
    doc = document()
    groups: dict[str, list[dict[str, Any]]] = {}
    public = {(op.method, op.path) for op in OPERATIONS if op.public}
    for path, methods in doc["paths"].items():
        for method, entry in methods.items():
            body = entry.get("requestBody", {}).get("content", {}).get("application/json", {})
            schema = body.get("schema", {})
            ref = schema.get("$ref") or (schema.get("allOf") or [{}])[0].get("$ref")
            responses = []
            for status, answer in entry["responses"].items():
                content: dict[str, Any] = next(iter(answer.get("content", {}).values()), {})
                ref_to = content.get("schema", {}).get("$ref")
                responses.append((status, ref_to.rsplit("/", 1)[-1] if ref_to else None))
            groups.setdefault(entry["tags"][0] if entry["tags"] else "other", []).append({
                "method": method, "path": path, "operationId": entry["operationId"],
                "summary": entry["summary"], "description": entry.get("description"),
                "parameters": entry["parameters"],
                "body": ref.rsplit("/", 1)[-1] if ref else None,
                "partial": "allOf" in schema,
                "example": json.dumps(body["example"], indent=2) if "example" in body else None,
                "responses": responses, "public": (method, path) in public,
            })
    schemas = []
    for name, schema in sorted(doc["components"]["schemas"].items()):
        required = set(schema.get("required", ()))
        fields = [{"name": field, "type": _type_of(prop), "required": field in required,
                   "has_default": "default" in prop,
                   "default": json.dumps(prop.get("default")),
                   "description": prop.get("description", "")}
                  for field, prop in schema.get("properties", {}).items()]
        schemas.append((name, {"description": schema.get("description", ""), "fields": fields}))
    return {"doc": doc, "groups": list(groups.items()), "schemas": schemas}
