"""The native path: a Covet app's ``handle(request) -> Response``, no ASGI dicts."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from ..app.requests import Request
from ..app.responses import PlainTextResponse, Response
from .cycle import RequestCycle

__all__ = ["NativeRunner", "send_response"]

error_log = logging.getLogger("covetd.error")


def internal_error() -> Response:
    return PlainTextResponse("Internal Server Error\n", 500)


def _failed(cycle: RequestCycle, what: str) -> None:
    """A response could not be written: 500 if nothing was sent yet, else close."""
    error_log.exception("%s for %s", what, cycle.request_line())
    if cycle.response_started:
        cycle.abort("response failed after its head was sent")
    else:
        cycle.write_response(internal_error())


async def send_response(cycle: RequestCycle, response: Response) -> None:
    if response.streaming:
        try:
            await cycle.send_streaming(response)
        except Exception:
            _failed(cycle, "Exception while streaming the response")
    else:
        try:
            cycle.write_response(response)
        except Exception:
            _failed(cycle, "Invalid response")


class NativeRunner:
    """Runs each request of a connection through ``handle`` and writes the result."""

    __slots__ = ("_handle",)

    def __init__(self, handle: Callable[[Request], Awaitable[Response]]) -> None:
        self._handle = handle

    async def __call__(self, cycle: RequestCycle) -> None:
        try:
            response = await self._handle(cycle.request)
        except Exception:
            error_log.exception("Exception in handler for %s", cycle.request_line())
            response = internal_error()
        if response.streaming:
            await send_response(cycle, response)
            return
        try:  # inlined send_response: the common case costs no extra coroutine
            cycle.write_response(response)
        except Exception:
            _failed(cycle, "Invalid response")
