"""One request/response exchange on a connection: the request body flowing in, the
response flowing out, and who ended it.

The connection (``protocol.py``) owns the transport; a cycle only writes through it
while it is the connection's current cycle, which is what keeps pipelined responses in
order. A cycle ends exactly once, in ``finish``: the response was written, or the
connection was lost ("disconnected": the client left) or aborted ("broken": the server
gave up on it).

Hot path: a cycle is created per request, so its state lives in class-level defaults
and an instance only stores what differs (a GET sets four attributes).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any, Final

from ..app.exceptions import ClientDisconnect, HTTPException
from ..app.head import RequestHead
from ..app.requests import NO_BODY, Request
from ..app.responses import PlainTextResponse, Response
from .h1.errors import ProtocolError
from .h1.writer import (
    CONTINUE,
    HEAD_TAILS,
    LAST_CHUNK,
    STATUS_LINES,
    encode_chunk,
    status_line,
)

if TYPE_CHECKING:
    from .protocol import HttpProtocol

__all__ = ["RequestCycle"]

error_log = logging.getLogger("covetd.error")

# Above this many unread body bytes the connection stops reading from the socket.
BODY_HIGH_WATER: Final = 256 * 1024
BODY_LOW_WATER: Final = 64 * 1024
# Bodies up to this size go out in the same write as their head.
COALESCE_LIMIT: Final = 64 * 1024
# Final: the native build reads it as a C global, not from the module's dict.
_NO_BODY: Final = NO_BODY


class RequestCycle:
    """The engine side of one request: implements the body channel and the writer."""

    chunks: deque[bytes] | None = None
    buffered = 0
    body_error: ProtocolError | None = None
    waiter: asyncio.Future[None] | None = None
    continue_sent = False
    response_started = False
    response_complete = False
    disconnected = False
    status = 0
    bytes_sent = 0
    started_at = 0.0
    _closed: asyncio.Future[None] | None = None
    _route_template: str | None = None
    asgi_scope: dict[str, Any] | None = None

    def __init__(self, conn: HttpProtocol, request: Request) -> None:
        self.conn = conn
        self.request = request
        head: RequestHead = request  # compiled: struct fields, not lookups by name
        self.keep_alive = head.keep_alive
        self.body_complete = not head.has_body

    @property
    def route_template(self) -> str | None:
        """The matched route's template (for metrics labels), if any route matched."""
        if self._route_template is not None:
            return self._route_template
        if self.asgi_scope is not None:  # Starlette & co. leave the matched route here
            path = getattr(self.asgi_scope.get("route"), "path", None)
            return path if isinstance(path, str) else None
        route = self.request.route
        return route.path if route is not None else None

    @route_template.setter
    def route_template(self, template: str | None) -> None:
        self._route_template = template

    async def wait_closed(self) -> None:
        """Wait until the response is complete or the client is gone."""
        if self.response_complete or self.disconnected:
            return
        if self._closed is None:
            self._closed = self.conn.loop.create_future()
        await self._closed

    def _release_closed(self) -> None:
        closed = self._closed
        if closed is not None and not closed.done():
            closed.set_result(None)

    # -- body: parser side -------------------------------------------------------------

    def feed_body(self, data: bytes) -> None:
        if self.response_complete:
            return  # the handler is done; the rest of the body is read and dropped
        if self.chunks is None:
            self.chunks = deque()
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > BODY_HIGH_WATER:
            self.conn.pause_reading_for_body()
        self._wake()

    def end_body(self) -> None:
        self.body_complete = True
        self._wake()

    def fail_body(self, error: ProtocolError) -> None:
        self.body_error = error
        self.keep_alive = False
        self._wake()

    def connection_lost(self) -> None:
        self.disconnected = True
        self._wake()
        self._release_closed()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- body: handler side (the BodyChannel protocol) ----------------------------------

    async def read_chunk(self) -> bytes:
        while True:
            if self.chunks:
                chunk = self.chunks.popleft()
                self.buffered -= len(chunk)
                if self.buffered < BODY_LOW_WATER:
                    self.conn.resume_reading_for_body()
                return chunk
            if self.body_error is not None:  # details are for the log, not the client
                raise HTTPException(self.body_error.status)
            if self.body_complete:
                return b""
            if self.disconnected:
                raise ClientDisconnect()
            if self.request.expect_continue and not (self.continue_sent or self.response_started):
                self.continue_sent = True
                self.conn.write(CONTINUE)
            self.waiter = self.conn.loop.create_future()
            await self.waiter

    def is_disconnected(self) -> bool:
        return self.disconnected

    @property
    def body_pending(self) -> bool:
        """True while body bytes are buffered or still to come from the client."""
        return bool(self.chunks) or not self.body_complete

    # -- response ---------------------------------------------------------------------

    def start(
        self, status: int, headers: list[tuple[bytes, bytes]], chunked: bool = False
    ) -> bytes:
        """The head for ``status``/``headers``; decides keep-alive once, here.

        (writer.serialize_head, inlined: one pass over the headers serialises them and
        takes out a ``connection`` field, which is the server's to write.)
        """
        head: RequestHead = self.request
        keep_alive = self.keep_alive and not (
            self.conn.closing
            # The client still holds the body back: nothing after it could be framed.
            or (not self.body_complete and head.expect_continue and not self.continue_sent)
        )
        parts = [STATUS_LINES.get(status) or status_line(status), self.conn.server.preamble.value]
        for name, value in headers:
            if name == b"connection":
                if value.lower().find(b"close") >= 0:
                    keep_alive = False
                continue
            parts += name, b": ", value, b"\r\n"  # cheaper than %-formatting a line
        parts.append(HEAD_TAILS[keep_alive, chunked, head.http_version == "1.0"])
        self.response_started = True
        self.keep_alive = keep_alive
        self.status = status
        return b"".join(parts)

    def write(self, data: bytes) -> None:
        if not self.disconnected:
            self.bytes_sent += len(data)
            self.conn.write(data)

    def respond(self, response: Response) -> None:
        """A handler's result: write it (a streaming one on the connection's driver)."""
        try:
            if response.streaming:
                self.conn.driver.start(self.send_streaming(response), _ignore, self._stream_failed)
            elif response.status_code == 101 and self.conn.websocket is not None:
                self.keep_alive = False  # the WebSocket session ended; nothing to write
                self.finish()
            else:
                self.write_response(response)
        except Exception:
            self._fail("Invalid response")

    def handler_failed(self, exc: BaseException) -> None:
        """The handler raised past its app (or was cancelled by a forced shutdown)."""
        if isinstance(exc, Exception):
            error_log.error("Exception in handler for %s", self.request_line(), exc_info=exc)
        self._fail(None)

    def _stream_failed(self, exc: BaseException) -> None:
        if isinstance(exc, Exception):
            error_log.error(
                "Exception while streaming the response to %s", self.request_line(), exc_info=exc
            )
        self._fail(None)

    def _fail(self, what: str | None) -> None:
        """Nothing sent yet: answer 500. Head already sent: close the connection."""
        if what is not None:
            error_log.exception("%s for %s", what, self.request_line())
        if self.response_complete:
            return
        if self.response_started:
            self.keep_alive = False
            self.finish()
        else:
            self.write_response(PlainTextResponse("Internal Server Error\n", 500))

    def write_response(self, response: Response) -> None:
        """Send a complete (non-streaming) response, in one write when it is small."""
        data = self.start(response.status_code, response.raw_headers)
        body = response.body
        head: RequestHead = self.request
        if body and head.method != "HEAD":
            if len(body) < COALESCE_LIMIT:
                data += body
            else:
                self.write(data)
                data = body
        if not self.disconnected:  # self.write, inlined: this is every response's path
            self.bytes_sent += len(data)
            transport = self.conn.transport
            if transport is not None:
                transport.write(data)
        self.finish()

    async def send_streaming(self, response: Response) -> None:
        """Send ``response.body_iterator`` as it yields, chunked unless the length is set."""
        iterator = response.body_iterator  # type: ignore[attr-defined]
        known_length = any(name == b"content-length" for name, _ in response.raw_headers)
        http10 = self.request.http_version == "1.0"
        if http10 and not known_length:
            self.keep_alive = False  # HTTP/1.0 has no chunked coding: close-delimited
        chunked = not known_length and not http10
        self.write(self.start(response.status_code, response.raw_headers, chunked))
        # (Not try/finally: mypyc miscompiles an await in a finally block when the
        # coroutine is first run inside a caller's except block, as driver.start does.)
        try:
            if self.request.method != "HEAD":
                await self._pump(iterator, chunked)
        except BaseException:
            await _aclose(iterator)
            raise
        await _aclose(iterator)
        self.finish()

    async def _pump(self, iterator: object, chunked: bool) -> None:
        conn = self.conn
        async for chunk in iterator:  # type: ignore[attr-defined]
            if self.disconnected:
                return
            data = chunk.encode("utf-8") if isinstance(chunk, str) else bytes(chunk)
            if data:
                self.write(encode_chunk(data) if chunked else data)
            if conn.write_paused:
                await conn.drain()
        if chunked and not self.disconnected:
            self.write(LAST_CHUNK)

    def finish(self) -> None:
        """The response is complete: hand the connection to the next request."""
        if self.response_complete:
            return
        self.response_complete = True
        if self.chunks:
            self.chunks.clear()
            self.buffered = 0
        if self._closed is not None:
            self._release_closed()
        self.conn.cycle_finished(self)
        # Request and cycle point at each other; break that here so both are freed by
        # reference counting instead of piling up for the cyclic GC.
        self.request._channel = _NO_BODY

    def abort(self, reason: str) -> None:
        """Give up on this exchange (response half-written): close the connection."""
        error_log.error("%s; closing the connection of %s", reason, self.request_line())
        self.keep_alive = False
        self.finish()

    def request_line(self) -> str:
        return self.request.request_line


async def _aclose(iterator: object) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


def _ignore(result: object) -> None:
    """A streaming response's coroutine returns nothing worth keeping."""
