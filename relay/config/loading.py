"""relay.yaml: from YAML text to a `Config`, with every problem named by its key path.

Parsing is a pure function of the text and the environment (`parse_config`),
so tests and `relay check` run it without starting anything. Each section and
each endpoint is validated on its own, so that one bad value does not hide the
others: every problem is collected as `key.path: what is wrong` and raised
together in one `ConfigError`. Unknown keys are errors, with a suggestion: a
typo such as `retry_shedule` must not silently fall back to a default.

`${VAR}` and `${VAR:-default}` are expanded in relay.yaml's strings before
validation, and only there: an API body is taken literally, so that a tenant
cannot read the relay's environment through an endpoint's headers.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from relay.config.client_settings import ClientSettings
from relay.config.models import (
    OPERATIONAL_KINDS,
    AdminConfig,
    Config,
    DeliveryConfig,
    EndpointConfig,
    IngestConfig,
    LimitsConfig,
    LoggingConfig,
    OperationsConfig,
)
from relay.config.sources import DEFAULT_SOURCE, SourceConfig
from relay.config.values import (
    is_loopback_host,
    kind,
    standard_secret_problem,
    to_bool,
    to_url,
)
from relay.exceptions import ConfigError

__all__ = [
    "ClientSettings", "Problem", "endpoint_problems", "load_client_settings", "load_config",
    "parse_config", "source_problems", "validate_endpoint", "validate_source",
]

Problem = tuple[str, str]  # (key path, what is wrong)

_ENV_RE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SECTIONS: dict[str, type[BaseModel]] = {
    "ingest": IngestConfig, "admin": AdminConfig, "limits": LimitsConfig,
    "delivery": DeliveryConfig, "logging": LoggingConfig, "operations": OperationsConfig,
}
# What an endpoint inherits from `delivery` when it does not say.
_INHERITED = {"timeout": "timeout_s", "retry_schedule": "retry_schedule_s", "jitter": "jitter"}


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Config:
    """Read and parse a relay.yaml file; raise `ConfigError` with every problem found."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{file}: no such file (pass -c PATH or set RELAY_CONFIG)"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{file}: cannot be read: {exc}"]) from None
    return parse_config(text, env=os.environ if env is None else env, source=file.resolve())


