"""What ``Connection.receive_data`` reports: one object per message or control frame.

Fragments are never reported: a message is reported once, whole, after its last frame
(its size bounded by ``max_message_size``). Plain slotted dataclasses: an echo server
creates one per message, so they stay as cheap to build as a tuple.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BytesMessage",
    "CloseReceived",
    "ConnectionFailed",
    "Event",
    "Ping",
    "Pong",
    "TextMessage",
]


@dataclass(slots=True)
class TextMessage:
    """A complete text message, decoded (its UTF-8 was checked as it arrived)."""

    data: str


@dataclass(slots=True)
class BytesMessage:
    """A complete binary message."""

    data: bytes


@dataclass(slots=True)
class Ping:
    """A ping; answer it with ``send_pong(payload)`` (RFC 6455 §5.5.2)."""

    payload: bytes


@dataclass(slots=True)
class Pong:
    """A pong (solicited or not: RFC 6455 §5.5.3 allows unsolicited ones)."""

    payload: bytes


@dataclass(slots=True)
class CloseReceived:
    """The peer's close frame: ``code`` is 1005 when it carried none (RFC 6455 §7.1.5).

    Always the last event of a connection that was open: anything after it is ignored.
    Answer with ``send_close()`` (which echoes ``code``), then close the transport.
    """

    code: int
    reason: str


@dataclass(slots=True)
class ConnectionFailed:
    """The peer broke the protocol (RFC 6455 §7.1.7): the last event, ever.

    Write ``close_frame`` (empty when a close frame was already sent), then close the
    transport. ``code`` and ``reason`` are the close frame's; ``reason`` says what the
    peer did wrong.
    """

    code: int
    reason: str
    close_frame: bytes


Event = TextMessage | BytesMessage | Ping | Pong | CloseReceived | ConnectionFailed
