"""Sans-IO WebSocket, server side: RFC 6455 with permessage-deflate (RFC 7692).

Nothing in this package touches a socket, a transport or an event loop: the engine
feeds it bytes and writes the bytes it returns. One concept per module:

    handshake.py   the upgrade request's checks, Sec-WebSocket-Accept, the 101 head
    headers.py     the list syntax of Sec-WebSocket-Protocol / -Extensions
    deflate.py     permessage-deflate: config, negotiation, the per-message codec
    connection.py  the connection's state machine: receive_data / send_*
    frames.py      the frame reader and writer (rules → close codes listed there)
    events.py      what receive_data returns
    close.py       close codes and close payloads
    masking.py     fast XOR unmasking
    utf8.py        fail-fast incremental UTF-8
    errors.py      HandshakeError (→ HTTP status) and WebSocketError (→ close code)

The engine's side, in order::

    from covetd.engine import ws

    # 1. An upgrade request's head (from the HTTP/1.1 parser):
    try:
        request = ws.parse_upgrade_request(head.method, head.http_version, head.raw_headers)
    except ws.HandshakeError as exc:
        ...  # answer exc.status with exc.headers (400, or 426 naming version 13)
    # request.subprotocols: tuple[str, ...]  (client's order)
    # request.extensions:   tuple[ExtensionOffer, ...]
    # request.origin:       str | None
    # The application accepts (or the engine answers an HTTP response instead).

    # 2. Accepting:
    deflate = ws.negotiate_deflate(request.extensions, ws.DeflateConfig(...))  # or None
    head_bytes = ws.accept_response(
        request,
        subprotocol="chat",                      # one of request.subprotocols, or None
        extensions=[deflate.response_header] if deflate else [],
        extra_headers=[(b"set-cookie", b"a=b")], # from the app; validated (ValueError)
        preamble=preamble.value,                 # server/date lines, optional
    )
    conn = ws.Connection(max_message_size=..., deflate=deflate)
    transport.write(head_bytes)
    events = conn.receive_data(tail)             # bytes that followed the head, if any

    # 3. Reading: every read of the transport
    for event in conn.receive_data(data):
        match event:
            case ws.TextMessage(text) | ws.BytesMessage(text): ...  # whole messages
            case ws.Ping(payload): transport.write(conn.send_pong(payload))
            case ws.Pong(payload): ...           # keepalive bookkeeping
            case ws.CloseReceived(code, reason):
                transport.write(conn.send_close())   # echoes code; state → CLOSED
                transport.close()
            case ws.ConnectionFailed(code, reason, close_frame):
                transport.write(close_frame)     # 1002 / 1007 / 1009; state → CLOSED
                transport.close()

    # 4. Writing: each returns the bytes of one frame
    conn.send_text(str) / conn.send_bytes(bytes) / conn.send_ping(b"") / conn.send_pong(b"")
    conn.send_close(code=None, reason="")   # 1000 by default; b"" once already sent
    # After send_close from OPEN the state is CLOSING: wait (bounded) for the
    # CloseReceived that turns it CLOSED, then close the transport.

``conn.state`` (``State.OPEN``, ``CLOSE_RECEIVED``, ``CLOSING``, ``CLOSED``),
``conn.close_code`` and ``conn.close_reason`` tell where the close handshake is;
CLOSED always means "close the TCP connection after writing what was returned".
Sending a message after our close frame raises ``LocalProtocolError``.
"""

from __future__ import annotations

from .close import ABNORMAL_CLOSURE, NO_STATUS_RECEIVED
from .connection import DEFAULT_MAX_MESSAGE_SIZE, Connection, State
from .deflate import DeflateConfig, DeflateParams, PerMessageDeflate, negotiate_deflate
from .errors import (
    HandshakeError,
    InvalidPayload,
    LocalProtocolError,
    MessageTooBig,
    PolicyViolation,
    ProtocolError,
    UpgradeRequired,
    WebSocketError,
)
from .events import (
    BytesMessage,
    CloseReceived,
    ConnectionFailed,
    Event,
    Ping,
    Pong,
    TextMessage,
)
from .handshake import UpgradeRequest, accept_key, accept_response, parse_upgrade_request
from .headers import ExtensionOffer

__all__ = [
    "ABNORMAL_CLOSURE",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "NO_STATUS_RECEIVED",
    "BytesMessage",
    "CloseReceived",
    "Connection",
    "ConnectionFailed",
    "DeflateConfig",
    "DeflateParams",
    "Event",
    "ExtensionOffer",
    "HandshakeError",
    "InvalidPayload",
    "LocalProtocolError",
    "MessageTooBig",
    "PerMessageDeflate",
    "Ping",
    "PolicyViolation",
    "Pong",
    "ProtocolError",
    "State",
    "TextMessage",
    "UpgradeRequest",
    "UpgradeRequired",
    "WebSocketError",
    "accept_key",
    "accept_response",
    "negotiate_deflate",
    "parse_upgrade_request",
]
