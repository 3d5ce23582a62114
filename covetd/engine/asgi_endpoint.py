"""An ASGI app as a ``Request -> Response`` handler, so covetd's middleware chain
can wrap it (without middleware, ``asgi.AsgiRunner`` runs the app directly).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, Final

from ..app.exceptions import ClientDisconnect
from ..app.requests import Request
from ..app.responses import PlainTextResponse, Response, StreamingResponse
from .asgi import awaited
from .asgi_common import (
    DISCONNECT,
    AsgiApp,
    ClientDisconnected,
    Message,
    add_middleware_results,
    http_scope,
    response_start,
)
from .asgi_websocket import serve_asgi_websocket

__all__ = ["AsgiEndpoint"]

error_log = logging.getLogger("covetd.error")

STREAM_AHEAD: Final = 8  # parts an ASGI app may stream ahead of the client


class _EndpointExchange:
    """``receive``/``send`` of an ASGI app run as a ``Request -> Response`` endpoint.

    The Response is handed over as soon as it is known: at the first body message;
    later parts (``more_body``) flow through a small bounded queue into a streaming
    Response, so a middleware sees status and headers before the body is done and a
    fast app still waits for a slow client. Once that stream is abandoned (the client
    left), ``send`` raises ``ClientDisconnected``, as with the plain runner.
    """

    def __init__(self, request: Request) -> None:
        self.request = request
        self.response: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.has_length = False
        self.parts: asyncio.Queue[bytes | BaseException | None] | None = None
        self.abandoned = False
        self.finished = False
        self.request_done = False
        self.room = asyncio.Event()  # set when the stream took a part out

    async def receive(self) -> Message:
        channel: Any = self.request._channel
        if self.request_done:
            # After the body, only the end of the exchange is left to report.
            wait_closed = getattr(channel, "wait_closed", None)
            if wait_closed is not None:
                await wait_closed()
            return DISCONNECT
        try:
            chunk = await channel.read_chunk()
        except ClientDisconnect:
            return DISCONNECT
        if not chunk:
            self.request_done = True
        return {"type": "http.request", "body": chunk, "more_body": bool(chunk)}

    async def send(self, message: Message) -> None:
        if self.abandoned:
            raise ClientDisconnected("the client closed the connection")
        kind = message["type"]
        if kind == "http.response.start":
            if self.status:
                raise RuntimeError("http.response.start sent twice")
            self.status, self.headers, self.has_length = response_start(message)
        elif kind == "http.response.body":
            await self._body(message.get("body", b""), message.get("more_body", False))
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r}")

    async def _body(self, body: bytes, more: bool) -> None:
        if not self.status:
            raise RuntimeError("http.response.body sent before http.response.start")
        if self.finished or (self.response.done() and self.parts is None):
            raise RuntimeError("http.response.body sent after the response was complete")
        if self.parts is not None:
            while self.parts.qsize() >= STREAM_AHEAD and not self.abandoned:
                self.room.clear()
                await self.room.wait()  # backpressure: the client is slower than the app
            if self.abandoned:
                raise ClientDisconnected("the client closed the connection")
            self.parts.put_nowait(bytes(body))
            if not more:
                self.finished = True
                self.parts.put_nowait(None)
            return
        if not more:
            self.finished = True
            self.response.set_result(self._whole(bytes(body)))
            return
        self.parts = asyncio.Queue()
        self.parts.put_nowait(bytes(body))
        response = StreamingResponse(self._stream(self.parts), self.status)
        response.raw_headers = self.headers
        self.response.set_result(response)

    def _whole(self, body: bytes) -> Response:
        response: Response = object.__new__(Response)
        response.status_code = status = self.status
        allowed = status >= 200 and status not in (204, 304)
        response.body = body if allowed else b""
        headers = self.headers
        if not self.has_length and allowed:
            headers = [*headers, (b"content-length", b"%d" % len(body))]
        response.raw_headers = headers
        return response

    async def _stream(
        self, parts: asyncio.Queue[bytes | BaseException | None]
    ) -> AsyncIterator[bytes]:
        try:
            while (part := await parts.get()) is not None:
                self.room.set()
                if isinstance(part, BaseException):
                    raise part  # the response is cut short: the engine closes the connection
                if part:
                    yield part
        finally:
            if not self.finished:  # stopped early: the client left, or the app failed
                self.abandoned = True
                self.room.set()  # wake a send() waiting for room: it raises

    def finish(self, failed: bool) -> None:
        """The app's task ended: complete whatever the client is still waiting for."""
        if not self.response.done():
            self.response.set_result(
                PlainTextResponse("Internal Server Error\n", 500)
                if failed or not self.status
                else self._whole(b"")
            )
        elif self.parts is not None and not self.finished:
            # A stream the app left unfinished must not look complete to the client.
            self.finished = True
            self.parts.put_nowait(RuntimeError("the ASGI app did not finish its response"))


class AsgiEndpoint:
    """An ASGI app as a ``Request -> Response`` handler, for the middleware chain.

    Used only when middleware is configured (without it the ASGI app runs through
    ``AsgiRunner``, with no extra task or queue). The app runs in its own task so a
    streamed response can flow while the middleware chain returns.
    """

    def __init__(self, app: AsgiApp, state: dict[str, Any] | None = None) -> None:
        self._app = app
        self._state = state if state is not None else {}

    async def __call__(self, request: Request) -> Response:
        channel = request.websocket_channel
        if channel is not None:
            return await serve_asgi_websocket(self._app, request, channel, self._state)
        exchange = _EndpointExchange(request)
        scope = http_scope(request, self._state)
        add_middleware_results(scope, request)
        task = asyncio.get_running_loop().create_task(
            awaited(self._app(scope, exchange.receive, exchange.send))
        )
        task.add_done_callback(lambda done: _app_ended(done, exchange, request))
        try:
            return await exchange.response
        except asyncio.CancelledError:
            task.cancel()  # the chain gave up (a timeout middleware, a forced stop)
            raise


def _app_ended(task: asyncio.Task[Any], exchange: _EndpointExchange, request: Request) -> None:
    failure = None if task.cancelled() else task.exception()
    if failure is not None and not exchange.abandoned:
        error_log.error(
            "Exception in ASGI application for %s", request.request_line, exc_info=failure
        )
    elif failure is None and not exchange.response.done():
        error_log.error(
            "ASGI application returned without sending a response for %s", request.request_line
        )
    exchange.finish(failure is not None or task.cancelled())
