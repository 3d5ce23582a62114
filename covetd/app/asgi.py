"""Covet as an ASGI 3 application, so any ASGI server (uvicorn, granian...) can run it.

covetd's own engine does not come this way: it calls ``Covet.handle`` directly.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .datastructures import Address
from .exceptions import ClientDisconnect
from .requests import Request
from .responses import Response

if TYPE_CHECKING:
    from .application import Covet

__all__ = ["serve_asgi"]

error_log = logging.getLogger("covetd.error")

Message = dict[str, Any]
# RFC 3986 pchar minus percent-encoded bytes, plus "/": what a path may hold unquoted.
_PATH_SAFE = "/:@!$&'()*+,;="
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class _ReceiveChannel:
    """The request body read through ASGI ``receive``."""

    __slots__ = ("_complete", "_disconnected", "_receive")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._complete = False
        self._disconnected = False

    async def read_chunk(self) -> bytes:
        while not self._complete:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self._disconnected = True
                raise ClientDisconnect()
            self._complete = not message.get("more_body", False)
            body: bytes = message.get("body", b"")
            if body:
                return body
        return b""

    def is_disconnected(self) -> bool:
        return self._disconnected


def request_from_scope(scope: dict[str, Any], receive: Receive) -> Request:
    client = scope.get("client")
    server = scope.get("server")
    raw_path = scope.get("raw_path") or quote(scope["path"], safe=_PATH_SAFE).encode("ascii")
    return Request.build(
        scope["method"],
        raw_path,
        scope.get("query_string", b""),
        scope.get("http_version", "1.1"),
        [(bytes(name).lower(), bytes(value)) for name, value in scope.get("headers", ())],
        scheme=scope.get("scheme", "http"),
        client=Address(client[0], client[1]) if client else None,
        server=Address(server[0], server[1] or 0) if server else None,
        root_path=scope.get("root_path", ""),
        channel=_ReceiveChannel(receive),
    )


async def send_response_asgi(response: Response, send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": response.raw_headers,
        }
    )
    if not response.streaming:
        await send({"type": "http.response.body", "body": response.body})
        return
    iterator = response.body_iterator  # type: ignore[attr-defined]
    try:
        async for chunk in iterator:
            data = chunk.encode("utf-8") if isinstance(chunk, str) else bytes(chunk)
            await send({"type": "http.response.body", "body": data, "more_body": True})
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()
    await send({"type": "http.response.body", "body": b""})


async def _lifespan(app: Covet, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "lifespan.startup":
            try:
                await app.startup()
            except Exception as exc:
                error_log.exception("application startup failed")
                await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif kind == "lifespan.shutdown":
            try:
                await app.shutdown()
            except Exception as exc:
                await send({"type": "lifespan.shutdown.failed", "message": repr(exc)})
                return
            await send({"type": "lifespan.shutdown.complete"})
            return


async def serve_asgi(app: Covet, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    kind = scope["type"]
    if kind == "http":
        request = request_from_scope(scope, receive)
        response = await app.handle(request)
        await send_response_asgi(response, send)
    elif kind == "lifespan":
        await _lifespan(app, receive, send)
    elif kind == "websocket":
        await send({"type": "websocket.close", "code": 1000})
    else:
        raise RuntimeError(f"unsupported ASGI scope type {kind!r}")
