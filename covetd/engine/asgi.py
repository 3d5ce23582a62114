"""The ASGI 3 bridge: run any ASGI application (Starlette, FastAPI, Django...) on the
engine. HTTP and lifespan here; WebSocket scopes in ``asgi_websocket.py``.

Per request: one scope dict and two bound methods. The head is held back until the
first body message so that a one-message body goes out with its head in one write and
a ``content-length`` (the common case); a body sent in several messages goes out
chunked (close-delimited to HTTP/1.0 clients) unless the app set the length itself.

Every header an app sends is checked (``asgi_common.response_headers``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable
from types import CoroutineType
from typing import Any

from ..app.exceptions import ClientDisconnect, HTTPException
from ..app.requests import Request
from ..app.responses import PlainTextResponse, Response, StreamingResponse
from .asgi_common import (
    ASGI_VERSION,
    AsgiApp,
    ClientDisconnected,
    Message,
    add_middleware_results,
    response_headers,
)
from .asgi_websocket import serve_asgi_websocket
from .cycle import RequestCycle
from .h1.writer import LAST_CHUNK, encode_chunk, error_response

__all__ = [
    "AsgiEndpoint",
    "AsgiLifespan",
    "AsgiRunner",
    "ClientDisconnected",
    "LifespanFailure",
]

error_log = logging.getLogger("covetd.error")

_DISCONNECT: Message = {"type": "http.disconnect"}


class _HttpExchange:
    """``receive`` and ``send`` for one request (state in class-level defaults)."""

    started = False
    head_written = False
    complete = False
    chunked = False
    request_done = False
    has_length = False
    status = 0
    headers: list[tuple[bytes, bytes]] = []  # replaced at http.response.start

    def __init__(self, cycle: RequestCycle) -> None:
        self.cycle = cycle

    async def receive(self) -> Message:
        cycle = self.cycle
        if self.request_done:
            await cycle.wait_closed()
            return _DISCONNECT
        try:
            chunk = await cycle.read_chunk()
        except ClientDisconnect:
            return _DISCONNECT
        except HTTPException as exc:  # the body broke a limit or timed out
            self._refuse(exc.status_code)
            return _DISCONNECT
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
            status = message["status"]
            if type(status) is not int or not 100 <= status <= 599:
                raise RuntimeError(f"invalid status {status!r}")
            self.status = status
            self.headers, self.has_length = response_headers(message.get("headers", ()))
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
        scope = {
            "type": "http",
            "asgi": ASGI_VERSION,
            "http_version": request.http_version,
            "server": request.server,
            "client": request.client,
            "scheme": request.scheme,
            "method": request.method,
            "root_path": "",
            "path": request.path,
            "raw_path": request.raw_path,
            "query_string": request.query_string,
            "headers": request.raw_headers,
            "state": self._state.copy(),
        }
        if cycle.conn.server.observer is not None:
            cycle.asgi_scope = scope  # metrics read the route the app's router matched
        try:
            call = self._app(scope, exchange.receive, exchange.send)
        except Exception as exc:
            exchange.app_failed(exc)
            return
        if type(call) is not CoroutineType:
            call = _awaited(call)  # an awaitable that is not a coroutine
        cycle.conn.driver.start(call, exchange.app_returned, exchange.app_failed)


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


STREAM_AHEAD = 8  # parts an ASGI app may stream ahead of the client


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
            return _DISCONNECT
        try:
            chunk = await channel.read_chunk()
        except ClientDisconnect:
            return _DISCONNECT
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
            status = message["status"]
            if type(status) is not int or not 100 <= status <= 599:
                raise RuntimeError(f"invalid status {status!r}")
            self.status = status
            self.headers, self.has_length = response_headers(message.get("headers", ()))
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
        scope = {
            "type": "http",
            "asgi": ASGI_VERSION,
            "http_version": request.http_version,
            "server": request.server,
            "client": request.client,
            "scheme": request.scheme,
            "method": request.method,
            "root_path": request.root_path,
            "path": request.path,
            "raw_path": request.raw_path,
            "query_string": request.query_string,
            "headers": request.raw_headers,
            "state": self._state.copy(),
        }
        add_middleware_results(scope, request)
        task = asyncio.get_running_loop().create_task(
            _awaited(self._app(scope, exchange.receive, exchange.send))
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


class LifespanFailure(Exception):
    """The application's lifespan startup failed; the message is the app's."""


class AsgiLifespan:
    """Drives the ASGI lifespan protocol for one worker.

    An app that raises on the lifespan scope before answering is taken as not
    supporting lifespan (like uvicorn's ``--lifespan auto``); an app that answers
    ``lifespan.startup.failed`` stops the worker with its message.
    """

    def __init__(self, app: AsgiApp, startup_timeout: float | None = None) -> None:
        self._app = app
        self._timeout = startup_timeout
        self.state: dict[str, Any] = {}
        self.supported = True
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._outbox: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        scope = {"type": "lifespan", "asgi": ASGI_VERSION, "state": self.state}
        self._task = asyncio.get_running_loop().create_task(self._run(scope))
        await self._inbox.put({"type": "lifespan.startup"})
        reply = await asyncio.wait_for(self._outbox.get(), self._timeout)
        if reply["type"] == "lifespan.startup.failed":
            raise LifespanFailure(reply.get("message") or "lifespan startup failed")

    async def shutdown(self, timeout: float | None = None) -> None:
        if not self.supported or self._task is None or self._task.done():
            return
        await self._inbox.put({"type": "lifespan.shutdown"})
        reply = await asyncio.wait_for(self._outbox.get(), timeout)
        if reply["type"] == "lifespan.shutdown.failed":
            error_log.error("lifespan shutdown failed: %s", reply.get("message", ""))

    async def _run(self, scope: dict[str, Any]) -> None:
        answered = False

        async def send(message: Message) -> None:
            nonlocal answered
            answered = True
            await self._outbox.put(message)

        try:
            await self._app(scope, self._inbox.get, send)
        except BaseException as exc:
            if not answered:
                self.supported = False
                error_log.info(
                    "the application does not support ASGI lifespan (%s: %s)",
                    type(exc).__name__,
                    exc,
                )
                await self._outbox.put({"type": "lifespan.startup.complete"})
            elif not isinstance(exc, asyncio.CancelledError):
                error_log.exception("exception in the lifespan protocol")
                await self._outbox.put({"type": "lifespan.shutdown.failed", "message": repr(exc)})
            if isinstance(exc, asyncio.CancelledError):
                raise
        else:
            if not answered:
                self.supported = False
                await self._outbox.put({"type": "lifespan.startup.complete"})