def parse_config(
    text: str, env: Mapping[str, str] | None = None, source: Path | None = None
) -> Config:
    """Parse relay.yaml text. Pure: the environment is passed in, nothing is opened."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{where}invalid YAML: {problem}"]) from None
    expansion = _Expansion(env if env is not None else {})
    tree = expansion.expand("", raw)
    problems = list(expansion.problems)
    config = _build(tree, problems)
    problems = [p for i, p in enumerate(problems)
                if p in expansion.problems or not expansion.covers(p[0])]
    if problems or config is None:
        raise ConfigError([f"{path}: {message}" if path else message
                           for path, message in problems])
    return config.with_source(source)


def validate_endpoint(raw: Any, delivery: DeliveryConfig,
                      prefix: str = "") -> tuple[EndpointConfig | None, list[Problem]]:
    """One endpoint from relay.yaml or an API body: the model, or every problem with its path.

    The one validation both sources of endpoints go through, so an API client
    reads the same messages as relay.yaml's author.
    """
    if not isinstance(raw, dict):
        return None, [(prefix, f"expected a mapping, got {kind(raw)}")]
    data = {key: value for key, value in raw.items() if value is not None}
    for alias, name in _INHERITED.items():
        data.setdefault(alias, getattr(delivery, name))
    problems = [(_join(prefix, path), message) for path, message in endpoint_problems(data)]
    try:
        endpoint = EndpointConfig.model_validate(data)
    except ValidationError as exc:
        return None, _field_problems(exc, EndpointConfig, prefix) + problems
    return (None if problems else endpoint), problems


def validate_source(raw: Any, prefix: str = "") -> tuple[SourceConfig | None, list[Problem]]:
    """One source from an API body: the model, or every problem with its path."""
    if not isinstance(raw, dict):
        return None, [(prefix, f"expected a mapping, got {kind(raw)}")]
    try:
        return SourceConfig.model_validate(raw), []
    except ValidationError as exc:
        return None, _field_problems(exc, SourceConfig, prefix)


def endpoint_problems(data: Mapping[str, Any]) -> list[Problem]:
    """The rules that tie an endpoint's fields together, read from its raw values.

    Read from the raw values rather than from the model, so that they are
    reported beside the field errors of an endpoint that fails validation.
    """
    problems: list[Problem] = []
    url, allow_http = data.get("url"), data.get("allow_http", False)
    try:
        plain = to_url(url).startswith("http://") and not to_bool(allow_http)
    except ValueError:
        plain = False
    if plain:
        problems.append(("url", "plain http:// needs `allow_http: true` on this endpoint "
                                "(deliveries would travel unencrypted)"))
    if data.get("format") == "slack" and data.get("body") == "compact":
        problems.append(("body", "compact re-serialises the event, and `format: slack` sends "
                                 "a message about it instead; use one or the other"))
    if data.get("signature", "standard") != "standard":
        return problems
    secret = data.get("secret")
    items = secret if isinstance(secret, list | tuple) else [] if secret is None else [secret]
    found = False
    for index, item in enumerate(items):
        if not isinstance(item, str) or not item:
            continue  # a wrong type is the field's error; an empty string is "no secret"
        found = True
        problem = standard_secret_problem(item)
        if problem:
            problems.append((f"secret[{index}]" if isinstance(secret, list | tuple)
                             else "secret", problem))
    if not found and not any(not isinstance(item, str) for item in items):
        problems.append(("secret", "the standard signature scheme needs a secret "
                                   "(generate one with `relay keygen`)"))
    return problems


def _build(tree: Any, problems: list[Problem]) -> Config | None:
    if tree is None:
        tree = {}
    if not isinstance(tree, dict):
        problems.append(("", f"top level: expected a mapping, got {kind(tree)}"))
        return None
    parts: dict[str, Any] = {}
    for name, model in _SECTIONS.items():
        try:
            parts[name] = model.model_validate(tree.get(name))
        except ValidationError as exc:
            problems.extend(_field_problems(exc, model, name))
    delivery = parts.get("delivery", DeliveryConfig())
    endpoints = _endpoints(tree.get("endpoints"), delivery, problems)
    top = {key: value for key, value in tree.items()
           if key not in _SECTIONS and key != "endpoints"}
    try:
        config = Config.model_validate({**top, **parts, "endpoints": endpoints})
    except ValidationError as exc:
        problems.extend(_field_problems(exc, Config, ""))
        config = None
    _cross_checks(tree, parts, problems)
    _notify_checks(tree.get("endpoints"), parts.get("operations"), problems)
    if config is not None:
        problems.extend(source_problems(config))
        if config.postgres is not None and config.secrets_key is None:
            problems.append(("secrets_key", SECRETS_KEY_REQUIRED))
    return config


def _notify_checks(raw: Any, operations: OperationsConfig | None,
                   problems: list[Problem]) -> None:
    """`operations.notify` names endpoints of this file that belong to no tenant.

    Of this file, because the reference is checked here and cannot dangle: an
    API endpoint can be deleted, or given to a tenant, by the API, the
    dashboard, the portal or another replica, none of which edits relay.yaml.
    Of no tenant, because the events tell of every tenant's endpoints (names,
    URLs, errors), and a tenant's endpoint is shown to that tenant's portal.
    """
    if operations is None:
        return
    tenants = {item.get("name"): item.get("tenant") for item in raw if isinstance(item, dict)} \
        if isinstance(raw, list) else {}
    for index, name in enumerate(operations.notify):
        if name not in tenants:
            problems.append((f"operations.notify[{index}]",
                             f"no endpoint named {name!r} in `endpoints` (operational events "
                             "go to endpoints of relay.yaml, not to the API's)"))
        elif tenants[name] is not None:
            problems.append((f"operations.notify[{index}]",
                             f"{name!r} belongs to tenant {tenants[name]!r}; operational "
                             "events tell of every tenant's endpoints, so they go only to "
                             "endpoints without a tenant"))
    from relay.routing import pattern_matches  # routing imports the config package

    for index, pattern in enumerate(operations.events):
        if not any(pattern_matches(pattern, kind) for kind in OPERATIONAL_KINDS):
            problems.append((f"operations.events[{index}]",
                             f"{pattern!r} matches no operational event (they are "
                             f"{', '.join(OPERATIONAL_KINDS)})"))


# PostgreSQL is shared by replicas on other hosts: a key file beside one of them
# (SQLite's way) would leave the others unable to read what it sealed.
SECRETS_KEY_REQUIRED = (
    "required with postgresql:// storage: it seals the secrets of endpoints and sources "
    "made through the API, and every replica needs the same one; make one with "
    "`relay keygen --secrets-key` and set `secrets_key: ${RELAY_SECRETS_KEY}` on every "
    "replica")


def source_problems(config: Config) -> list[Problem]:
    """What ties `sources` together and to the rest: unique names and paths, `none` only on
    loopback, and endpoints' `sources` naming sources that exist."""
    problems: list[Problem] = []
    names: set[str] = set()
    paths: set[str] = set()
    for index, source in enumerate(config.sources):
        if source.name in names:
            problems.append((f"sources[{index}].name",
                             f"{source.name!r} is used by another source; names must be unique"))
        if source.ingest_path in paths:
            problems.append((f"sources[{index}].path",
                             f"{source.ingest_path} is the path of another source"))
        names.add(source.name)
        paths.add(source.ingest_path)
        if source.verify.scheme == "none" and not is_loopback_host(config.listen_host):
            problems.append((f"sources[{index}].verify.scheme",
                             f"none accepts anything sent to the listener, and "
                             f"{config.listen_host} is not a loopback address; verify the "
                             "platform's signature or token"))
    known = names | {DEFAULT_SOURCE}
    for index, endpoint in enumerate(config.endpoints):
        for name in endpoint.sources or ():
            if name not in known:
                problems.append((f"endpoints[{index}].sources",
                                 f"no source is named {name!r} (known: "
                                 f"{', '.join(sorted(known))})"))
    return problems


