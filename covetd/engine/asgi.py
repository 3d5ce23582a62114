"""The ASGI 3 bridge: run any ASGI application (Starlette, FastAPI, Django...) on the
engine. HTTP here; WebSocket scopes in ``asgi_websocket.py``, lifespan in
``asgi_lifespan.py``, and an ASGI app behind covetd's middleware in
``asgi_endpoint.py``.

Per request: one scope dict and two bound methods. The head is held back until the
first body message so that a one-message body goes out with its head in one write and
a ``content-length`` (the common case); a body sent in several messages goes out
chunked (close-delimited to HTTP/1.0 clients) unless the app set the length itself.

Every header an app sends is checked (``asgi_common.response_headers``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from types import CoroutineType
from typing import Any

from ..app.exceptions import ClientDisconnect, HTTPException
from .asgi_common import (
    DISCONNECT,
    AsgiApp,
    ClientDisconnected,
    Message,
    http_scope,
    response_start,
)
from .asgi_websocket import serve_asgi_websocket
from .cycle import RequestCycle
from .h1.writer import LAST_CHUNK, encode_chunk, error_response

__all__ = ["AsgiRunner", "ClientDisconnected", "awaited"]

error_log = logging.getLogger("covetd.error")


class _HttpExchange:
    """``receive`` and ``send`` for one request (state in class-level defaults)."""

    started = False
    head_written = False
    complete = False
    chunked = False
    request_done = False
    has_length = False
    status = 0

    def __init__(self, cycle: RequestCycle) -> None:
        self.cycle = cycle
        self.headers: list[tuple[bytes, bytes]] = []  # replaced at http.response.start

    async def receive(self) -> Message:
        cycle = self.cycle
        if self.request_done:
            await cycle.wait_closed()
            return DISCONNECT
        try:
            chunk = await cycle.read_chunk()
        except ClientDisconnect:
            return DISCONNECT
        except HTTPException as exc:  # the body broke a limit or timed out
            self._refuse(exc.status_code)
            return DISCONNECT
        more = bool(chunk) and not (cycle.body_complete and not cycle.chunks)
        if not more:
            self.request_done = True
        return {"type": "http.request", "body": chunk, "more_body": more}

    def _refuse(self, status: int) -> None:
        cycle = self.cycle
        if not self.started:
            self.started = self.complete = True
            cycle.keep_alive = False
            cycle.response_started = True
            cycle.status = status
            cycle.write(error_response(status, cycle.conn.server.preamble.value))
            cycle.finish()

    async def send(self, message: Message) -> None:
        cycle = self.cycle
        if cycle.disconnected:
            raise ClientDisconnected("the client closed the connection")
        kind = message["type"]
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("http.response.start sent twice")
            self.status, self.headers, self.has_length = response_start(message)
            self.started = True
        elif kind == "http.response.body":
            if not self.started or self.complete:
                raise RuntimeError(
                    "http.response.body sent "
                    + ("after the response was complete" if self.complete else "before the start")
                )
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if self.head_written or more:
                await self._send_part(body, more)
                return
            # The whole response in one message (the common case): one write.
            self.head_written = self.complete = True
            status = self.status
            headers = self.headers
            if not self.has_length and status >= 200 and status != 204 and status != 304:
                headers.append((b"content-length", b"%d" % len(body)))
            data = cycle.start(status, headers)
            if body and cycle.request.method != "HEAD":
                data += body
            cycle.write(data)
            cycle.finish()
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r}")

    def app_returned(self, result: object) -> None:
        if not self.complete:
            error_log.error(
                "ASGI application returned without %s the response for %s",
                "completing" if self.started else "sending",
                self.cycle.request_line(),
            )
            self._fail()

    def app_failed(self, exc: BaseException) -> None:
        cycle = self.cycle
        if not isinstance(exc, Exception):
            pass  # cancelled by a forced shutdown: nothing to report
        elif cycle.disconnected:  # the app noticed the client left, the usual way
            error_log.debug(
                "ASGI application stopped after the client left: %s",
                cycle.request_line(),
                exc_info=exc,
            )
        else:
            error_log.error(
                "Exception in ASGI application for %s", cycle.request_line(), exc_info=exc
            )
        self._fail()

    def _fail(self) -> None:
        cycle = self.cycle
        if self.complete:
            return
        self.complete = True
        if self.head_written:
            cycle.abort("the response could not be completed")
            return
        self.started = True
        cycle.keep_alive = False
        cycle.response_started = True
        cycle.status = 500
        cycle.write(error_response(500, cycle.conn.server.preamble.value))
        cycle.finish()

    async def _send_part(self, body: bytes, more: bool) -> None:
        cycle = self.cycle
        is_head = cycle.request.method == "HEAD"
        if not self.head_written:
            self.head_written = True
            if not self.has_length:
                if cycle.request.http_version == "1.0":
                    cycle.keep_alive = False  # close-delimited
                else:
                    self.chunked = True
            cycle.write(cycle.start(self.status, self.headers, self.chunked))
        if body and not is_head:
            cycle.write(encode_chunk(body) if self.chunked else bytes(body))
        if not more:
            self.complete = True
            if self.chunked and not is_head:
                cycle.write(LAST_CHUNK)
            cycle.finish()
        elif cycle.conn.write_paused:
            await cycle.conn.drain()


class AsgiRunner:
    """Runs each request through an ASGI 3 application."""

    __slots__ = ("_app", "_state")

    def __init__(self, app: AsgiApp, state: dict[str, Any] | None = None) -> None:
        self._app = app
        self._state = state if state is not None else {}

    def __call__(self, cycle: RequestCycle) -> None:
        request = cycle.request
        channel = request.websocket_channel
        if channel is not None:
            session = serve_asgi_websocket(self._app, request, channel, self._state)
            cycle.conn.driver.start(session, cycle.respond, cycle.handler_failed)
            return
        exchange = _HttpExchange(cycle)
        scope = http_scope(request, self._state)
        if cycle.conn.server.observer is not None:
            cycle.asgi_scope = scope  # metrics read the route the app's router matched
        try:
            call = self._app(scope, exchange.receive, exchange.send)
        except Exception as exc:
            exchange.app_failed(exc)
            return
        if type(call) is not CoroutineType:
            call = awaited(call)  # an awaitable that is not a coroutine
        cycle.conn.driver.start(call, exchange.app_returned, exchange.app_failed)


async def awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable
