"""`POST /v1/sources/{name}` (or a source's own `path`): a platform's webhook, as it sends it.

The request is verified before its body is parsed, so an unsigned flood
costs a hash, not a JSON parse; a refusal stores nothing and is counted by
source and reason. What passes becomes an event exactly as `/v1/events`
makes one (`make_event`, `store_events`), with the type, id and tenant read
where the source says, and the source's name kept on the event.

None of this runs for `/v1/events`: the app looks source paths up only for
requests that are not ingest's (`RelayApp`), and the table is rebuilt only
when the config object changes (a reload).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog
from starlette.types import Receive, Scope, Send

from relay.config import Config
from relay.config.sources import SourceConfig
from relay.http.ingest import (
    ClientGone,
    IngestHeaders,
    answer_crash,
    answer_problem,
    check_json_request,
    check_local_caller,
    make_event,
    outcome_json,
    read_body,
    refuse_other_sites,
    store_events,
)
from relay.http.json_body import field_at, json_kind, loads
from relay.http.problems import Problem
from relay.http.state import RelayState
from relay.models import NewEvent
from relay.verification import Check, Refused, build_check

if TYPE_CHECKING:  # only imported when tracing is on (relay.http.app.load_telemetry)
    from relay.telemetry import IngestSpan

__all__ = ["SourceEndpoint", "SourceRoutes"]

log = structlog.get_logger("relay.http")

# Where each relay scheme's sender puts the event type and its delivery id.
_SCHEME_HEADERS: dict[str, tuple[str | None, str | None]] = {
    "babel": ("x-babel-event", "x-babel-webhook-id"),
    "x-webhook": ("x-webhook-event", "x-webhook-id"),
    "standard": (None, "webhook-id"),
}
_JSON_HEADER = (b"content-type", b"application/json")
_CHALLENGES = {"bearer": "Bearer", "basic": 'Basic realm="relay"'}


class SourceEndpoint:
    """The ASGI callable of one source: verify, read type/id/tenant, store, answer."""

    def __init__(self, state: RelayState, source: SourceConfig, key: str) -> None:
        self.state = state
        self.source = source
        self.key = key  # `sources[i]` in relay.yaml, "" through the API: names keys in messages
        self.check: Check = build_check(source.verify)
        type_header, id_header = _SCHEME_HEADERS.get(source.verify.scheme, (None, None))
        self.type_headers = tuple(h for h in (type_header, "x-event-type") if h)
        self.id_headers = tuple(h for h in (id_header, "idempotency-key") if h)

    async def __call__(self, scope: Scope, receive: Receive, send: Send,
                       span: IngestSpan | None = None) -> int | None:
        """Answer the request; its status (None: the client went away); `span` as ingest's."""
        state = self.state
        try:
            if scope["method"] != "POST":
                raise Problem(405, "method-not-allowed",
                              f"{scope['method']} is not allowed on {scope['path']}; use POST",
                              headers={"Allow": "POST"})
            raw = scope["headers"]
            headers = IngestHeaders(raw)
            if self.source.verify.scheme == "none":
                check_local_caller(headers, state)
            else:  # the signature proves the sender, whatever name it used; a page is not one
                refuse_other_sites(headers)
            limit = state.config.ingest.max_body_bytes
            check_json_request(headers, limit)
            body = await read_body(receive, limit)
            named = {name.decode("latin-1"): value.decode("latin-1") for name, value in raw}
            self._verify(named, body)
            event = self.parse(body, named)
            outcome = (await store_events(state, [event], span))[0]
            if outcome.conflict:
                raise Problem(409, "idempotency-conflict",
                              f"an event with id {outcome.id!r} was already received with a "
                              "different body", id=outcome.id)
            state.metrics.sources.accept(self.source.name)
            status = 200 if outcome.duplicate else 202
            data = outcome_json(outcome).encode()
        except ClientGone:
            return None
        except Problem as problem:
            return await answer_problem(problem, span, scope, receive, send)
        except Exception as exc:
            return await answer_crash(exc, span, scope, receive, send)
        await send({"type": "http.response.start", "status": status,
                    "headers": [_JSON_HEADER, (b"content-length", b"%d" % len(data))]})
        await send({"type": "http.response.body", "body": data})
        return status

    def _key(self, field: str) -> str:
        """A field of this source as its author wrote it: `sources[2].verify` in relay.yaml,
        `verify` for one made through the API."""
        return f"{self.key}.{field}" if self.key else field

    def _verify(self, headers: dict[str, str], body: bytes) -> None:
        try:
            self.check(headers, body, self.state.clock())
        except Refused as refusal:
            self.state.metrics.sources.refuse(self.source.name, refusal.reason)
            log.info("source_refused", source=self.source.name, reason=refusal.reason)
            challenge = _CHALLENGES.get(self.source.verify.scheme)
            raise Problem(401, "signature-invalid",
                          f"{refusal.detail} ({self._key('verify')}); nothing was stored",
                          source=self.source.name,
                          headers={"WWW-Authenticate": challenge} if challenge else None
                          ) from None

    def parse(self, body: bytes, headers: dict[str, str]) -> NewEvent:
        """The event of a verified body: its type, id and tenant from where the source says."""
        source, ingest = self.source, self.state.config.ingest
        id_from = source.id_from
        top_id = (id_from[1] if id_from is not None and id_from[0] == "field"
                  and "." not in id_from[1] else ingest.id_field if id_from is None else None)
        value = loads(body, top_id)
        if not isinstance(value, dict):
            raise Problem(400, "not-an-object",
                          f"the event must be a JSON object, got {json_kind(value)}")
        event_type = self._type(value, headers)
        key, key_where = _read(id_from, self._key("id_from"), value, headers, self.id_headers,
                               ingest.id_field, "ingest.id_field")
        if key is not None and not isinstance(key, str):
            key = _text(key, key_where, "invalid-idempotency-key")
        tenant, tenant_where = _read(source.tenant_from, self._key("tenant_from"), value,
                                     headers, ("x-tenant",), ingest.tenant_field,
                                     "ingest.tenant_field")
        if tenant is not None and not isinstance(tenant, str):
            tenant = _text(tenant, tenant_where, "invalid-tenant")
        return make_event(self.state, body, value, self.state.clock(), "", event_type, key,
                          key_where, tenant, tenant_where, source.name)

    def _type(self, value: dict[str, Any], headers: dict[str, str]) -> str:
        type_from = self.source.type_from
        if type_from is not None:
            found, where = _at(type_from, value, headers)
            if isinstance(found, str):
                return found
            problem = "is missing" if found is None else f"is {json_kind(found)}, not a string"
            raise Problem(400, "missing-event-type",
                          f"no event type: the {where} ({self._key('type_from')}) {problem}")
        for name in self.type_headers:
            if name in headers:
                return headers[name]
        fields = self.state.config.ingest.type_fields
        for name in fields:
            field = value.get(name)
            if isinstance(field, str):
                return field
        raise Problem(400, "missing-event-type",
                      f"no event type: no {' or '.join(self.type_headers)} header and no "
                      f"string field among {', '.join(fields)}; set {self._key('type_from')}")


