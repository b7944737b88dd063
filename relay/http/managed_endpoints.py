"""Endpoints made, changed and deleted at run time: the operations behind `/v1/endpoints`.

An API endpoint is validated by the same schema as relay.yaml's
(`relay.config.validate_endpoint`), so both read the same messages; it is
stored with the fields its creator gave and its secrets sealed, and takes
effect at once here (router, lanes) and, on PostgreSQL, on every replica
when they hear of it. relay.yaml's endpoints are read-only here: 409
`endpoint-provisioned`.

A secret is generated when none is given and is returned by `create` and
`rotate_secret` only. Rotation keeps the previous secret signing beside the
new one (the `standard` scheme sends both signatures) until
`expire_previous_in` has passed, then it stops by itself.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from relay.config import EndpointConfig, validate_endpoint
from relay.config.models import EndpointConfig as _Model
from relay.config.sources import DEFAULT_SOURCE
from relay.http.problems import Problem
from relay.http.serialization import MASK
from relay.http.state import RelayState
from relay.registry import ApiEndpoint, SecretVersion, seal_secrets
from relay.signing import generate_secret
from relay.storage.base import StoredEndpoint
from relay.units import format_duration, parse_duration

__all__ = [
    "MAX_ROTATION_OVERLAP_S",
    "api_endpoint",
    "create_endpoint",
    "delete_endpoint",
    "new_endpoint_name",
    "rotate_secret",
    "update_endpoint",
]

DEFAULT_ROTATION_OVERLAP_S = 24 * 3600.0
MAX_ROTATION_OVERLAP_S = 7 * 86400.0
# The fields a body may hold: every key an endpoint has in relay.yaml.
FIELDS = frozenset(field.alias or name for name, field in _Model.model_fields.items())


def new_endpoint_name() -> str:
    """`ep_` and 20 random hex digits, when the creator gives no name."""
    return f"ep_{secrets.token_hex(10)}"


def new_secret(scheme: str) -> str:
    """A secret for the scheme: `whsec_` + 32 random bytes, or a random token for hex ones."""
    return generate_secret() if scheme == "standard" else secrets.token_urlsafe(32)


def _invalid(problems: list[tuple[str, str]]) -> Problem:
    errors = [{"field": field or "(body)", "message": message} for field, message in problems]
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return Problem(422, "invalid-endpoint", f"{first['field']}: {first['message']}{more}",
                   errors=errors)


def _body_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _invalid([("", "the body must be a JSON object of endpoint fields")])
    return body


def _validated(state: RelayState, spec: dict[str, Any],
               secrets_: list[str]) -> EndpointConfig:
    endpoint, problems = validate_endpoint({**spec, "secret": secrets_},
                                           state.config.delivery)
    if endpoint is None:
        raise _invalid(problems)
    known = {DEFAULT_SOURCE, *(s.name for s in state.sources)}
    unknown = [name for name in endpoint.sources or () if name not in known]
    if unknown:
        raise _invalid([("sources", f"no source is named {unknown[0]!r} (known: "
                                    f"{', '.join(sorted(known))})")])
    return endpoint


def _box(state: RelayState) -> Any:
    box = state.registry.box
    if box is None:
        raise Problem(503, "secrets-key-missing",
                      "this relay has no secrets_key, so it cannot keep API endpoints' "
                      "secrets; set secrets_key in relay.yaml")
    return box


def _provisioned(state: RelayState, name: str) -> None:
    if state.registry.source(name) == "config":
        raise Problem(409, "endpoint-provisioned",
                      f"endpoint {name!r} is declared in relay.yaml; change it there and "
                      "reload the relay", endpoint=name)


def api_endpoint(state: RelayState, name: str) -> ApiEndpoint:
    """An API endpoint an action may change: 409 for relay.yaml's, 404 for none."""
    _provisioned(state, name)
    endpoint = state.registry.api(name)
    if endpoint is None:
        raise Problem(404, "unknown-endpoint", f"no endpoint named {name!r}", endpoint=name)
    return endpoint


async def create_endpoint(state: RelayState, body: Any) -> tuple[str, str]:
    """Store a new endpoint from a POST body; returns its name and its (only shown) secret."""
    spec = dict(_body_object(body))
    given_secret = spec.pop("secret", None)
    name = spec.get("name")
    if name is None:
        spec["name"] = name = new_endpoint_name()
    if isinstance(name, str) and state.registry.get(name) is not None:
        raise Problem(409, "endpoint-exists", f"an endpoint named {name!r} already exists",
                      endpoint=name)
    signature = spec.get("signature", "standard")
    if given_secret is None:
        given_secret = new_secret(signature if isinstance(signature, str) else "standard")
    if not isinstance(given_secret, str):
        raise _invalid([("secret", "expected one secret as a string (rotate to change it)")])
    endpoint = _validated(state, spec, [given_secret])
    now = state.clock()
    versions = (SecretVersion(given_secret),)
    row = StoredEndpoint(endpoint.name, endpoint.tenant, _spec_json(spec),
                         seal_secrets(_box(state), endpoint.name, versions), now, now)
    outcome = await state.storage.create_endpoint(row, state.config.limits.endpoints_per_tenant)
    if outcome == "exists":
        raise Problem(409, "endpoint-exists",
                      f"an endpoint named {endpoint.name!r} already exists", endpoint=name)
    if outcome == "limit":
        raise Problem(409, "endpoint-limit",
                      f"tenant {endpoint.tenant!r} already has "
                      f"{state.config.limits.endpoints_per_tenant} endpoints "
                      "(limits.endpoints_per_tenant)", tenant=endpoint.tenant)
    await state.endpoint_changed(ApiEndpoint(row, versions, endpoint))
    state.notices.changed("endpoint.created", endpoint.name, endpoint)
    return endpoint.name, given_secret


