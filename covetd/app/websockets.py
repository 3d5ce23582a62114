"""The WebSocket a handler receives (``@app.websocket("/path")``).

    @app.websocket("/echo")
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        async for message in ws:
            await ws.send_text(message if isinstance(message, str) else message.hex())

A handler may refuse the connection before accepting it: ``return`` a ``Response``
(or raise ``HTTPException``) and the client gets that HTTP response instead of the
upgrade; a handler that returns without accepting gets a 403.

The engine provides the ``WebSocketChannel`` (framing, pings, backpressure, close
handshake); this class is only the application's side of it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from .datastructures import URL, Address, Headers, QueryParams
from .responses import Response

if TYPE_CHECKING:
    from .requests import Request

__all__ = [
    "WebSocket",
    "WebSocketChannel",
    "WebSocketDisconnect",
    "WebSocketEnded",
    "WebSocketState",
]


class WebSocketDisconnect(Exception):
    """The connection is closed (by the client, or because of a protocol error)."""

    def __init__(self, code: int = 1000, reason: str = "") -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


class WebSocketEnded(Response):
    """What a finished WebSocket session answers: the engine writes nothing for it
    (the handshake and the frames went out on the session itself)."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(None, 101)


class WebSocketState(Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    CLOSED = "closed"


class WebSocketChannel(Protocol):
    """What the engine gives a WebSocket: the framed connection after the handshake."""

    offered_subprotocols: list[str]
    close_code: int | None

    async def accept(self, subprotocol: str | None, headers: list[tuple[bytes, bytes]]) -> None: ...

    async def receive(self) -> str | bytes:
        """The next message; raises ``WebSocketDisconnect`` once closed."""
        ...

    async def send(self, data: str | bytes) -> None:
        """Queue one message; raises ``WebSocketDisconnect`` once closed."""
        ...

    async def close(self, code: int, reason: str) -> None: ...

    def send_nowait(self, data: str | bytes) -> bool:
        """Queue one message without waiting; False when the outgoing queue is full."""
        ...

    def close_nowait(self, code: int, reason: str) -> None: ...


class WebSocket:
    """One WebSocket connection, from the handler's side."""

    def __init__(self, request: Request, channel: WebSocketChannel) -> None:
        self.request = request
        self._channel = channel
        self.state = WebSocketState.CONNECTING
        self.rooms: set[str] = set()
        self._refused = False  # close() before accept(): the answer is HTTP 403

    # -- the upgrade request ------------------------------------------------------------

    @property
    def headers(self) -> Headers:
        return self.request.headers

    @property
    def path(self) -> str:
        return self.request.path

    @property
    def url(self) -> URL:
        return self.request.url

    @property
    def query_params(self) -> QueryParams:
        return self.request.query_params

    @property
    def cookies(self) -> dict[str, str]:
        return self.request.cookies

    @property
    def client(self) -> Address | None:
        return self.request.client

    @property
    def path_params(self) -> dict[str, Any]:
        return self.request.path_params

    @property
    def origin(self) -> str | None:
        return self.request.headers.get("origin")

    @property
    def subprotocols(self) -> list[str]:
        """What the client offered, in its order of preference."""
        return list(self._channel.offered_subprotocols)

    @property
    def app(self) -> Any:
        return self.request.app

    @property
    def close_code(self) -> int | None:
        return self._channel.close_code

    # -- the conversation ---------------------------------------------------------------

    async def accept(
        self, subprotocol: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        """Complete the handshake (``subprotocol`` must be one the client offered)."""
        if self.state is not WebSocketState.CONNECTING or self._refused:
            raise RuntimeError("the WebSocket was already accepted or closed")
        if subprotocol is not None and subprotocol not in self._channel.offered_subprotocols:
            raise ValueError(f"subprotocol {subprotocol!r} was not offered by the client")
        from .datastructures import encode_header

        raw = [encode_header(k, v) for k, v in (headers or {}).items()]
        await self._channel.accept(subprotocol, raw)
        self.state = WebSocketState.CONNECTED

    async def receive(self) -> str | bytes:
        self._require_connected()
        try:
            return await self._channel.receive()
        except WebSocketDisconnect:
            self.state = WebSocketState.CLOSED
            raise

    async def receive_text(self) -> str:
        message = await self.receive()
        if not isinstance(message, str):
            raise TypeError("expected a text message, got a binary one")
        return message

    async def receive_bytes(self) -> bytes:
        message = await self.receive()
        if not isinstance(message, bytes):
            raise TypeError("expected a binary message, got a text one")
        return message

    async def receive_json(self) -> Any:
        message = await self.receive()
        return json.loads(message)

    async def send_text(self, data: str) -> None:
        await self._send(data)

    async def send_bytes(self, data: bytes) -> None:
        await self._send(bytes(data))

    async def send_json(self, data: Any) -> None:
        await self._send(json.dumps(data, separators=(",", ":"), ensure_ascii=False))

    async def _send(self, data: str | bytes) -> None:
        self._require_connected()
        try:
            await self._channel.send(data)
        except WebSocketDisconnect:
            self.state = WebSocketState.CLOSED
            raise

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the close handshake.

        Before ``accept`` there is no WebSocket to close: the handshake is refused, and
        once the handler returns the client gets HTTP 403 (``state`` stays
        ``CONNECTING`` until then, which is what tells the dispatcher to answer HTTP).
        """
        if self.state is WebSocketState.CLOSED:
            return
        if self.state is WebSocketState.CONNECTING:
            self._refused = True
            return
        self.state = WebSocketState.CLOSED
        await self._channel.close(code, reason)

    def send_nowait(self, data: str | bytes) -> bool:
        """Queue ``data`` for sending without waiting (broadcasts); False if this
        connection's outgoing queue is full (the client reads too slowly)."""
        if self.state is not WebSocketState.CONNECTED:
            return True  # not (or no longer) a member in practice: nothing to send
        return self._channel.send_nowait(data)

    def abandon(self, code: int, reason: str) -> None:
        """Close without waiting (a member dropped by its room)."""
        if self.state is WebSocketState.CONNECTED:
            self.state = WebSocketState.CLOSED
            self._channel.close_nowait(code, reason)

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[str | bytes]:
        """Messages until the connection closes (a normal end of the loop)."""
        while True:
            try:
                yield await self.receive()
            except WebSocketDisconnect:
                return

    def _require_connected(self) -> None:
        if self._refused:
            raise RuntimeError("the WebSocket was refused (close() before accept())")
        if self.state is WebSocketState.CONNECTING:
            raise RuntimeError("accept() the WebSocket first")
        if self.state is WebSocketState.CLOSED:
            raise WebSocketDisconnect(self._channel.close_code or 1006)

    # -- rooms (``app.hub``) ---------------------------------------------------------------

    async def join(self, room: str) -> None:
        """Receive what is broadcast to ``room`` (on any worker, any instance)."""
        await self.request.app.hub.join(room, self)
        self.rooms.add(room)

    async def leave(self, room: str) -> None:
        await self.request.app.hub.leave(room, self)
        self.rooms.discard(room)

    def __repr__(self) -> str:
        return f"<WebSocket {self.path!r} {self.state.value}>"