def _at(where: tuple[str, str], value: dict[str, Any],
        headers: dict[str, str]) -> tuple[Any, str]:
    kind, name = where
    if kind == "header":
        return headers.get(name.lower()), f"{name} header"
    return field_at(value, name), f"field {name!r}"


def _read(rule: tuple[str, str] | None, key: str, value: dict[str, Any],
          headers: dict[str, str], default_headers: tuple[str, ...], field: str | None,
          field_key: str) -> tuple[Any, str]:
    """A value where `rule` (the source's `key`) says, else the first default header sent,
    else `field`."""
    if rule is not None:
        found, where = _at(rule, value, headers)
        return found, f"{where} ({key})"
    for name in default_headers:
        if name in headers:
            return headers[name], f"{name} header"
    if field is not None:
        found = field_at(value, field)
        if found is not None:
            return found, f"field {field!r} ({field_key})"
    return None, ""


def _text(raw: Any, where: str, slug: str) -> str:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise Problem(400, slug, f"the {where} must be a string or an integer, got "
                                 f"{json_kind(raw)}")
    return str(raw)


class SourceRoutes:
    """The sources' paths, rebuilt when a reload or the admin API replaces the sources."""

    def __init__(self, state: RelayState) -> None:
        self.state = state
        self._built: tuple[Config, tuple[SourceConfig, ...]] | None = None
        self._paths: dict[str, SourceEndpoint] = {}

    def get(self, path: str) -> SourceEndpoint | None:
        state = self.state
        built = self._built
        if built is None or built[0] is not state.config or built[1] is not state.api_sources:
            paths = {s.ingest_path: SourceEndpoint(state, s, f"sources[{i}]")
                     for i, s in enumerate(state.config.sources)}
            for source in state.api_sources:
                paths.setdefault(source.ingest_path, SourceEndpoint(state, source, ""))
            self._paths, self._built = paths, (state.config, state.api_sources)
        return self._paths.get(path)