def _endpoints(raw: Any, delivery: DeliveryConfig,
               problems: list[Problem]) -> tuple[EndpointConfig, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append(("endpoints", f"expected a list of endpoints, got {kind(raw)}"))
        return ()
    endpoints: list[EndpointConfig] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        path = f"endpoints[{index}]"
        endpoint, found = validate_endpoint(item, delivery, path)
        problems.extend(found)
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str) and name in seen:
            problems.append((f"{path}.name",
                             f"{name!r} is used by another endpoint; names must be unique"))
        if isinstance(name, str):
            seen.add(name)
        if endpoint is not None:
            endpoints.append(endpoint)
    return tuple(endpoints)


def _cross_checks(tree: dict[str, Any], parts: dict[str, Any],
                  problems: list[Problem]) -> None:
    """Rules across sections, each checked when the values it needs are valid."""
    try:
        strict = to_bool(tree.get("events_strict", False))
    except ValueError:
        strict = False
    if strict and tree.get("events") is None:
        problems.append(("events_strict", "is true but no `events` catalog is given"))
    try:
        host = Config.model_validate({"listen": tree["listen"]}).listen_host \
            if "listen" in tree else "127.0.0.1"
    except ValidationError:
        return
    ingest, admin = parts.get("ingest"), parts.get("admin")
    if ingest is None or admin is None or is_loopback_host(host):
        return
    missing = [key for key, value in (("ingest.token", ingest.token),
                                      ("admin.token", admin.token)) if not value]
    if missing:
        problems.append(("listen", f"{host} is not a loopback address, so "
                                   f"{' and '.join(missing)} must be set (anyone who can "
                                   "reach it could post events)"))


