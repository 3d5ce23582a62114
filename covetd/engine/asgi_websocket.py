"""ASGI ``websocket`` scopes: an ASGI app's WebSocket on the engine's session.

The app's ``websocket.*`` messages drive the same ``WebSocketChannel`` a Covet
handler's ``WebSocket`` uses, and the result is what a Covet handler's would be: an
HTTP ``Response`` when the app refused the handshake (``websocket.close`` before
accepting: 403; the ``websocket.http.response`` denial extension: the app's own
response; returning or raising before accepting: 500), else the ``WebSocketEnded``
marker. So the runner without middleware and the middleware chain share this code,
and middleware sees an ASGI WebSocket exactly as it sees a Covet one.
"""

from __future__ import annotations

import logging
from typing import Any

from ..app.requests import Request
from ..app.responses import PlainTextResponse, Response
from ..app.websockets import WebSocketChannel, WebSocketDisconnect, WebSocketEnded
from .asgi_common import (
    ASGI_VERSION,
    AsgiApp,
    ClientDisconnected,
    Message,
    add_middleware_results,
    response_headers,
)

__all__ = ["serve_asgi_websocket"]

error_log = logging.getLogger("covetd.error")

EXTENSIONS: dict[str, dict[str, Any]] = {"websocket.http.response": {}}
_CONNECT: Message = {"type": "websocket.connect"}
NORMAL_CLOSURE = 1000
INTERNAL_ERROR = 1011


class _WebSocketExchange:
    """``receive`` and ``send`` for one ASGI WebSocket; ``result()`` once the app ends."""

    def __init__(self, request: Request, channel: WebSocketChannel) -> None:
        self.request = request
        self.channel = channel
        self.connect_sent = False
        self.accepted = False
        self.closed = False  # by the app (websocket.close) or by the client
        self.refused = False  # websocket.close before accept
        self.denial_status = 0
        self.denial_headers: list[tuple[bytes, bytes]] = []
        self.denial_body = bytearray()
        self.denial_complete = False

    async def receive(self) -> Message:
        if not self.connect_sent:
            self.connect_sent = True
            return _CONNECT
        if self.closed or (not self.accepted and self.denial_status):
            return self._disconnect()
        try:
            data = await self.channel.receive()
        except WebSocketDisconnect:
            self.closed = True
            return self._disconnect()
        if isinstance(data, str):
            return {"type": "websocket.receive", "text": data, "bytes": None}
        return {"type": "websocket.receive", "bytes": data, "text": None}

    def _disconnect(self) -> Message:
        channel = self.channel
        return {
            "type": "websocket.disconnect",
            "code": channel.close_code or NORMAL_CLOSURE,
            "reason": getattr(channel, "close_reason", "") or "",
        }

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "websocket.send":
            await self._send_message(message)
        elif kind == "websocket.accept":
            await self._accept(message)
        elif kind == "websocket.close":
            await self._close(message)
        elif kind == "websocket.http.response.start":
            self._denial_start(message)
        elif kind == "websocket.http.response.body":
            self._denial_body(message)
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r}")

    async def _send_message(self, message: Message) -> None:
        if not self.accepted:
            raise RuntimeError("websocket.send before websocket.accept")
        if self.closed:
            raise ClientDisconnected("the WebSocket is closed")
        text = message.get("text")
        data = text if text is not None else message.get("bytes")
        if not isinstance(data, str | bytes):
            raise RuntimeError("websocket.send needs 'text' (str) or 'bytes' (bytes)")
        try:
            await self.channel.send(data)
        except WebSocketDisconnect:
            self.closed = True
            raise ClientDisconnected("the WebSocket is closed") from None

    async def _accept(self, message: Message) -> None:
        if self.accepted or self.refused or self.denial_status:
            raise RuntimeError("websocket.accept after the handshake was answered")
        subprotocol = message.get("subprotocol")
        if subprotocol is not None and subprotocol not in self.channel.offered_subprotocols:
            raise RuntimeError(f"subprotocol {subprotocol!r} was not offered by the client")
        headers, _ = response_headers(message.get("headers", ()))
        try:
            await self.channel.accept(subprotocol, headers)
        except WebSocketDisconnect:
            self.closed = True
            raise ClientDisconnected("the client left during the handshake") from None
        self.accepted = True

    async def _close(self, message: Message) -> None:
        if not self.accepted:
            if self.denial_status:
                raise RuntimeError("websocket.close during a denial response")
            self.refused = self.closed = True
            return
        if self.closed:
            return
        self.closed = True
        reason = message.get("reason") or ""
        await self.channel.close(int(message.get("code", NORMAL_CLOSURE)), reason)

    def _denial_start(self, message: Message) -> None:
        if self.accepted or self.refused or self.denial_status:
            raise RuntimeError("websocket.http.response.start after the handshake was answered")
        status = message["status"]
        if type(status) is not int or not 200 <= status <= 599 or status == 101:
            raise RuntimeError(f"invalid denial status {status!r}")
        self.denial_status = status
        self.denial_headers, _ = response_headers(message.get("headers", ()))

    def _denial_body(self, message: Message) -> None:
        if not self.denial_status or self.denial_complete:
            raise RuntimeError("websocket.http.response.body out of order")
        self.denial_body += message.get("body", b"")
        self.denial_complete = not message.get("more_body", False)

    async def result(self, failure: BaseException | None) -> Response:
        """What the engine answers once the app is done."""
        if self.accepted:
            if failure is not None and not self.closed:
                await self.channel.close(INTERNAL_ERROR, "internal error")
            elif not self.closed:
                await self.channel.close(NORMAL_CLOSURE, "")
            return WebSocketEnded()
        if self.denial_status and self.denial_complete and failure is None:
            return self._denial()
        if self.refused and failure is None:
            return PlainTextResponse("Forbidden\n", 403)
        if failure is None:
            error_log.error(
                "ASGI application returned without answering the WebSocket handshake for %s",
                self.request.request_line,
            )
        return PlainTextResponse("Internal Server Error\n", 500)

    def _denial(self) -> Response:
        body = bytes(self.denial_body)
        headers = [
            (name, value) for name, value in self.denial_headers if name != b"content-length"
        ]
        headers.append((b"content-length", b"%d" % len(body)))
        response: Response = object.__new__(Response)
        response.status_code = self.denial_status
        response.body = body
        response.raw_headers = headers
        return response


async def serve_asgi_websocket(
    app: AsgiApp, request: Request, channel: WebSocketChannel, state: dict[str, Any]
) -> Response:
    """Run ``app`` on one WebSocket upgrade request; the Response the engine answers."""
    exchange = _WebSocketExchange(request, channel)
    scope = {
        "type": "websocket",
        "asgi": ASGI_VERSION,
        "http_version": request.http_version,
        "scheme": "wss" if request.scheme == "https" else "ws",
        "server": request.server,
        "client": request.client,
        "root_path": request.root_path,
        "path": request.path,
        "raw_path": request.raw_path,
        "query_string": request.query_string,
        "headers": request.raw_headers,
        "subprotocols": list(channel.offered_subprotocols),
        "state": state.copy(),
        "extensions": EXTENSIONS,
    }
    add_middleware_results(scope, request)
    failure: BaseException | None = None
    try:
        await app(scope, exchange.receive, exchange.send)
    except ClientDisconnected:
        pass  # the client left; the app noticed the usual way
    except Exception as exc:
        failure = exc
        error_log.error(
            "Exception in ASGI WebSocket application for %s", request.request_line, exc_info=exc
        )
    return await exchange.result(failure)
