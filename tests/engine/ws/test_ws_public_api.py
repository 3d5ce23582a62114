"""The WebSocket core's surface for the engine is exactly ``covetd.engine.ws.__all__``."""

from __future__ import annotations

from pathlib import Path

import covetd.engine.ws as ws

PUBLIC_API = [
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


def test_all_is_pinned() -> None:
    assert ws.__all__ == PUBLIC_API
    for name in PUBLIC_API:
        assert getattr(ws, name) is not None, name


def test_errors_carry_their_wire_answer() -> None:
    assert (ws.ProtocolError("x").close_code, ws.InvalidPayload("x").close_code) == (1002, 1007)
    assert (ws.PolicyViolation("x").close_code, ws.MessageTooBig("x").close_code) == (1008, 1009)
    assert ws.WebSocketError("x", 1011).close_code == 1011
    assert ws.HandshakeError("x").status == 400
    assert ws.HandshakeError("x", 403).status == 403
    assert ws.UpgradeRequired("x").status == 426
    assert issubclass(ws.UpgradeRequired, ws.HandshakeError)
    for error in (ws.ProtocolError, ws.InvalidPayload, ws.PolicyViolation, ws.MessageTooBig):
        assert issubclass(error, ws.WebSocketError)


def test_the_package_touches_no_io() -> None:
    # STYLE habit 1: nothing here imports asyncio, sockets, selectors or a loop.
    for path in Path(ws.__file__).parent.glob("*.py"):
        source = path.read_text()
        for module in ("asyncio", "socket", "selectors", "uvloop"):
            assert f"import {module}" not in source, (path.name, module)
