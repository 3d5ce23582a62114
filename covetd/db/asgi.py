"""``DatabaseUnavailable`` for ASGI frameworks (Starlette, FastAPI).

A Covet app answers ``DatabaseUnavailable`` by itself (it is an ``HTTPException``).
Starlette does not know covetd's exception, so register this handler for it::

    app = Starlette(routes=..., exception_handlers={DatabaseUnavailable: unavailable_handler})

It returns a small ASGI response (Starlette sends whatever ASGI callable a handler
returns): 503, ``Retry-After``, ``{"detail": ...}`` as JSON, like a Covet app.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .errors import DatabaseUnavailable

__all__ = ["unavailable_handler"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class _ErrorResponse:
    __slots__ = ("body", "headers", "status")

    def __init__(self, error: DatabaseUnavailable) -> None:
        self.status = error.status_code
        self.body = json.dumps({"detail": error.detail}, separators=(",", ":")).encode()
        self.headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self.body)).encode()),
            *((k.lower().encode(), v.encode()) for k, v in (error.headers or {}).items()),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


async def unavailable_handler(request: Any, error: Exception) -> _ErrorResponse:
    """A Starlette/FastAPI exception handler for ``DatabaseUnavailable``."""
    if not isinstance(error, DatabaseUnavailable):
        raise error
    return _ErrorResponse(error)
