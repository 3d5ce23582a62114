"""The ASGI 3 bridge: run any ASGI application (Starlette, FastAPI, Django...) on the
engine. HTTP and lifespan here; WebSocket scopes come with the WebSocket engine.

Per request: one scope dict and two bound methods. The head is held back until the
first body message so that a one-message body goes out with its head in one write and
a ``content-length`` (the common case); a body sent in several messages goes out
chunked (close-delimited to HTTP/1.0 clients) unless the app set the length itself.

Every header an app sends is checked: names must be tokens, values must not hold CR,
LF or NUL, so an app cannot split a response however it builds its headers.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from ..app.exceptions import ClientDisconnect, HTTPException
from ..app.requests import decode_path
from .cycle import RequestCycle
from .h1.writer import LAST_CHUNK, encode_chunk, error_response

__all__ = ["AsgiLifespan", "AsgiRunner", "LifespanFailure"]

error_log = logging.getLogger("covetd.error")

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]

ASGI_VERSION = {"version": "3.0", "spec_version": "2.4"}
_DISCONNECT: Message = {"type": "http.disconnect"}
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_checked_names: dict[bytes, bytes] = {}
_MAX_CHECKED_NAMES = 4096


def _header_name(name: bytes) -> bytes:
    checked = _checked_names.get(name)
    if checked is None:
        if not _TOKEN.fullmatch(name):
            raise RuntimeError(f"invalid header name {name!r}")
        checked = bytes(name).lower()
        if len(_checked_names) < _MAX_CHECKED_NAMES:
            _checked_names[name] = checked
    return checked


def _response_headers(raw: Any) -> tuple[list[tuple[bytes, bytes]], bool]:
    """Validated headers (hop-by-hop framing ones dropped) and whether a length is set."""
    headers = []
    has_length = False
    for name, value in raw:
        name = _header_name(name)
        if b"\r" in value or b"\n" in value or b"\0" in value:
            raise RuntimeError(f"invalid character (CR, LF or NUL) in header {name!r}")
        if name == b"content-length":
            has_length = True
        elif name == b"transfer-encoding":
            continue  # framing is the server's business
        headers.append((name, bytes(value)))
    return headers, has_length


class _HttpExchange:
    """``receive`` and ``send`` for one request."""

    __slots__ = (
        "chunked",
        "complete",
        "cycle",
        "has_length",
        "head_written",
        "headers",
        "request_done",
        "started",
        "status",
    )

    def __init__(self, cycle: RequestCycle) -> None:
        self.cycle = cycle
        self.started = False
        self.head_written = False
        self.complete = False
        self.chunked = False
        self.request_done = False
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.has_length = False

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
        kind = message["type"]
        if kind == "http.response.body":
            await self._send_body(message)
        elif kind == "http.response.start":
            if self.started:
                raise RuntimeError("http.response.start sent twice")
            status = message["status"]
            if not isinstance(status, int) or not 100 <= status <= 599:
                raise RuntimeError(f"invalid status {status!r}")
            self.status = status
            self.headers, self.has_length = _response_headers(message.get("headers", ()))
            self.started = True
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r}")

    async def _send_body(self, message: Message) -> None:
        if not self.started:
            raise RuntimeError("http.response.body sent before http.response.start")
        if self.complete:
            if self.cycle.disconnected:
                return
            raise RuntimeError("http.response.body sent after the response was complete")
        body = message.get("body", b"")
        more = message.get("more_body", False)
        cycle = self.cycle
        is_head = cycle.head.method == "HEAD"
        if not self.head_written:
            self.head_written = True
            if not more:
                self._send_whole(body, is_head)
                return
            self._start_streaming()
        if body and not is_head:
            cycle.write(encode_chunk(body) if self.chunked else bytes(body))
        if not more:
            self.complete = True
            if self.chunked and not is_head:
                cycle.write(LAST_CHUNK)
            cycle.finish()
        elif cycle.conn.write_paused:
            await cycle.conn.drain()

    def _send_whole(self, body: bytes, is_head: bool) -> None:
        cycle = self.cycle
        headers = self.headers
        if not self.has_length and self.status >= 200 and self.status not in (204, 304):
            headers.append((b"content-length", b"%d" % len(body)))
        head = cycle.start(self.status, headers)
        cycle.write(head if is_head or not body else head + body)
        self.complete = True
        cycle.finish()

    def _start_streaming(self) -> None:
        cycle = self.cycle
        if not self.has_length:
            if cycle.head.http_version == "1.0":
                cycle.keep_alive = False  # close-delimited
            else:
                self.chunked = True
        cycle.write(cycle.start(self.status, self.headers, chunked=self.chunked))


class AsgiRunner:
    """Runs each request through an ASGI 3 application."""

    __slots__ = ("_app", "_state")

    def __init__(self, app: AsgiApp, state: dict[str, Any] | None = None) -> None:
        self._app = app
        self._state = state if state is not None else {}

    def _scope(self, cycle: RequestCycle) -> dict[str, Any]:
        head = cycle.head
        conn = cycle.conn
        return {
            "type": "http",
            "asgi": ASGI_VERSION,
            "http_version": head.http_version,
            "server": conn.sockname,
            "client": conn.client,
            "scheme": conn.server.scheme,
            "method": head.method,
            "root_path": "",
            "path": decode_path(head.raw_path),
            "raw_path": head.raw_path,
            "query_string": head.query_string,
            "headers": head.headers,
            "state": self._state.copy(),
        }

    async def __call__(self, cycle: RequestCycle) -> None:
        exchange = _HttpExchange(cycle)
        try:
            await self._app(self._scope(cycle), exchange.receive, exchange.send)
        except Exception:
            error_log.exception("Exception in ASGI application for %s", cycle.request_line())
            self._fail(exchange)
            return
        if not exchange.complete:
            if exchange.started:
                error_log.error(
                    "ASGI application returned without completing the response for %s",
                    cycle.request_line(),
                )
            else:
                error_log.error(
                    "ASGI application returned without sending a response for %s",
                    cycle.request_line(),
                )
            self._fail(exchange)

    @staticmethod
    def _fail(exchange: _HttpExchange) -> None:
        cycle = exchange.cycle
        if exchange.complete:
            return
        if exchange.head_written:
            exchange.complete = True
            cycle.abort("the response could not be completed")
            return
        exchange.started = exchange.complete = True
        cycle.keep_alive = False
        cycle.response_started = True
        cycle.status = 500
        cycle.write(error_response(500, cycle.conn.server.preamble.value))
        cycle.finish()


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
