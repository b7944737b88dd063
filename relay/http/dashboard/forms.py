"""HTML forms: reading a post, and turning an endpoint form into the API's body and back.

The dashboard and the tenant portal create and change endpoints through the
operations `POST /v1/endpoints` and `PATCH /v1/endpoints/{name}` call
(`relay.http.managed_endpoints`), so a form is only another spelling of the
JSON body: lists are written one item per line or comma, headers as
`Name: value` lines, and what the API answers in `errors` is put back beside
the field it names, word for word.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request

from relay.http.dashboard.context import Refused
from relay.http.problems import Problem

__all__ = [
    "FORM_LIMIT_BYTES",
    "OPERATOR_FIELDS",
    "PORTAL_FIELDS",
    "FormErrors",
    "endpoint_body",
    "field_errors",
    "form_values",
    "read_form",
]

FORM_LIMIT_BYTES = 16 * 1024
MAX_FIELDS = 256  # an event catalog's checkboxes, well within the size limit
# What an operator's form holds, in the order it shows them.
OPERATOR_FIELDS = ("name", "url", "events", "filter", "tenant", "description", "signature",
                   "enabled", "allow_http", "headers", "max_in_flight", "rate_limit", "timeout",
                   "retry_schedule", "retry_client_errors", "ordering", "disable_after")
# What a tenant may set on its own endpoints; the rest stays as the operator's defaults.
PORTAL_FIELDS = ("url", "events", "description", "enabled")
_LISTS = frozenset({"events", "retry_schedule"})
_FLAGS = {"enabled": True, "allow_http": False, "retry_client_errors": True}  # and defaults
_SPLIT = re.compile(r"[\s,]+")
_HEADER_LINE = re.compile(r"([^:\s]+)\s*:\s*(.*)")
_FIELD_KEY = re.compile(r"[A-Za-z_]+")

FormErrors = dict[str, list[str]]  # field -> messages; "" for those that name no field


async def read_form(request: Request) -> dict[str, str]:
    """A small urlencoded form body; a field sent more than once (checkboxes) is joined by
    newlines, so a second `csrf` can only spoil the token. {} when empty."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_LIMIT_BYTES:
            raise Refused(413, "Form too large", "This form is larger than any the "
                          "dashboard sends.")
    if not body:
        return {}
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise Refused(415, "Unsupported form", "Dashboard actions are HTML form posts "
                      "(application/x-www-form-urlencoded); scripts should use the admin API.")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True,
                          max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, "Bad form", "The form could not be read.") from None
    return {name: "\n".join(values) for name, values in fields.items()}


def _headers(text: str) -> tuple[dict[str, str], list[str]]:
    headers: dict[str, str] = {}
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = _HEADER_LINE.fullmatch(line.strip())
        if match is None:
            problems.append(f"line {number}: write each header as `Name: value`")
            continue
        headers[match.group(1)] = match.group(2)
    return headers, problems


def endpoint_body(form: Mapping[str, str], fields: Iterable[str]) -> tuple[dict[str, Any],
                                                                          FormErrors]:
    """The API body a form says, each of `fields` set or None (its default); and what the
    form itself got wrong before the API could read it (a header line without a colon)."""
    body: dict[str, Any] = {}
    errors: FormErrors = {}
    for name in fields:
        raw = form.get(name, "")
        if name in _FLAGS:
            body[name] = any(v in ("true", "on") for v in raw.split("\n"))  # hidden false, box
        elif name in _LISTS:
            items = [item for item in _SPLIT.split(raw) if item]
            body[name] = items or None
        elif name == "headers":
            headers, problems = _headers(raw)
            body[name] = headers or None
            if problems:
                errors[name] = problems
        else:
            body[name] = raw.strip() or None
    return body, errors


def field_errors(problem: Problem, known: Iterable[str]) -> FormErrors:
    """The API's `errors` by form field (`retry_schedule[2]` is `retry_schedule`'s); a
    problem without a list, or about a field the form does not show, goes under ""."""
    shown = set(known)
    errors: FormErrors = {}
    listed = problem.extra.get("errors")
    if not isinstance(listed, list):
        field = problem.extra.get("field")
        errors[field if field in shown else ""] = [problem.detail]
        return errors
    for item in listed:
        match = _FIELD_KEY.match(str(item.get("field", "")))
        key = match.group(0) if match and match.group(0) in shown else ""
        message = str(item.get("message", ""))
        errors.setdefault(key, []).append(message if key else f"{item.get('field')}: {message}")
    return errors


def form_values(spec: Mapping[str, Any], fields: Iterable[str]) -> dict[str, str]:
    """What an edit form shows: the fields its creator gave, written as the form takes them.

    The stored fields rather than the resolved settings, so that saving the
    form unchanged does not pin what the endpoint inherits from `delivery`.
    """
    values: dict[str, str] = {}
    for name in fields:
        value = spec.get(name)
        if name in _FLAGS:
            flag = _FLAGS[name] if value is None else value in (True, "true", "yes", "on", "1")
            values[name] = "true" if flag else "false"
        elif value is None:
            values[name] = ""
        elif isinstance(value, list | tuple):
            values[name] = "\n".join(str(v) for v in value)
        elif isinstance(value, dict):
            values[name] = "\n".join(f"{k}: {v}" for k, v in value.items())
        else:
            values[name] = str(value)
    return values
