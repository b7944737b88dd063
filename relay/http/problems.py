"""RFC 9457 problem details: the one error format of every HTTP answer.

A problem names what to fix in `detail`; `type` is a stable URN per kind of
problem that scripts can switch on.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["Problem", "crash_response", "problem_response"]

_TITLES = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 409: "Conflict", 413: "Content Too Large",
    415: "Unsupported Media Type", 422: "Unprocessable Content", 500: "Internal Server Error",
    503: "Service Unavailable",
}


class Problem(Exception):
    """Raised by a route to answer with a problem document."""

    def __init__(self, status: int, slug: str, detail: str, *,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra

    def response(self, instance: str | None = None) -> Response:
        return problem_response(self.status, self.slug, self.detail, headers=self.headers,
                                instance=instance, **self.extra)


def problem_response(status: int, slug: str, detail: str, *,
                     headers: dict[str, str] | None = None, instance: str | None = None,
                     **extra: Any) -> Response:
    body: dict[str, Any] = {
        "type": f"urn:relay:problem:{slug}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return Response(json.dumps(body), status_code=status, headers=headers,
                    media_type="application/problem+json")


async def handle_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return exc.response(request.url.path)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 answers, as problem documents too."""
    assert isinstance(exc, HTTPException)
    slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
    detail = exc.detail if exc.detail != _TITLES.get(exc.status_code) else {
        404: f"no route for {request.method} {request.url.path}",
        405: f"{request.method} is not allowed on {request.url.path}",
    }.get(exc.status_code, str(exc.detail))
    return problem_response(exc.status_code, slug, str(detail), headers=dict(exc.headers or {}),
                            instance=request.url.path)


def crash_response(path: str, exc: Exception) -> Response:
    """A bug, not bad input: log it with its traceback, answer without one."""
    import structlog

    structlog.get_logger("relay.http").error("request_crashed", path=path, exc_info=exc)
    return problem_response(500, "internal-error",
                            "the relay failed to handle this request; the error is logged",
                            instance=path)


async def handle_crash(request: Request, exc: Exception) -> Response:
    """Starlette's handler for what a route did not catch."""
    return crash_response(request.url.path, exc)
