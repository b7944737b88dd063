"""The admin API's OpenAPI 3.1 document, built from the models the API itself validates with.

Request bodies are `relay.config.EndpointConfig` (relay.yaml's own schema) and
the models of `relay.http.schemas`; answers are `relay.http.schemas`. The
routes are listed here once, each with its parameters, body, answers and an
example; a test checks that every route the app serves is in the document,
and that every example validates against its schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from relay import __version__
from relay.config import EndpointConfig
from relay.http import schemas

__all__ = ["OPERATIONS", "Operation", "document"]

_ENDPOINT_EXAMPLE = {
    "name": "crm-sync", "url": "https://crm.example.com/hooks/license",
    "events": ["license.*", "order.created"], "signature": "standard", "tenant": "cus_8f3",
    "description": "License events for Acme's CRM",
}
_PATCH_EXAMPLE = {"enabled": False, "events": ["license.expired"]}


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
    path_params: tuple[tuple[str, str], ...] = field(default=())


_NAME = (("name", "The endpoint's name."),)
_DELIVERY = (("delivery_id", "A delivery id such as dlv_42."),)
_PROBLEMS = {400: schemas.ProblemOut, 401: schemas.ProblemOut, 403: schemas.ProblemOut,
             415: schemas.ProblemOut, 503: schemas.ProblemOut}

OPERATIONS: tuple[Operation, ...] = (
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
    Operation("get", "/v1/events/{event_id}", "One event as received, with its deliveries",
              {200: schemas.EventOut, 404: schemas.ProblemOut},
              path_params=(("event_id", "The event's id."),), tags=("events",)),
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
        (model, "validation" if model in (EndpointConfig, schemas.RotateSecretIn)
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
                entry["responses"][str(status)] = {"description": "No content"}
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
