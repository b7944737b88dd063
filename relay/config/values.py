"""The value types of relay.yaml and of the endpoint API, each parsed from what a person writes.

Each type is an `Annotated` pydantic type: a converter that takes the YAML or
JSON value and returns the typed value or raises `ValueError` with a message
a config error can prefix with its key path (`endpoints[1].timeout: ...`), and
a serializer that writes it back the way a person would (`10s`, `50/s`), so
that what the API answers can be pasted into relay.yaml or sent back in a
PATCH. The converters accept their own output too (a float for a duration, a
tuple of pairs for headers), so code can build configs from typed values.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, PlainSerializer

from relay.filters import FIELD_PATH_RE
from relay.hosts import HOST_NAME_RE, is_address, split_host
from relay.units import format_duration, format_rate, parse_duration, parse_rate, parse_size

__all__ = [
    "NAME_RE",
    "PATTERN_RE",
    "SCHEMES",
    "TENANT_RE",
    "TYPE_RE",
    "Network",
    "Scheme",
    "is_loopback_host",
    "kind",
    "standard_secret_key",
    "standard_secret_problem",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Scheme = Literal["standard", "x-webhook", "babel"]
SCHEMES: tuple[Scheme, ...] = ("standard", "x-webhook", "babel")
NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
PATTERN_RE = re.compile(r"[A-Za-z0-9_.*-]{1,128}")
TYPE_RE = re.compile(r"[A-Za-z0-9_.-]{1,128}")
# A tenant id as platforms have them (`42`, `cus_8f3`, `acme@example.com`): printable ASCII.
TENANT_RE = re.compile(r"[\x21-\x7e]{1,128}")
_HEADER_NAME_RE = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
_LISTEN_RE = re.compile(r"(?:\[([0-9A-Fa-f:.]+)\]|([^:\s]+)):([0-9]{1,5})")


def kind(value: object) -> str:
    """What a value is, in the words of an error message."""
    return {dict: "a mapping", list: "a list", tuple: "a list", str: "a string",
            bool: "a boolean", int: "a number", float: "a number",
            type(None): "nothing"}.get(type(value), "a value")


# -- converters ---------------------------------------------------------------------------


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "yes", "on", "1", "false", "no",
                                                     "off", "0"}:
        return value.lower() in {"true", "yes", "on", "1"}
    raise ValueError(f"expected true or false, got {value!r}")


def to_optional_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value) or None
    raise ValueError(f"expected a string, got {kind(value)}")


def choice(*choices: str) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if value in choices:
            return value
        raise ValueError(f"expected one of {', '.join(choices)}; got {value!r}")

    return convert


def int_range(low: int, high: int) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"expected a whole number from {low} to {high}, got {value!r}")
        return value

    return convert


def positive(convert: Callable[[Any], float]) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        result = convert(value)
        if result <= 0:
            raise ValueError(f"must be greater than zero, got {value!r}")
        return result

    return check


def size_range(low: int, high: int) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        size = parse_size(value)
        if not low <= size <= high:
            raise ValueError(f"expected a size from {low} to {high} bytes, got {value!r}")
        return size

    return convert


def to_jitter(value: Any) -> float:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"expected a fraction from 0 to 1 (0.1 means +-10 %), got {value!r}")
    return float(value)


def to_schedule(value: Any) -> tuple[float, ...]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"expected a list of delays such as [5s, 5m, 30m], got {kind(value)}")
    delays = []
    for index, item in enumerate(value):
        try:
            delays.append(parse_duration(item))
        except ValueError as exc:
            raise ValueError(f"item {index}: {exc}") from None
    if len(delays) > 100:
        raise ValueError("at most 100 retries can be scheduled")
    return tuple(delays)


def str_list(nonempty: bool) -> Callable[[Any], tuple[str, ...]]:
    def convert(value: Any) -> tuple[str, ...]:
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v
                                                          for v in value):
            raise ValueError("expected a list of strings")
        if nonempty and not value:
            raise ValueError("must not be empty")
        return tuple(value)

    return convert


def patterns(exact: bool) -> Callable[[Any], tuple[str, ...]]:
    regex = TYPE_RE if exact else PATTERN_RE

    def convert(value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            raise ValueError(f"expected a list of event types, got {kind(value)}")
        for item in value:
            if not isinstance(item, str) or not regex.fullmatch(item):
                what = "event type" if exact else "event type or pattern such as license.*"
                raise ValueError(f"{item!r} is not a valid {what}")
        return tuple(value)

    return convert


def to_name(value: Any) -> str:
    if isinstance(value, str) and NAME_RE.fullmatch(value):
        return value
    raise ValueError(f"expected a name of letters, digits, '_', '.' or '-' "
                     f"(at most 64), got {value!r}")


def to_tenant(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and TENANT_RE.fullmatch(value):
        return value
    raise ValueError("expected a tenant id of 1 to 128 printable ASCII characters without "
                     f"spaces, got {value!r}"[:200])


def to_field_path(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and FIELD_PATH_RE.fullmatch(value):
        return value
    raise ValueError(f"expected a field name or a dotted path such as data.userId, got {value!r}")


def to_description(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {kind(value)}")
    if len(value) > 500:
        raise ValueError(f"at most 500 characters, got {len(value)}")
    if any((ord(c) < 0x20 and c not in "\t\n") or ord(c) == 0x7F for c in value):
        raise ValueError("control characters are not allowed")
    return value


def to_secrets_key(value: Any) -> str | None:
    from relay.secrets_at_rest import key_from_text

    text = to_optional_str(value)
    if text is not None:
        key_from_text(text)  # raises ValueError naming what is wrong, never the key
    return text


def to_url(value: Any) -> str:
    from urllib.parse import urlsplit

    if not isinstance(value, str):
        raise ValueError(f"expected a URL, got {kind(value)}")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        raise ValueError("a URL cannot hold spaces or control characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL with a host, got {value!r}")
    if parts.username or parts.password:
        raise ValueError("credentials in the URL are not allowed; use `headers` instead")
    if len(value) > 2048:
        raise ValueError("a URL of at most 2048 characters")
    return value


def to_headers(value: Any) -> tuple[tuple[str, str], ...]:
    if isinstance(value, tuple):
        value = dict(value)
    if not isinstance(value, Mapping):
        raise ValueError(f"expected a mapping of header names to values, got {kind(value)}")
    result = []
    for key, item in value.items():
        if not isinstance(key, str) or not _HEADER_NAME_RE.fullmatch(key):
            raise ValueError(f"{key!r} is not a valid header name")
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise ValueError(f"header {key}: expected a string value")
        text = str(item)
        if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in text):
            raise ValueError(f"header {key}: line breaks and control characters are not "
                             "allowed in a value")
        result.append((key, text))
    return tuple(result)


def to_networks(value: Any) -> tuple[Network, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        raise ValueError(f"expected a list of CIDRs such as 127.0.0.0/8, got {kind(value)}")
    networks = []
    for item in value:
        if isinstance(item, ipaddress.IPv4Network | ipaddress.IPv6Network):
            networks.append(item)
            continue
        try:
            networks.append(ipaddress.ip_network(str(item), strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not a CIDR such as 10.0.0.0/8 or ::1/128") from None
    return tuple(networks)


def to_host_names(value: Any) -> tuple[str, ...]:
    """Host names or addresses a browser may address the relay by, optionally with a port."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        raise ValueError(f"expected a list of host names such as [relay.internal], "
                         f"got {kind(value)}")
    hosts = []
    for item in value:
        parts = split_host(item) if isinstance(item, str) else None
        valid = parts is not None and (HOST_NAME_RE.fullmatch(parts[0]) is not None
                                       or is_address(parts[0]))
        if not valid:
            raise ValueError(f"{item!r} is not a host name, address or host:port "
                             "(no scheme, path or wildcard)")
        hosts.append(str(item).strip().lower())
    return tuple(hosts)


