"""Request id: one id per request, for the logs, the app and the client alike.

The id is the incoming ``X-Request-ID`` (the header name is an option) when
``trust_incoming`` is on and the value is a sane token (visible ASCII, no spaces, at
most ``max_length`` characters); otherwise a fresh ``uuid4().hex`` (see ``new_id``). It
is then:

- ``request.state.request_id``, and ``current_request_id``, a context variable set while
  the rest of the chain and the handler run (tasks they start inherit it), so log calls
  anywhere below see their request's id; ``RequestIdFilter`` puts it on log records as
  ``%(request_id)s``;
- the request header the app sees (an untrusted or insane incoming value is replaced,
  so a Covet or ASGI app reads the same id as the logs);
- echoed in the response header, unless the app set that header itself.

Turn ``trust_incoming`` on only when a proxy in front sets or overwrites the header:
otherwise any client chooses the id its requests are logged under.
"""

from __future__ import annotations

import logging
import os
import re
from contextvars import ContextVar
from dataclasses import dataclass

from ..app.requests import Request
from ..app.responses import Response
from ..config.fields import setting
from ..config.types import Boolean, Integer, Pattern
from .base import Handler, Middleware

__all__ = ["RequestIdFilter", "RequestIdMiddleware", "current_request_id"]

current_request_id: ContextVar[str | None] = ContextVar("covetd_request_id", default=None)
"""The id of the request being handled in this context (None outside a request)."""

_SANE = re.compile(rb"[\x21-\x7e]+")


class RequestIdMiddleware(Middleware):
    """Give each request an id; expose it to logs, the app and the client."""

    name = "request_id"

    @dataclass(frozen=True)
    class Options:
        header: str = setting(
            Pattern(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", "a header name"),
            "X-Request-ID",
            "The request and response header that carries the id.",
        )
        trust_incoming: bool = setting(
            Boolean(), False, "Keep a sane incoming id (only behind a proxy that sets it)."
        )
        max_length: int = setting(Integer(1), 200, "Longest incoming id kept, in characters.")
        echo: bool = setting(Boolean(), True, "Send the id back in the response header.")

    options: Options

    def __init__(self, app: Handler, options: Options | None = None) -> None:
        super().__init__(app, options)
        self.header_name = self.options.header.lower().encode("ascii")
        self.trust_incoming = self.options.trust_incoming
        self.echo = self.options.echo
        _tag_error_log()

    async def __call__(self, request: Request) -> Response:
        name = self.header_name
        request_id = self._incoming(request) if self.trust_incoming else None
        if request_id is None:
            request_id = new_id()
            raw_id = request_id.encode("ascii")
            _set_header(request.raw_headers, name, raw_id)
        else:
            raw_id = request_id.encode("ascii")
        vars(request.state)["request_id"] = request_id  # State is an open attribute bag
        token = current_request_id.set(request_id)
        try:
            response = await self.app(request)
        finally:
            current_request_id.reset(token)
        if self.echo:
            # headers.setdefault without the checks: the name was validated with the
            # options, and the id is visible ASCII (hex, or an incoming id that passed
            # _SANE), which encode_header would pass through unchanged.
            raw = response.raw_headers
            for header, _ in raw:
                if header == name:
                    break
            else:
                raw.append((name, raw_id))
        return response

    def _incoming(self, request: Request) -> str | None:
        if not self.options.trust_incoming:
            return None
        values = [value for name, value in request.raw_headers if name == self.header_name]
        if len(values) != 1:
            return None
        value = values[0]
        if len(value) > self.options.max_length or not _SANE.fullmatch(value):
            return None
        return value.decode("ascii")


def _set_header(raw_headers: list[tuple[bytes, bytes]], name: bytes, value: bytes) -> None:
    """Replace every ``name`` header with one (in place: the header views share the list)."""
    for header, _ in raw_headers:
        if header == name:
            raw_headers[:] = [header for header in raw_headers if header[0] != name]
            break
    raw_headers.append((name, value))


# -- ids ---------------------------------------------------------------------------------
#
# uuid4().hex is os.urandom(16) with the version and variant bits set (RFC 9562 §5.4),
# in hex. Made one at a time that is a system call and a UUID object per request; here
# the same bytes are made 256 ids at a time: one os.urandom call, the bits set by two
# translate()s over every 16th byte, one hex(). Same randomness (the kernel's CSPRNG),
# same format. The pool is per process: emptied in a forked child, so two workers
# never hand out the same ids.

_VERSION_4 = bytes((byte & 0x0F) | 0x40 for byte in range(256))  # byte 6: version 4
_VARIANT_RFC = bytes((byte & 0x3F) | 0x80 for byte in range(256))  # byte 8: 10xxxxxx
_BATCH = 256
_pool: list[str] = []


def new_id() -> str:
    """A fresh id: what ``uuid.uuid4().hex`` returns (32 hex digits, version 4)."""
    if not _pool:
        raw = bytearray(os.urandom(16 * _BATCH))
        raw[6::16] = raw[6::16].translate(_VERSION_4)
        raw[8::16] = raw[8::16].translate(_VARIANT_RFC)
        text = raw.hex()
        _pool.extend([text[start : start + 32] for start in range(0, len(text), 32)])
    return _pool.pop()


os.register_at_fork(after_in_child=_pool.clear)


class RequestIdFilter(logging.Filter):
    """Sets ``record.request_id`` (``"-"`` outside a request) for log formats."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get() or "-"
        return True


class _InRequestId(logging.Filter):
    """Sets ``record.request_id`` only inside a request (the JSON error log then has
    the field exactly on the lines a request caused)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = current_request_id.get()
        if request_id is not None:
            record.request_id = request_id
        return True


def _tag_error_log() -> None:
    """Put the request id on covetd's error log lines (once per process)."""
    for handler in logging.getLogger("covetd").handlers:
        if not any(isinstance(f, _InRequestId) for f in handler.filters):
            handler.addFilter(_InRequestId())
