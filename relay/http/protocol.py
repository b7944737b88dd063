"""uvicorn's httptools connection, with a bound on the size of a request's head.

llhttp has no limit of its own on the request line and headers, and httptools
gathers a header's value in memory until it ends: four connections sending
32 MiB headers took the relay from 52 to 247 MB, and an 8 MiB header was
answered 202. Here the head (request line and headers) is counted as it
arrives, and a request whose head passes `limits.max_header_bytes`, or that
sends more than `limits.max_headers` header lines, is answered 431 and its
connection closed, before the app sees it, so before any token is checked.
The limits are read from the running config, so a reload applies them to
the next request.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from relay.config import LimitsConfig

__all__ = ["bounded_protocol"]

_REASON = b"Request Header Fields Too Large"


class _HeadTooLarge(Exception):
    """Raised from a parser callback; httptools turns it into a parser error."""


class BoundedHeadProtocol(HttpToolsProtocol):
    """See the module docstring; `limits` is set on the subclass `bounded_protocol` makes."""

    limits: Callable[[], LimitsConfig]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = False
        self._head_bytes = 0  # bytes received since the request began, while in its head
        self._head_lines = 0
        self._refusal: str | None = None

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            return  # answered 431; the connection is closing
        super().data_received(data)
        if self._in_head and self._refusal is None:
            # The head is still incomplete after this chunk: it all counts.
            self._head_bytes += len(data)
            limit = self.limits().max_header_bytes
            if self._head_bytes > limit:
                self._refuse(f"the request line and headers are over {limit} bytes "
                             "(limits.max_header_bytes)")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0
        self._head_lines = 0

    def on_url(self, url: bytes) -> None:
        self._head_bytes += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        limits = self.limits()
        self._head_lines += 1
        self._head_bytes += len(name) + len(value) + 4
        if self._head_lines > limits.max_headers:
            self._refusal = (f"the request has more than {limits.max_headers} header lines "
                             "(limits.max_headers)")
            raise _HeadTooLarge
        if self._head_bytes > limits.max_header_bytes:
            self._refusal = (f"the request line and headers are over "
                             f"{limits.max_header_bytes} bytes (limits.max_header_bytes)")
            raise _HeadTooLarge
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a parser error; ours when the error was a bound we raised."""
        if self._refusal is None:
            super().send_400_response(msg)
            return
        refusal, self._refusal = self._refusal, None
        self._refuse(refusal)

    def _refuse(self, detail: str) -> None:
        self._refusal = detail
        self._in_head = False
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request behind one still being answered: a status line
            # now would land inside that answer, so the connection just ends.
            self.transport.close()
            return
        body = json.dumps({
            "type": "urn:relay:problem:headers-too-large",
            "title": _REASON.decode(),
            "status": 431,
            "detail": detail,
        }).encode()
        self.transport.write(
            b"HTTP/1.1 431 " + _REASON + b"\r\n"
            b"content-type: application/problem+json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + body)
        self.transport.close()


def bounded_protocol(limits: Callable[[], LimitsConfig]) -> type[BoundedHeadProtocol]:
    """The protocol class to give uvicorn (`http=`), reading its limits from `limits()`."""
    return type("RelayHttpProtocol", (BoundedHeadProtocol,), {"limits": staticmethod(limits)})
