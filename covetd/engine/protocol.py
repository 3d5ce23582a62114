"""The one ``asyncio.Protocol``: a client connection's bytes in, responses out.

Invariants:

- responses leave in request order: only ``cycle`` (the oldest unanswered request)
  may write; pipelined requests wait in ``pipeline`` and reading pauses while any do,
  so a client cannot make the server queue more than one read's worth of requests;
- reading also pauses while the unread request body is above the high-water mark,
  and while the transport's write buffer is full (``pause_writing``);
- after a protocol error nothing more is parsed: the error answer is queued behind the
  responses still owed, then the connection closes;
- at most one deadline runs per connection (``deadline``/``timeout_kind``), checked by
  the server's sweep rather than a timer per request: from accept to the end of the
  first head (``header_timeout``), between body bytes (``body_timeout``), idle between
  requests (``keepalive_timeout``), while the client does not read what we send
  (``send_timeout``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Final, cast

from ..app.datastructures import Address
from ..app.head import RequestHead
from ..app.requests import Request
from . import ws
from .cycle import RequestCycle
from .driver import ConnectionDriver
from .h1.errors import ProtocolError, RequestTimeout
from .h1.parser import RequestParser
from .h1.writer import error_response, serialize_head
from .websocket import WebSocketSession

if TYPE_CHECKING:
    from .server import HttpServer

__all__ = ["HttpProtocol"]

error_log = logging.getLogger("covetd.error")

# Module constants are Final: the native build then reads them as C constants
# instead of looking them up in the module's dict on every request.

# Why reading is paused (bit flags; reading resumes when none is left).
PAUSE_PIPELINE: Final = 1
PAUSE_BODY: Final = 2
PAUSE_WRITE: Final = 4
# What the connection's single deadline is for.
NO_TIMEOUT: Final = 0
HEAD_TIMEOUT: Final = 1
BODY_TIMEOUT: Final = 2
IDLE_TIMEOUT: Final = 3
SEND_TIMEOUT: Final = 4
LINGER_TIMEOUT: Final = 5
# After an answer that leaves client bytes unread (an error, an unread body), keep
# reading and dropping for this long before closing: closing with unread data makes
# the kernel send RST, which can destroy the answer before the client reads it
# (nginx's lingering close).
LINGER_SECONDS: Final = 2.0


class HttpProtocol(asyncio.Protocol):
    __slots__ = (
        "client",
        "closing",
        "cycle",
        "deadline",
        "drain_waiters",
        "driver",
        "loop",
        "parser",
        "parser_failed",
        "parsing",
        "pending_error",
        "pipeline",
        "read_paused",
        "server",
        "sockname",
        "timeout_kind",
        "transport",
        "websocket",
        "write_paused",
    )

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.loop = server.loop
        self.transport: asyncio.Transport | None = None
        self.parser = RequestParser(self, server.limits, Request)
        self.parser_failed = False
        self.client: Address | None = None
        self.sockname: Address | None = None
        self.cycle: RequestCycle | None = None
        self.driver = ConnectionDriver(server.loop)
        self.parsing: RequestCycle | None = None
        self.pipeline: deque[RequestCycle] = deque()
        self.pending_error: bytes | None = None
        self.read_paused = 0
        self.write_paused = False
        self.drain_waiters: list[asyncio.Future[None]] = []
        self.closing = False
        self.deadline = 0.0
        self.timeout_kind = NO_TIMEOUT
        self.websocket: WebSocketSession | None = None

    # -- transport callbacks -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.client = _address(transport.get_extra_info("peername"))
        self.sockname = _address(transport.get_extra_info("sockname"))
        self._set_deadline(HEAD_TIMEOUT, self.server.header_timeout)
        self.server.connection_made(self)

    def data_received(self, data: bytes) -> None:
        # A local, not ``if self.websocket is not None``: that would narrow the
        # attribute to None for the type checker below, where feed() may have set it
        # (mypyc compiles the narrowed type into a check that then fails).
        websocket = self.websocket
        if websocket is not None:
            websocket.data_received(data)
            return
        if self.parser_failed:
            return
        if self.timeout_kind == IDLE_TIMEOUT:  # the next request begins
            self.timeout_kind = HEAD_TIMEOUT
            self.deadline = self.loop.time() + self.server.header_timeout
        try:
            tail = self.parser.feed(data)  # not None: bytes after a switching upgrade head
        except ProtocolError as error:
            self.protocol_error(error)
            return
        if tail is not None and self.websocket is not None:
            if tail:
                self.websocket.data_received(tail)
            return
        if self.pipeline:
            self._pause(PAUSE_PIPELINE)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.websocket is not None:
            self.websocket.connection_lost()
        self.closing = True
        self.deadline = 0.0
        cycle = self.cycle
        if cycle is not None:
            cycle.connection_lost()
        parsing = self.parsing
        if parsing is not None and parsing is not cycle:
            parsing.connection_lost()
        self.pipeline.clear()
        self._wake_drainers()
        self.driver.close()
        self.server.connection_lost(self)

    def pause_writing(self) -> None:
        self.write_paused = True
        self._pause(PAUSE_WRITE)
        if self.timeout_kind == NO_TIMEOUT:
            self._set_deadline(SEND_TIMEOUT, self.server.send_timeout)

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.timeout_kind == SEND_TIMEOUT:
            self.deadline, self.timeout_kind = 0.0, NO_TIMEOUT
        self._wake_drainers()
        self._resume(PAUSE_WRITE)

    # -- parser listener -----------------------------------------------------------------

    def on_request(self, head: RequestHead) -> None:
        request: Request = head  # type: ignore[assignment]  # the parser builds Requests
        cycle = RequestCycle(self, request)
        request._channel = cycle
        request.client = self.client
        request.server = self.sockname
        if self.server.scheme != "http":
            request.scheme = self.server.scheme
        if head.has_body:
            self.parsing = cycle
            self._set_deadline(BODY_TIMEOUT, self.server.body_timeout)
        else:
            self.deadline, self.timeout_kind = 0.0, NO_TIMEOUT
        if head.upgrade is not None and self._upgrade(cycle) is False:
            return
        if self.server.observer is not None:
            cycle.started_at = self.loop.time()
        if self.cycle is None:
            self.cycle = cycle
            self.server.runner(cycle)
        else:
            self.pipeline.append(cycle)

    def _upgrade(self, cycle: RequestCycle) -> bool | None:
        """A ``websocket`` upgrade this server takes: set up the session (the app then
        accepts or refuses it). False when the handshake was refused at once."""
        request = cycle.request
        config = self.server.websocket
        if request.upgrade != b"websocket" or config is None:
            return None  # served as plain HTTP (RFC 9110 §7.8 lets a server ignore it)
        try:
            upgrade = ws.parse_upgrade_request(
                request.method, request.http_version, request.raw_headers
            )
        except ws.HandshakeError as exc:
            self._refuse_upgrade(exc)
            return False
        if self.cycle is not None or self.pipeline:
            self._refuse_upgrade(ws.HandshakeError("upgrade request behind pipelined requests"))
            return False
        session = self.websocket = WebSocketSession(self, cycle, upgrade, config)
        request.websocket_channel = session
        request.switching = True  # the parser hands back the bytes after the head
        return True

    def _refuse_upgrade(self, exc: ws.HandshakeError) -> None:
        self.parser_failed = True
        head = serialize_head(
            exc.status,
            [*exc.headers, (b"content-length", b"0")],
            self.server.preamble.value,
            False,
        )
        self.write(head)
        self.close(linger=True)

    def on_request_body(self, data: bytes) -> None:
        parsing = self.parsing
        if parsing is not None:
            parsing.feed_body(data)
            if self.timeout_kind == BODY_TIMEOUT:
                self.deadline = self.loop.time() + self.server.body_timeout

    def on_request_complete(self) -> None:
        parsing = self.parsing
        if parsing is not None:
            self.parsing = None
            parsing.end_body()
            if self.timeout_kind == BODY_TIMEOUT:
                self.deadline, self.timeout_kind = 0.0, NO_TIMEOUT
            if parsing.response_complete and self.cycle is None:
                self._become_idle()

    # -- cycles --------------------------------------------------------------------------

    def cycle_finished(self, cycle: RequestCycle) -> None:
        server = self.server
        server.requests_served += 1
        if server.observer is not None:
            server.observer.request_finished(cycle)
        if self.transport is None:
            return
        if not cycle.keep_alive:
            self.close(linger=not cycle.body_complete or self.parser_failed)
            return
        self.cycle = None
        if self.pipeline:
            cycle = self.cycle = self.pipeline.popleft()
            server.runner(cycle)
            if not self.pipeline:
                self._resume(PAUSE_PIPELINE)
        elif self.pending_error is not None:
            self.write(self.pending_error)
            self.close(linger=True)
        elif self.closing:
            self.close()
        else:
            if self.read_paused:
                # The rest of an unread body is read and dropped (bounded by
                # max_body_size and body_timeout); then the next request.
                self._resume(PAUSE_PIPELINE | PAUSE_BODY)
            if self.parsing is not None:
                self._set_deadline(BODY_TIMEOUT, server.body_timeout)
            elif self.parser.in_head:  # the next head is on its way: its clock runs now
                self._set_deadline(HEAD_TIMEOUT, server.header_timeout)
            else:
                self.timeout_kind = IDLE_TIMEOUT
                self.deadline = self.loop.time() + server.keepalive_timeout

    def _become_idle(self) -> None:
        if self.parser.in_head:
            self._set_deadline(HEAD_TIMEOUT, self.server.header_timeout)
        else:
            self._set_deadline(IDLE_TIMEOUT, self.server.keepalive_timeout)

    @property
    def idle(self) -> bool:
        return self.cycle is None and self.parsing is None and not self.pipeline

    # -- errors and timeouts -------------------------------------------------------------

    def protocol_error(self, error: ProtocolError) -> None:
        """Answer ``error`` after the responses still owed, then close.

        The requests before the bad one are answered normally (keep-alive and all):
        only the error answer closes the connection.
        """
        self.parser_failed = True
        self._pause(PAUSE_PIPELINE)
        self.deadline, self.timeout_kind = 0.0, NO_TIMEOUT
        error_log.debug(
            "refused a request from %s: %s (%d)", self.client, error.detail, error.status
        )
        parsing = self.parsing
        self.parsing = None
        if parsing is not None:
            if parsing is self.cycle:
                parsing.fail_body(error)  # its handler answers (or already did); then close
                return
            if parsing.response_complete:
                self.close()  # the request was already answered; just stop reading it
                return
            if parsing in self.pipeline:
                self.pipeline.remove(parsing)
        answer = error_response(error.status, self.server.preamble.value)
        observer = self.server.observer
        if observer is not None:
            method = parsing.request.method if parsing is not None else error.method
            observer.request_refused(self, method, error.status)
        if self.cycle is None:
            self.write(answer)
            self.close(linger=True)
        else:
            self.pending_error = answer

    def check_deadline(self, now: float) -> None:
        if self.deadline and now >= self.deadline:
            kind = self.timeout_kind
            self.deadline, self.timeout_kind = 0.0, NO_TIMEOUT
            if kind == IDLE_TIMEOUT or (kind == HEAD_TIMEOUT and not self.parser.in_head):
                self.close()
            elif kind == HEAD_TIMEOUT:
                self.protocol_error(RequestTimeout("request head not received in time"))
            elif kind == BODY_TIMEOUT:
                self.protocol_error(RequestTimeout("request body not received in time"))
            elif kind == SEND_TIMEOUT:
                self.abort()
            elif kind == LINGER_TIMEOUT and self.transport is not None:
                self.transport.close()

    def _set_deadline(self, kind: int, seconds: float) -> None:
        self.timeout_kind = kind
        self.deadline = self.loop.time() + seconds if seconds > 0 else 0.0

    # -- reading and writing -------------------------------------------------------------

    def _pause(self, reason: int) -> None:
        if not self.read_paused and self.transport is not None:
            self.transport.pause_reading()
        self.read_paused |= reason

    def _resume(self, reasons: int) -> None:
        if self.read_paused & reasons:
            self.read_paused &= ~reasons
            if not self.read_paused and self.transport is not None and not self.parser_failed:
                self.transport.resume_reading()

    def pause_reading_for_body(self) -> None:
        self._pause(PAUSE_BODY)
        if self.timeout_kind == BODY_TIMEOUT:  # the handler is slow, not the client
            self.deadline, self.timeout_kind = 0.0, NO_TIMEOUT

    def resume_reading_for_body(self) -> None:
        if self.read_paused & PAUSE_BODY:
            self._resume(PAUSE_BODY)
            if self.parsing is not None and self.timeout_kind == NO_TIMEOUT:
                self._set_deadline(BODY_TIMEOUT, self.server.body_timeout)

    def write(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None:
            transport.write(data)

    async def drain(self) -> None:
        """Wait while the transport's write buffer is above its high-water mark."""
        if self.write_paused and self.transport is not None:
            waiter = self.loop.create_future()
            self.drain_waiters.append(waiter)
            await waiter

    def _wake_drainers(self) -> None:
        waiters, self.drain_waiters = self.drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def close(self, linger: bool = False) -> None:
        """Close after what is buffered is sent (bounded by ``send_timeout``).

        ``linger``: the client may still be sending; half-close (FIN after our
        answer), drop whatever else it sends for ``LINGER_SECONDS``, then close.
        """
        self.closing = True
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if linger and transport.can_write_eof():
            self.parser_failed = True  # nothing more is parsed; reads are dropped
            transport.write_eof()
            self.read_paused = 0
            transport.resume_reading()
            self._set_deadline(LINGER_TIMEOUT, LINGER_SECONDS)
            return
        if transport.get_write_buffer_size():
            self._set_deadline(SEND_TIMEOUT, self.server.send_timeout)
        transport.close()

    def abort(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.abort()

    def shutdown(self, idle_grace: float = 0.0, fresh_grace: float = 0.0) -> None:
        """Graceful stop: close after the response in progress; an idle connection
        at once, or after ``idle_grace`` s if no request comes before; a WebSocket
        gets close 1001.

        A fresh connection (accepted, no request yet) waits ``fresh_grace`` s for its
        first request instead: its client has sent it or is sending it, and unlike a
        request on a reused keep-alive connection, a first request that meets a closed
        connection is not retried by clients. Either way the answer says ``close``.
        """
        self.closing = True
        if self.websocket is not None:
            self.websocket.going_away()
            return
        if self.idle and not self.parser.in_head:
            grace = fresh_grace if self.timeout_kind == HEAD_TIMEOUT else idle_grace
            if grace > 0:
                self._set_deadline(IDLE_TIMEOUT, grace)
            else:
                self.close()


def _address(value: object) -> Address | None:
    if isinstance(value, tuple) and len(value) >= 2:
        return Address(str(value[0]), int(value[1]))
    return None