def _field_problems(exc: ValidationError, model: type[BaseModel], prefix: str) -> list[Problem]:
    """pydantic's errors in the relay's words, each with its key path."""
    problems: list[Problem] = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = error["loc"]
        path = _join(prefix, _loc_path(loc))
        if error["type"] == "extra_forbidden":
            known = _aliases(model) if len(loc) == 1 else set()
            hint = _closest(str(loc[-1]), known)
            message = "unknown key" + (f" (did you mean {hint!r}?)" if hint else "")
        elif error["type"] == "missing":
            message = "is required"
        elif error["type"] == "value_error":
            message = str(error["ctx"]["error"])
        else:
            message = error["msg"]
        problems.append((path, message))
    return problems


def _aliases(model: type[BaseModel]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


def _loc_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path = f"{path}[{part}]" if isinstance(part, int) else _join(path, part)
    return path


def _join(path: str, key: str) -> str:
    if not key:
        return path
    if key.startswith("["):
        return path + key
    return f"{path}.{key}" if path else key


def _closest(key: str, known: set[str]) -> str | None:
    matches = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.7)
    return matches[0] if matches else None


class _Expansion:
    """Expands `${VAR}` in every string of the YAML tree, noting unset variables by path."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[Problem] = []

    def expand(self, path: str, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: self.expand(_join(path, str(key)), item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.expand(f"{path}[{index}]", item) for index, item in enumerate(value)]
        if not isinstance(value, str) or "$" not in value:
            return value

        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            if name in self.env:
                return self.env[name]
            if default is not None:
                return default
            self.problems.append((path, f"environment variable {name} is not set "
                                        f"(write ${{{name}:-default}} to give a default)"))
            return ""

        return _ENV_RE.sub(replace, value)

    def covers(self, path: str) -> bool:
        """Whether `path` is (within) a value whose variable was unset: its error is said."""
        return any(path == p or path.startswith((p + ".", p + "[")) for p, _ in self.problems)

    def __iter__(self) -> Iterator[Problem]:
        return iter(self.problems)


def load_client_settings(path: str | os.PathLike[str],
                         env: Mapping[str, str] | None = None) -> ClientSettings:
    """What a command that talks to a running relay needs of relay.yaml: listener, tokens.

    Nothing else is validated or expanded, so an unset `${CRM_WEBHOOK_SECRET}`
    or a typo in an endpoint does not stop `relay endpoints`. An unset
    variable in a token is kept as a problem of that key, for the commands
    that need it to report.
    """
    file = Path(path)
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{file}: no such file (pass -c PATH or set RELAY_CONFIG)"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{file}: cannot be read: {exc}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{file}: invalid YAML: {exc}"]) from None
    tree = raw if isinstance(raw, dict) else {}
    expansion = _Expansion(os.environ if env is None else env)
    picked = {
        "listen": expansion.expand("listen", tree.get("listen")),
        "ingest.token": expansion.expand(
            "ingest.token", (tree.get("ingest") or {}).get("token")
            if isinstance(tree.get("ingest"), dict) else None),
        "admin.token": expansion.expand(
            "admin.token", (tree.get("admin") or {}).get("token")
            if isinstance(tree.get("admin"), dict) else None),
    }
    problems = dict(expansion.problems)
    try:
        listen = Config.model_validate(
            {"listen": picked["listen"]} if picked["listen"] is not None else {}).listen
    except ValidationError as exc:
        raise ConfigError([f"{p}: {m}" for p, m in _field_problems(exc, Config, "")]) from None
    return ClientSettings(listen[0], listen[1], _token(picked["ingest.token"]),
                          _token(picked["admin.token"]), problems)


def _token(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int) and str(value) else None
