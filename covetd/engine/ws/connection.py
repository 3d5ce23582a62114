"""One server-side WebSocket connection after the handshake: bytes in, events out;
messages in, bytes out. The close handshake is the only state (RFC 6455 §7).

    state           receive_data                      send_text/bytes/ping/pong  send_close
    --------------  --------------------------------  -------------------------  ----------
    OPEN            events; close frame →             frames                     → CLOSING
                      CLOSE_RECEIVED; error → CLOSED
    CLOSE_RECEIVED  [] (data after a close: ignored)  frames                     echo → CLOSED
    CLOSING         only CloseReceived (→ CLOSED);    LocalProtocolError         b""
                      error → CLOSED, no frame
    CLOSED          []                                LocalProtocolError         b""

Invariants: CLOSED means "close the TCP connection once what was returned is
written" (the server closes first, §7.1.1); whoever closed first, exactly one close
frame is sent; a protocol error is reported once, as the ``ConnectionFailed`` event
that carries the close frame to send (§7.1.7), and nothing is parsed after it.
Nothing here answers on its own: a ``Ping`` waits for the caller's ``send_pong``.
"""

from __future__ import annotations

import enum

from .deflate import PerMessageDeflate
from .errors import LocalProtocolError, WebSocketError
from .events import CloseReceived, ConnectionFailed, Event
from .frames import (
    OP_BINARY,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameReader,
    close_frame,
    control_frame,
    data_frame,
)

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "Connection", "State"]

DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024


class State(enum.Enum):
    OPEN = "open"
    CLOSE_RECEIVED = "close-received"  # the peer's close frame came; ours is owed
    CLOSING = "closing"  # ours was sent; the peer's is awaited
    CLOSED = "closed"  # both were exchanged, or the connection failed


class Connection:
    """The WebSocket protocol of one accepted connection, server side, without I/O.

    ``close_code`` and ``close_reason`` are ``None`` while the connection is open, then
    those of the first close frame of the handshake (the peer's, or ours) or of the
    failure (1002, 1007, 1009); 1005 stands for a close frame without a code.
    """

    __slots__ = ("_deflate", "_reader", "close_code", "close_reason", "state")

    def __init__(
        self,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        deflate: PerMessageDeflate | None = None,
    ) -> None:
        self._reader = FrameReader(max_message_size, deflate)
        self._deflate = deflate
        self.state = State.OPEN
        self.close_code: int | None = None
        self.close_reason: str | None = None

    # -- receiving -------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Event]:
        """The events ``data`` completes, in order; see the module's state table."""
        if self.state is not State.OPEN:
            return self._receive_closing(data) if self.state is State.CLOSING else []
        events: list[Event] = []
        try:
            self._reader.feed(data, events)
        except WebSocketError as error:
            events.append(self._fail(error, close_frame(error.close_code, error.reason)))
            return events
        if self._reader.closed:
            close = events[-1]
            assert isinstance(close, CloseReceived)
            self.state = State.CLOSE_RECEIVED
            self.close_code, self.close_reason = close.code, close.reason
        return events

    def _receive_closing(self, data: bytes) -> list[Event]:
        # Our close frame is out: messages and pings are read (to find the peer's
        # close frame) but no longer reported; an error ends it without another frame.
        events: list[Event] = []
        try:
            self._reader.feed(data, events)
        except WebSocketError as error:
            return [self._fail(error, b"")]
        if not self._reader.closed:
            return []
        self.state = State.CLOSED
        return [events[-1]]

    def _fail(self, error: WebSocketError, frame: bytes) -> ConnectionFailed:
        self.state = State.CLOSED
        self.close_code, self.close_reason = error.close_code, error.reason
        return ConnectionFailed(error.close_code, error.reason, frame)

    # -- sending -----------------------------------------------------------------

    def send_text(self, text: str) -> bytes:
        """A text message, in one frame (compressed when negotiated and worth it)."""
        return self._send_message(OP_TEXT, text.encode("utf-8"))

    def send_bytes(self, data: bytes) -> bytes:
        """A binary message, in one frame (compressed when negotiated and worth it)."""
        return self._send_message(OP_BINARY, data)

    def send_ping(self, payload: bytes = b"") -> bytes:
        """A ping (payload at most 125 bytes)."""
        self._check_sending("ping")
        return control_frame(OP_PING, payload)

    def send_pong(self, payload: bytes = b"") -> bytes:
        """A pong: the answer to a ``Ping`` carries its payload (RFC 6455 §5.5.3)."""
        self._check_sending("pong")
        return control_frame(OP_PONG, payload)

    def send_close(self, code: int | None = None, reason: str = "") -> bytes:
        """Our close frame: starts the close handshake (``code`` defaults to 1000), or
        answers the peer's (``code`` defaults to an echo of the peer's, §5.5.1).

        Once a close frame was sent (or the connection failed) this returns ``b""``, so
        every path that ends a connection may call it. ``reason`` is cut to 123 bytes on
        a UTF-8 boundary. Raises ``ValueError`` for a code that cannot be sent (1005,
        1006, 1015, reserved ranges).
        """
        state = self.state
        if state is State.OPEN:
            code = 1000 if code is None else code
            frame = close_frame(code, reason)
            self.state = State.CLOSING
            self.close_code, self.close_reason = code, reason
            return frame
        if state is State.CLOSE_RECEIVED:
            # An empty close reported 1005, which close_frame turns back into an empty one.
            frame = close_frame(self.close_code if code is None else code, reason)
            self.state = State.CLOSED
            return frame
        return b""

    def _send_message(self, opcode: int, payload: bytes) -> bytes:
        if self.state is not State.OPEN:
            self._check_sending("message")
        deflate = self._deflate
        if deflate is not None and len(payload) >= deflate.min_size:
            return data_frame(opcode, deflate.compress(payload), True)
        return data_frame(opcode, payload)

    def _check_sending(self, what: str) -> None:
        if self.state is State.CLOSING or self.state is State.CLOSED:
            raise LocalProtocolError(f"cannot send a {what} after the close frame")