async def update_endpoint(state: RelayState, name: str, body: Any) -> None:
    """Change an API endpoint's fields (null resets one to its default); the secret stays."""
    current = api_endpoint(state, name)
    patch = _body_object(body)
    problems = []
    if "secret" in patch:
        problems.append(("secret", "a secret is changed by POST "
                                   f"/v1/endpoints/{name}/rotate-secret, not by PATCH"))
    if "name" in patch and patch["name"] != name:
        problems.append(("name", "an endpoint's name cannot change; create another one"))
    if problems:
        raise _invalid(problems)
    stored = current.spec
    patch = _keep_masked_headers(patch, stored)
    spec = {**stored, **patch}
    spec = {key: value for key, value in spec.items() if value is not None}
    spec["name"] = name
    endpoint = _validated(state, spec, _active(state, current))
    row = StoredEndpoint(name, endpoint.tenant, _spec_json(spec), current.row.secrets,
                         current.row.created_at, state.clock())
    if not await state.storage.update_endpoint(row):
        raise Problem(404, "unknown-endpoint", f"no endpoint named {name!r}", endpoint=name)
    await state.endpoint_changed(ApiEndpoint(row, current.secrets, endpoint))
    state.notices.changed("endpoint.updated", name, endpoint, fields=list(patch))


async def delete_endpoint(state: RelayState, name: str) -> int:
    """Delete an API endpoint; its waiting deliveries become `cancelled`. Returns how many."""
    deleted = api_endpoint(state, name).config
    cancelled = await state.storage.delete_endpoint(name, state.clock())
    if cancelled is None:
        raise Problem(404, "unknown-endpoint", f"no endpoint named {name!r}", endpoint=name)
    await state.endpoint_deleted(name)
    state.notices.changed("endpoint.deleted", name, deleted)
    return cancelled


async def rotate_secret(state: RelayState, name: str, body: Any) -> tuple[str, float | None]:
    """A new secret for an API endpoint; the previous ones sign until they expire.

    Returns the new secret and when the previous one stops being used.
    """
    current = api_endpoint(state, name)
    options = _body_object(body if body is not None else {})
    unknown = sorted(set(options) - {"expire_previous_in", "secret"})
    if unknown:
        raise _invalid([(key, "unknown field (this route takes expire_previous_in and "
                              "secret)") for key in unknown])
    overlap = DEFAULT_ROTATION_OVERLAP_S
    raw = options.get("expire_previous_in")
    if raw is not None:
        try:
            overlap = parse_duration(raw)
        except ValueError as exc:
            raise _invalid([("expire_previous_in", str(exc))]) from None
        if overlap > MAX_ROTATION_OVERLAP_S:
            raise _invalid([("expire_previous_in", "at most "
                             f"{format_duration(MAX_ROTATION_OVERLAP_S)}, got {raw!r}")])
    new = options.get("secret")
    if new is None:
        new = new_secret(current.config.signature)
    if not isinstance(new, str):
        raise _invalid([("secret", "expected a string")])
    now = state.clock()
    expires = now + overlap
    kept = [SecretVersion(s.value, min(s.expires_at or expires, expires))
            for s in current.secrets
            if overlap > 0 and (s.expires_at is None or s.expires_at > now)]
    versions = (SecretVersion(new), *kept)
    endpoint = _validated(state, current.spec, [new] + [s.value for s in kept])
    row = StoredEndpoint(name, current.row.tenant, current.row.spec,
                         seal_secrets(_box(state), name, versions), current.row.created_at, now)
    if not await state.storage.update_endpoint(row):
        raise Problem(404, "unknown-endpoint", f"no endpoint named {name!r}", endpoint=name)
    await state.endpoint_changed(ApiEndpoint(row, versions, endpoint))
    return new, (expires if kept else None)


def _keep_masked_headers(patch: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """A header sent back as `…` (how answers mask credentials) keeps its stored value."""
    headers, stored = patch.get("headers"), spec.get("headers")
    if not isinstance(headers, dict) or not isinstance(stored, dict):
        return patch
    kept = {key: stored[key] if value == MASK and key in stored else value
            for key, value in headers.items()}
    return {**patch, "headers": kept}


def _active(state: RelayState, endpoint: ApiEndpoint) -> list[str]:
    now = state.clock()
    return [s.value for s in endpoint.secrets if s.expires_at is None or s.expires_at > now]


def _spec_json(spec: dict[str, Any]) -> str:
    return json.dumps(spec, separators=(",", ":"), ensure_ascii=False)