def to_listen(value: Any) -> tuple[str, int]:
    if isinstance(value, tuple):
        return value
    match = _LISTEN_RE.fullmatch(value.strip()) if isinstance(value, str) else None
    if not match or not 0 <= int(match.group(3)) <= 65535:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:8787, got {value!r}")
    return match.group(1) or match.group(2), int(match.group(3))


def format_listen(value: tuple[str, int]) -> str:
    host, port = value
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def to_secrets(value: Any) -> tuple[str, ...]:
    """One secret or a list, newest first; empty strings (an unset `${VAR:-}`) are dropped."""
    items = list(value) if isinstance(value, list | tuple) else [value]
    for index, item in enumerate(items):
        if not isinstance(item, str):
            where = f"item {index}: " if isinstance(value, list | tuple) else ""
            raise ValueError(f"{where}expected a string, got {kind(item)}")
    return tuple(item for item in items if item)


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def standard_secret_key(secret: str) -> bytes:
    """The HMAC key of a `standard` secret, as the Standard Webhooks libraries derive it.

    They strip an optional `whsec_` and base64-decode the rest, padding optional, so an
    operator can paste a receiver's existing secret in either form. Decoding is strict
    (ValueError), because the Python reference silently drops characters outside the
    alphabet while the Go one refuses them: such a secret would verify at some receivers
    only.
    """
    encoded = secret.removeprefix("whsec_").rstrip("=")
    return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)


def standard_secret_problem(secret: str) -> str | None:
    """Why `secret` cannot sign for `standard`, never quoting it; None when it can."""
    if secret != secret.strip():
        return "has leading or trailing whitespace (a newline from a file?)"
    try:
        key = standard_secret_key(secret)
    except (binascii.Error, ValueError):
        return ("is not valid: the standard scheme needs base64, optionally prefixed "
                "with whsec_ (generate one with `relay keygen`)")
    if len(key) < 16:
        return (f"is too short: the key decodes to {len(key)} bytes; the relay needs at "
                "least 16 (128 bits), below which a captured signature lets it be guessed "
                "offline (`relay keygen` makes 24)")
    return None


# -- the annotated types --------------------------------------------------------------------
# Written out as `Annotated[...]` aliases (not built by a helper) so that mypy reads them as
# types: the python type, the converter and the schema of what may be written, the serializer.


