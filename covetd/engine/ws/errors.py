"""Errors of the WebSocket layer, each carrying its answer on the wire.

Two families, for the two sides of a WebSocket's life:

- ``HandshakeError``: the upgrade request is refused; the engine answers it with an
  ordinary HTTP response (``status``, ``headers``) and the connection stays HTTP.
- ``WebSocketError``: the peer broke RFC 6455 or RFC 7692 after the upgrade; the
  connection is failed (RFC 6455 §7.1.7) with a close frame carrying ``close_code``.
  ``Connection`` is the one place that turns them into that frame.

``LocalProtocolError`` is neither: the local side used a connection out of turn (sent
a message after its close frame). It is a bug of the caller, never of the peer.
"""

from __future__ import annotations

__all__ = [
    "HandshakeError",
    "InvalidPayload",
    "LocalProtocolError",
    "MessageTooBig",
    "PolicyViolation",
    "ProtocolError",
    "UpgradeRequired",
    "WebSocketError",
]


class HandshakeError(Exception):
    """The upgrade request is refused: answer ``status`` with ``headers`` (RFC 6455 §4.2.2)."""

    status: int = 400

    def __init__(
        self,
        reason: str,
        status: int | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        if status is not None:
            self.status = status
        self.headers: list[tuple[bytes, bytes]] = headers if headers is not None else []


class UpgradeRequired(HandshakeError):
    """426: the request did not ask for WebSocket version 13 (RFC 6455 §4.4).

    Its headers name what the server speaks; RFC 9110 §15.5.22 wants ``Upgrade`` in a
    426 and RFC 9110 §7.8 ``upgrade`` in ``Connection`` beside it.
    """

    status = 426

    def __init__(self, reason: str) -> None:
        super().__init__(
            reason,
            headers=[
                (b"upgrade", b"websocket"),
                (b"connection", b"upgrade"),
                (b"sec-websocket-version", b"13"),
            ],
        )


class WebSocketError(Exception):
    """The peer broke the protocol: fail the connection with ``close_code``."""

    close_code: int = 1002

    def __init__(self, reason: str, close_code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if close_code is not None:
            self.close_code = close_code


class ProtocolError(WebSocketError):
    """1002: a frame or a sequence of frames that RFC 6455 forbids."""

    close_code = 1002


class InvalidPayload(WebSocketError):
    """1007: a text message (or close reason) that is not UTF-8, or corrupt deflate data."""

    close_code = 1007


class PolicyViolation(WebSocketError):
    """1008: a message the server refuses for a reason of its own (RFC 6455 §7.4.1)."""

    close_code = 1008


class MessageTooBig(WebSocketError):
    """1009: a message larger than ``max_message_size``, on the wire or once inflated."""

    close_code = 1009


class LocalProtocolError(Exception):
    """The local side used the connection out of turn (e.g. sent after its close)."""
