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


class _AsgiWebSocketChannel:
    """A ``WebSocketChannel`` over an ASGI server's ``websocket.*`` events."""

    def __init__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self.offered_subprotocols: list[str] = list(scope.get("subprotocols", ()))
        self.close_code: int | None = None
        self.close_reason = ""
        self._outbox: list[str | bytes] = []

    async def start(self) -> None:
        message = await self._receive()
        if message["type"] != "websocket.connect":
            raise RuntimeError(f"expected websocket.connect, got {message['type']!r}")

    async def accept(self, subprotocol: str | None, headers: list[tuple[bytes, bytes]]) -> None:
        await self._send(
            {"type": "websocket.accept", "subprotocol": subprotocol, "headers": headers}
        )

    async def receive(self) -> str | bytes:
        from .websockets import WebSocketDisconnect

        if self.close_code is not None:
            raise WebSocketDisconnect(self.close_code, self.close_reason)
        message = await self._receive()
        if message["type"] == "websocket.disconnect":
            self.close_code = message.get("code", 1005)
            self.close_reason = message.get("reason") or ""
            raise WebSocketDisconnect(self.close_code, self.close_reason)
        text = message.get("text")
        return text if text is not None else bytes(message.get("bytes") or b"")

    async def send(self, data: str | bytes) -> None:
        from .websockets import WebSocketDisconnect

        if self.close_code is not None:
            raise WebSocketDisconnect(self.close_code, self.close_reason)
        key = "text" if isinstance(data, str) else "bytes"
        try:
            await self._send({"type": "websocket.send", key: data})
        except OSError:  # ASGI 2.4: the server's error for a closed connection
            self.close_code = self.close_code or 1006
            raise WebSocketDisconnect(self.close_code) from None

    async def close(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code = code
            await self._send({"type": "websocket.close", "code": code, "reason": reason})

    def send_nowait(self, data: str | bytes) -> bool:
        """Broadcasts under another server: sent from a task of their own."""
        import asyncio

        task = asyncio.get_running_loop().create_task(self.send(data))
        task.add_done_callback(_ignore_disconnect)
        return True

    def close_nowait(self, code: int, reason: str) -> None:
        import asyncio

        asyncio.get_running_loop().create_task(self.close(code, reason))


def _ignore_disconnect(task: Any) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: a member that left is not an error


async def _serve_websocket(app: Covet, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """Run the app's WebSocket route under another ASGI server: an HTTP refusal goes out
    as a denial response where the server supports it, else as close 1008 (uvicorn
    turns a close before accept into a 403)."""
    channel = _AsgiWebSocketChannel(scope, receive, send)
    await channel.start()
    request = request_from_scope({**scope, "method": "GET"}, receive)
    request.websocket_channel = channel
    response = await app.handle(request)
    if response.status_code == 101:
        return  # the session ran and ended
    if "websocket.http.response" in scope.get("extensions", {}):
        await send(
            {
                "type": "websocket.http.response.start",
                "status": response.status_code,
                "headers": response.raw_headers,
            }
        )
        await send({"type": "websocket.http.response.body", "body": response.body})
    else:
        await send({"type": "websocket.close", "code": 1008})


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
        await _serve_websocket(app, scope, receive, send)
    else:
        raise RuntimeError(f"unsupported ASGI scope type {kind!r}")
