"""`sources:`: the platforms' own webhooks the relay takes as they are sent (SPEC section 9).

A platform's webhook sender cannot be told to add `X-Event-Type`, an
`Idempotency-Key` or a bearer token; it sends its own headers and signs its
own way. A source names one such sender: the path it posts to, how its
requests are verified, and where the event's type, id and tenant are read.
The same models validate relay.yaml and the admin API's bodies.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PlainSerializer, model_validator

from relay.config.section import Section
from relay.config.values import (
    NAME_RE,
    OptionalStr,
    PositiveDuration,
    Secrets,
    choice,
    kind,
    standard_secret_problem,
    to_name,
)
from relay.filters import FIELD_PATH_RE

__all__ = [
    "DEFAULT_SOURCE",
    "VERIFY_SCHEMES",
    "SourceConfig",
    "SourceNames",
    "ValueFrom",
    "VerifyConfig",
    "source_path",
]

# The name of `/v1/events`, for `endpoints[].sources`; events stored from it carry no name.
DEFAULT_SOURCE = "default"
VerifyScheme = Literal["babel", "x-webhook", "standard", "hmac", "bearer", "basic", "none"]
VERIFY_SCHEMES: tuple[VerifyScheme, ...] = ("babel", "x-webhook", "standard", "hmac",
                                            "bearer", "basic", "none")
_SIGNING = ("babel", "x-webhook", "standard", "hmac")
_HEADER_NAME_RE = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}")
_PATH_RE = re.compile(r"(?:/(?!\.\.?(?:/|\Z))[A-Za-z0-9._~-]{1,64}){1,8}")  # no . or ..
# The first path segments of the relay's own routes: a source path there would shadow them.
_RESERVED = frozenset({"v1", "ui", "portal", "healthz", "readyz", "metrics", "openapi.json",
                       "docs", "static"})
_PREFIX_RE = re.compile(r"[\x21-\x7e]{0,32}")


def source_path(name: str) -> str:
    """Where a source without `path` is posted to."""
    return f"/v1/sources/{name}"


def to_value_from(value: Any) -> tuple[str, str] | None:
    """`header:X-Babel-Event` or `field:data.type` as (`header`, name) or (`field`, path)."""
    if value is None:
        return None
    if isinstance(value, tuple) and len(value) == 2:
        value = f"{value[0]}:{value[1]}"
    if not isinstance(value, str):
        raise ValueError(f"expected header:NAME or field:PATH, got {kind(value)}")
    where, _, name = value.partition(":")
    if where == "header" and _HEADER_NAME_RE.fullmatch(name):
        return "header", name
    if where == "field" and FIELD_PATH_RE.fullmatch(name):
        return "field", name
    raise ValueError("expected header:NAME (such as header:X-Babel-Event) or field:PATH (a "
                     f"dotted path such as field:data.id), got {value!r}"[:200])


def _value_from_out(value: tuple[str, str] | None) -> str | None:
    return None if value is None else f"{value[0]}:{value[1]}"


def to_header_name(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and _HEADER_NAME_RE.fullmatch(value):
        return value
    raise ValueError(f"expected a header name such as X-Signature, got {value!r}"[:200])


def to_source_path(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _PATH_RE.fullmatch(value):
        raise ValueError("expected a path such as /hooks/babel: 1 to 8 segments of letters, "
                         f"digits, '.', '_', '~' or '-' (not . or ..), got {value!r}"[:200])
    first = value.split("/", 2)[1]
    if first in _RESERVED and not value.startswith("/v1/sources/"):
        raise ValueError(f"{value!r} is under /{first}, which the relay serves itself; pick "
                         "another path (or leave `path` out for /v1/sources/<name>)")
    return value


def to_prefix(value: Any) -> str:
    if isinstance(value, str) and _PREFIX_RE.fullmatch(value):
        return value
    raise ValueError(f"expected up to 32 printable characters such as sha256=, got {value!r}")


def to_source_name(value: Any) -> str:
    name = to_name(value)
    if name == DEFAULT_SOURCE:
        raise ValueError(f"{DEFAULT_SOURCE!r} is the name of /v1/events; pick another name")
    return name


def to_source_names(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(f"expected a list of source names such as [babel], got {kind(value)}")
    for item in value:
        if not isinstance(item, str) or not NAME_RE.fullmatch(item):
            raise ValueError(f"{item!r} is not a source name")
    return tuple(value)


ValueFrom = Annotated[tuple[str, str] | None,
                      BeforeValidator(to_value_from, json_schema_input_type=str | None),
                      PlainSerializer(_value_from_out, when_used="always")]
HeaderName = Annotated[str | None,
                       BeforeValidator(to_header_name, json_schema_input_type=str | None)]
SourcePath = Annotated[str | None,
                       BeforeValidator(to_source_path, json_schema_input_type=str | None)]
SourceName = Annotated[str, BeforeValidator(to_source_name, json_schema_input_type=str)]
SourceNames = Annotated[tuple[str, ...] | None,
                        BeforeValidator(to_source_names, json_schema_input_type=list[str] | None)]
Prefix = Annotated[str, BeforeValidator(to_prefix, json_schema_input_type=str)]


class VerifyConfig(Section):
    """How a source's requests prove they come from the platform."""

    scheme: Annotated[VerifyScheme, BeforeValidator(choice(*VERIFY_SCHEMES),
                                                    json_schema_input_type=VerifyScheme)]
    secrets: Secrets = Field(default=(), alias="secret", repr=False, exclude=True)
    """The platform's webhook secret; a list during a rotation (any one may sign)."""
    header: HeaderName = None
    """`hmac`: the header holding the signature."""
    algorithm: Annotated[Literal["sha256", "sha512"],
                         BeforeValidator(choice("sha256", "sha512"),
                                         json_schema_input_type=Literal["sha256", "sha512"])
                         ] = "sha256"
    encoding: Annotated[Literal["hex", "base64"],
                        BeforeValidator(choice("hex", "base64"),
                                        json_schema_input_type=Literal["hex", "base64"])
                        ] = "hex"
    prefix: Prefix = ""
    """`hmac`: what precedes the digest in the header, such as `sha256=`."""
    signed: Annotated[Literal["body", "timestamp.body"],
                      BeforeValidator(choice("body", "timestamp.body"),
                                      json_schema_input_type=Literal["body", "timestamp.body"])
                      ] = "body"
    timestamp_header: HeaderName = None
    tolerance_s: PositiveDuration = Field(default=300.0, alias="tolerance")
    """How far a signed timestamp may be from the relay's clock, either way."""
    tokens: Secrets = Field(default=(), alias="token", repr=False, exclude=True)
    username: OptionalStr = None
    passwords: Secrets = Field(default=(), alias="password", repr=False, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _plurals(cls, data: Any) -> Any:
        """`secrets: [...]` reads as well as `secret: [...]` (and so for tokens, passwords)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for one in ("secret", "token", "password"):
            many = one + "s"
            if many in data:
                if data.get(one) is not None:
                    raise ValueError(f"give `{one}` or `{many}`, not both")
                data[one] = data.pop(many)
        return data

    @model_validator(mode="after")
    def _fits_scheme(self) -> VerifyConfig:
        scheme = self.scheme
        for secret in (*self.secrets, *self.tokens, *self.passwords):
            if secret != secret.strip():
                raise ValueError("a secret, token or password has leading or trailing "
                                 "whitespace (a newline from a file?)")
        if scheme in _SIGNING and not self.secrets:
            raise ValueError(f"the {scheme} scheme needs `secret` (the platform's webhook "
                             "secret), or `secrets` during a rotation")
        if scheme == "standard":
            for index, secret in enumerate(self.secrets):
                problem = standard_secret_problem(secret)
                if problem:
                    raise ValueError(f"secret #{index + 1} {problem}")
        if scheme == "hmac":
            if self.header is None:
                raise ValueError("the hmac scheme needs `header`, the header holding the "
                                 "signature")
            if self.signed == "timestamp.body" and self.timestamp_header is None:
                raise ValueError("`signed: timestamp.body` needs `timestamp_header`")
        if scheme == "bearer" and not self.tokens:
            raise ValueError("the bearer scheme needs `token` (or `tokens` during a rotation)")
        if scheme == "basic" and (not self.username or not self.passwords):
            raise ValueError("the basic scheme needs `username` and `password`")
        return self


class SourceConfig(Section):
    """One platform's webhook sender, taken at its own path."""

    name: SourceName
    path: SourcePath = None
    """Where the platform posts; default /v1/sources/<name>."""
    verify: VerifyConfig
    type_from: ValueFrom = None
    """Where the event type is: `header:NAME` or `field:PATH`; default the scheme's event
    header, then `X-Event-Type` and `ingest.type_fields`."""
    id_from: ValueFrom = None
    """The platform's delivery id, which becomes the event id (its retries are duplicates);
    default the scheme's id header, then `Idempotency-Key` and `ingest.id_field`."""
    tenant_from: ValueFrom = None
    """Default `X-Tenant`, then `ingest.tenant_field`."""

    @property
    def ingest_path(self) -> str:
        return self.path if self.path is not None else source_path(self.name)