def _schedule_out(delays: tuple[float, ...]) -> list[str]:
    return [format_duration(d) for d in delays]


def _networks_out(networks: tuple[Network, ...]) -> list[str]:
    return [str(n) for n in networks]


def _headers_out(headers: tuple[tuple[str, str], ...]) -> dict[str, str]:
    return dict(headers)


def _optional(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else convert(value)


def _optional_rate_out(rate: float | None) -> str | None:
    return None if rate is None else format_rate(rate)


_JSON = "json"
Bool = Annotated[bool, BeforeValidator(to_bool, json_schema_input_type=bool)]
OptionalStr = Annotated[str | None,
                        BeforeValidator(to_optional_str, json_schema_input_type=str | None)]
Duration = Annotated[float, BeforeValidator(parse_duration, json_schema_input_type=str | float),
                     PlainSerializer(format_duration, when_used=_JSON)]
PositiveDuration = Annotated[
    float, BeforeValidator(positive(parse_duration), json_schema_input_type=str | float),
    PlainSerializer(format_duration, when_used=_JSON)]
Size = Annotated[int, BeforeValidator(parse_size, json_schema_input_type=str | int)]
HeaderBytes = Annotated[int, BeforeValidator(size_range(1024, 16 * 1024 * 1024),
                                             json_schema_input_type=str | int)]
OptionalRate = Annotated[float | None,
                         BeforeValidator(_optional(parse_rate), json_schema_input_type=str | None),
                         PlainSerializer(_optional_rate_out, when_used=_JSON)]
Jitter = Annotated[float, BeforeValidator(to_jitter, json_schema_input_type=float)]
Schedule = Annotated[tuple[float, ...],
                     BeforeValidator(to_schedule, json_schema_input_type=list[str | float]),
                     PlainSerializer(_schedule_out, when_used=_JSON)]
EventTypes = Annotated[tuple[str, ...],
                       BeforeValidator(patterns(exact=True), json_schema_input_type=list[str])]
OptionalEventTypes = Annotated[
    tuple[str, ...] | None,
    BeforeValidator(_optional(patterns(exact=True)), json_schema_input_type=list[str] | None)]
EventPatterns = Annotated[tuple[str, ...],
                          BeforeValidator(patterns(exact=False), json_schema_input_type=list[str])]
Name = Annotated[str, BeforeValidator(to_name, json_schema_input_type=str)]
Url = Annotated[str, BeforeValidator(to_url, json_schema_input_type=str)]
Headers = Annotated[tuple[tuple[str, str], ...],
                    BeforeValidator(to_headers, json_schema_input_type=dict[str, str]),
                    PlainSerializer(_headers_out, when_used=_JSON)]
Networks = Annotated[tuple[Network, ...],
                     BeforeValidator(to_networks, json_schema_input_type=list[str]),
                     PlainSerializer(_networks_out, when_used=_JSON)]
HostNames = Annotated[tuple[str, ...],
                      BeforeValidator(to_host_names, json_schema_input_type=list[str])]
Listen = Annotated[tuple[str, int], BeforeValidator(to_listen, json_schema_input_type=str),
                   PlainSerializer(format_listen, when_used=_JSON)]
Secrets = Annotated[tuple[str, ...],
                    BeforeValidator(to_secrets, json_schema_input_type=str | list[str])]
TypeFields = Annotated[tuple[str, ...],
                       BeforeValidator(str_list(nonempty=True), json_schema_input_type=list[str])]
SchemeField = Annotated[Scheme, BeforeValidator(choice(*SCHEMES), json_schema_input_type=Scheme)]
Ordering = Annotated[Literal["none", "fifo"],
                     BeforeValidator(choice("none", "fifo"),
                                     json_schema_input_type=Literal["none", "fifo"])]
LogLevel = Annotated[Literal["debug", "info", "warning", "error"],
                     BeforeValidator(choice("debug", "info", "warning", "error"),
                                     json_schema_input_type=Literal["debug", "info", "warning",
                                                                    "error"])]
LogFormat = Annotated[Literal["auto", "json", "console"],
                      BeforeValidator(choice("auto", "json", "console"),
                                      json_schema_input_type=Literal["auto", "json", "console"])]
Tenant = Annotated[str | None, BeforeValidator(to_tenant, json_schema_input_type=str | None)]
FieldPath = Annotated[str | None,
                      BeforeValidator(to_field_path, json_schema_input_type=str | None)]
Description = Annotated[str, BeforeValidator(to_description, json_schema_input_type=str)]
SecretsKey = Annotated[str | None,
                       BeforeValidator(to_secrets_key, json_schema_input_type=str | None)]
OptionalCount = Annotated[int | None,
                          BeforeValidator(_optional(int_range(1, 1_000_000)),
                                          json_schema_input_type=int | None)]
Concurrency = Annotated[int, BeforeValidator(int_range(1, 10_000), json_schema_input_type=int)]
MaxInFlight = Annotated[int, BeforeValidator(int_range(1, 1000), json_schema_input_type=int)]
MaxHeaders = Annotated[int, BeforeValidator(int_range(8, 10_000), json_schema_input_type=int)]
