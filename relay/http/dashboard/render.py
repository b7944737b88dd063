"""Templates and the small formatting rules the dashboard's pages share.

The templates render the admin API's own JSON (the dicts `relay.http.serialization`
builds), so the page and `GET /v1/...` can never disagree; the filters here
turn its ISO 8601 times into "in 4m" / "2m ago" and its bodies into readable
text. Autoescaping is on for every template: payloads and response excerpts
come from outside and must only ever be text.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2

from relay import __version__
from relay.http.json_body import MAX_DEPTH, nests_deeper
from relay.models import DeliveryStatus
from relay.timefmt import absolute, relative

__all__ = [
    "STATIC_DIR",
    "TEMPLATE_DIR",
    "absolute",
    "environment",
    "pretty_body",
    "query_url",
    "relative",
    "sendable",
]

_HTTP_DIR = Path(__file__).resolve().parent.parent
TEMPLATE_DIR = _HTTP_DIR / "templates"
STATIC_DIR = _HTTP_DIR / "static"


def duration(ms: float | None) -> str:
    if ms is None:
        return "—"
    if ms < 1:
        return "<1 ms"
    if ms < 1000:
        return f"{ms:.0f} ms" if ms >= 10 else f"{ms:.1f} ms"
    return f"{ms / 1000:.2f} s"


def pretty_json(value: Any) -> str:
    """JSON indented for reading; ValueError when the page could not carry it.

    Infinity is not JSON, and a lone surrogate (parsed from `"\\ud800"`) would
    fail the whole page when it is encoded as UTF-8, so both are refused here
    rather than shown wrong or crashing the page.
    """
    text = json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False)
    text.encode("utf-8")  # UnicodeEncodeError, a ValueError, on a lone surrogate
    return text


def pretty_body(text: str | None) -> str:
    """A response excerpt, re-indented when it is JSON; as received otherwise.

    Receivers answer anything: JSON that does not survive a round trip
    (`1e400`, a lone surrogate, nesting deep enough to exhaust the recursion
    limit) is shown as received, like any text.
    """
    if not text:
        return ""
    try:
        if nests_deeper(text.encode("utf-8"), MAX_DEPTH):
            return text
        return pretty_json(json.loads(text))
    except (ValueError, RecursionError):
        return text


def sendable(value: Any) -> Any:
    """What a template prints, made encodable as UTF-8 (Jinja's `finalize`).

    One lone surrogate anywhere in a page makes sending it fail; written as its
    escape (`\\ud800`) it stays visible and the page renders. Markup stays
    Markup: it was escaped already, and the escape adds no markup.
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return type(value)(value.encode("utf-8", "backslashreplace").decode("utf-8"))
    return value


def path_segment(value: str) -> str:
    """An endpoint name or event id inside a URL path (ids may hold `/`, `?`, `#`)."""
    return quote(value, safe="")


def query_url(path: str, params: dict[str, Any]) -> str:
    """`path?k=v...` without empty values, so shared links stay short."""
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(kept)}" if kept else path


def number(value: int) -> str:
    return f"{value:,}".replace(",", "\u202f")  # narrow no-break space: 12 345


@cache
def _static_version(name: str) -> str:
    digest = hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:10]
    return f"{__version__}-{digest}"


def static_url(name: str) -> str:
    """A static file's URL with a content hash, so a new release is never served stale."""
    return f"/ui/static/{name}?v={_static_version(name)}"


def environment() -> jinja2.Environment:
    """The Jinja2 environment: autoescape on everywhere, undefined names are errors."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=sendable,
    )
    env.filters.update(
        rel=relative,
        abs=absolute,
        duration=duration,
        pretty_json=pretty_json,
        pretty_body=pretty_body,
        seg=path_segment,
        num=number,
    )
    env.globals.update(
        static=static_url,
        query_url=query_url,
        version=__version__,
        # the order an operator reads a queue in: waiting, in flight, retrying, held, done
        delivery_states=[DeliveryStatus.PENDING.value, DeliveryStatus.DELIVERING.value,
                         DeliveryStatus.SCHEDULED.value, DeliveryStatus.HELD.value,
                         DeliveryStatus.FAILED.value, DeliveryStatus.DELIVERED.value],
        endpoint_states=["ok", "error", "paused", "disabled"],
    )
    return env
