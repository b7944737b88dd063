"""Sources made at run time: `POST /v1/sources`, `PUT` and `DELETE /v1/sources/{name}`.

A body is relay.yaml's own `SourceConfig` (`relay.config.validate_source`),
so an API client reads the same messages as relay.yaml's author, and the
rules that tie sources together (unique names and paths, `none` only on a
loopback listener) are the same. relay.yaml's sources are read-only here.
The row is stored first, then the running relay takes it; other replicas
sharing PostgreSQL hear of it (NOTIFY `^name`) and read the API's sources again.
"""

from __future__ import annotations

from typing import Any

from relay.config.loading import validate_source
from relay.config.sources import SourceConfig
from relay.config.values import is_loopback_host
from relay.http.problems import Problem
from relay.http.state import RelayState
from relay.source_store import seal_source

__all__ = ["create_source", "delete_source", "replace_source", "source_json"]

_SECRET_KEYS = ("secret", "secrets", "token", "tokens", "password", "passwords")


def _invalid(problems: list[tuple[str, str]]) -> Problem:
    errors = [{"field": field or "(body)", "message": message} for field, message in problems]
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return Problem(422, "invalid-source", f"{first['field']}: {first['message']}{more}",
                   errors=errors)


def _checked(state: RelayState, body: Any, replacing: str | None = None) -> SourceConfig:
    source, problems = validate_source(body)
    if source is None:
        raise _invalid(problems)
    if replacing is not None and source.name != replacing:
        raise _invalid([("name", "a source's name cannot change; create another one")])
    if source.verify.scheme == "none" and not is_loopback_host(state.config.listen_host):
        raise _invalid([("verify.scheme", f"none accepts anything sent to the listener, and "
                                          f"{state.config.listen_host} is not a loopback "
                                          "address")])
    for other in state.sources:
        if other.name != source.name and other.ingest_path == source.ingest_path:
            raise _invalid([("path", f"{source.ingest_path} is the path of source "
                                     f"{other.name!r}")])
    return source


def _box(state: RelayState) -> Any:
    box = state.registry.box
    if box is None:
        raise Problem(503, "secrets-key-missing",
                      "this relay has no secrets_key, so it cannot keep API sources' secrets; "
                      "set secrets_key in relay.yaml")
    return box


def _provisioned(state: RelayState, name: str) -> None:
    if state.config.source_named(name) is not None:
        raise Problem(409, "source-provisioned",
                      f"source {name!r} is declared in relay.yaml; change it there and reload")


def _api(state: RelayState, name: str) -> SourceConfig:
    _provisioned(state, name)
    source = next((s for s in state.api_sources if s.name == name), None)
    if source is None:
        raise Problem(404, "unknown-source", f"no source {name!r}")
    return source


def _take(state: RelayState, source: SourceConfig | None, name: str) -> None:
    kept = [s for s in state.api_sources if s.name != name]
    state.api_sources = tuple(sorted([*kept, *([source] if source else [])],
                                     key=lambda s: s.name))


async def create_source(state: RelayState, body: Any) -> SourceConfig:
    source = _checked(state, body)
    _provisioned(state, source.name)
    now = state.clock()
    if not await state.storage.save_source(seal_source(_box(state), source, now, now),
                                           create=True):
        raise Problem(409, "source-exists", f"a source named {source.name!r} exists; PUT "
                                            f"/v1/sources/{source.name} replaces it")
    _take(state, source, source.name)
    return source


async def replace_source(state: RelayState, name: str, body: Any) -> SourceConfig:
    """The whole source anew; a `verify` without secrets keeps the stored ones."""
    old = _api(state, name)
    if isinstance(body, dict):
        body = {"name": name, **body}
        verify = body.get("verify")
        if isinstance(verify, dict) and not any(k in verify for k in _SECRET_KEYS):
            body["verify"] = {**verify, "secrets": list(old.verify.secrets),
                              "tokens": list(old.verify.tokens),
                              "passwords": list(old.verify.passwords)}
    source = _checked(state, body, replacing=name)
    now = state.clock()
    if not await state.storage.save_source(seal_source(_box(state), source, now, now),
                                           create=False):
        raise Problem(404, "unknown-source", f"no source {name!r}")
    _take(state, source, name)
    return source


async def delete_source(state: RelayState, name: str) -> None:
    _api(state, name)
    await state.storage.delete_source(name)
    _take(state, None, name)


def source_json(state: RelayState, source: SourceConfig, origin: str) -> dict[str, Any]:
    """A source as relay.yaml spells it (no secret), its path, origin and counts."""
    counts = state.metrics.sources
    return {**source.model_dump(mode="json"), "path": source.ingest_path, "origin": origin,
            "accepted": counts.accepted.get(source.name, 0),
            "refused": counts.refusals(source.name)}
