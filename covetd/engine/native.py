"""The native path: a Covet app's ``handle(request) -> Response``, no ASGI dicts."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from ..app.requests import Request
from ..app.responses import Response
from .cycle import RequestCycle

__all__ = ["NativeRunner"]


class NativeRunner:
    """Runs each request through ``handle`` on the connection's driver; the driver
    reports the Response to the cycle (no coroutine of its own per request)."""

    __slots__ = ("_handle",)

    def __init__(self, handle: Callable[[Request], Coroutine[Any, Any, Response]]) -> None:
        self._handle = handle

    def __call__(self, cycle: RequestCycle) -> None:
        cycle.conn.driver.start(self._handle(cycle.request), cycle.respond, cycle.handler_failed)
