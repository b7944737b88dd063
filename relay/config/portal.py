"""The value types of relay.yaml's `portal:` section (`models.PortalConfig`).

They live here rather than in `values.py` because nothing else
uses them. Every one is checked whole (`fullmatch`): the colour and the frame
ancestors are written into a stylesheet and a Content-Security-Policy header,
where a stray `;` or `}` would be an injection.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

from relay.config.values import kind, to_url
from relay.units import format_duration, parse_duration

__all__ = [
    "ACCENT_RE",
    "FRAME_SOURCE_RE",
    "MAX_LINK_TTL_S",
    "MAX_SESSION_TTL_S",
    "Accent",
    "BaseUrl",
    "FrameAncestors",
    "LinkTtl",
    "SessionTtl",
    "Title",
]

ACCENT_RE = re.compile(r"#(?:[0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})")
# A CSP source for frame-ancestors: 'self', or a scheme and host (a leading *. allowed), port.
FRAME_SOURCE_RE = re.compile(
    r"'self'|https?://(?:\*\.)?[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*(?::[0-9]{1,5})?")
_TITLE_LIMIT = 80
MAX_LINK_TTL_S = 3600.0  # a link is for opening now, not for sending around
MAX_SESSION_TTL_S = 86400.0


def to_accent(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and ACCENT_RE.fullmatch(value):
        return value.lower()
    raise ValueError(f"expected a colour as #rrggbb or #rgb, got {value!r}")


def to_frame_ancestors(value: Any) -> tuple[str, ...]:
    items = value.split() if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError(f"expected a list of origins such as https://app.example.com, "
                         f"got {kind(value)}")
    for index, item in enumerate(items):
        if not isinstance(item, str) or not FRAME_SOURCE_RE.fullmatch(item):
            raise ValueError(f"item {index}: expected 'self' or an origin such as "
                             f"https://app.example.com or https://*.example.com, got {item!r}")
    return tuple(items)


def to_title(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {kind(value)}")
    if not value.strip() or len(value) > _TITLE_LIMIT:
        raise ValueError(f"expected 1 to {_TITLE_LIMIT} characters, got {len(value)}")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("control characters are not allowed")
    return value.strip()


def to_base_url(value: Any) -> str | None:
    if value is None:
        return None
    url = to_url(value)
    if "?" in url or "#" in url:
        raise ValueError(f"expected a base URL without query or fragment, got {value!r}")
    return url.rstrip("/")


def duration_up_to(limit: float) -> Callable[[Any], float]:
    def convert(value: Any) -> float:
        seconds = parse_duration(value)
        if not 0 < seconds <= limit:
            raise ValueError(f"expected a duration above zero and at most "
                             f"{format_duration(limit)}, got {value!r}")
        return seconds

    return convert


_JSON = "json"
Accent = Annotated[str | None, BeforeValidator(to_accent, json_schema_input_type=str | None)]
FrameAncestors = Annotated[tuple[str, ...],
                           BeforeValidator(to_frame_ancestors, json_schema_input_type=list[str])]
Title = Annotated[str, BeforeValidator(to_title, json_schema_input_type=str)]
BaseUrl = Annotated[str | None, BeforeValidator(to_base_url, json_schema_input_type=str | None)]
LinkTtl = Annotated[float, BeforeValidator(duration_up_to(MAX_LINK_TTL_S),
                                           json_schema_input_type=str | float),
                    PlainSerializer(format_duration, when_used=_JSON)]
SessionTtl = Annotated[float, BeforeValidator(duration_up_to(MAX_SESSION_TTL_S),
                                              json_schema_input_type=str | float),
                       PlainSerializer(format_duration, when_used=_JSON)]

