"""Close frame payloads: status codes and reasons (RFC 6455 §5.5.1, §7.4).

A close payload is empty, or a 2-byte big-endian code followed by a UTF-8 reason, the
whole at most 125 bytes (a control frame's limit, §5.5).

Codes that may appear on the wire (both directions): 1000-1003, 1007-1011, the IANA
registered 1012-1014 (service restart, try again later, bad gateway), and 3000-4999
(libraries, frameworks, applications). Never on the wire: below 1000, 1004 (reserved),
1005 (no status received), 1006 (abnormal closure), 1015 (TLS failure), 1016-2999
(reserved for future RFCs), 5000 and up.
"""

from __future__ import annotations

from .errors import InvalidPayload, ProtocolError

__all__ = [
    "ABNORMAL_CLOSURE",
    "MAX_REASON_BYTES",
    "NO_STATUS_RECEIVED",
    "close_payload",
    "is_wire_code",
    "parse_close_payload",
]

NO_STATUS_RECEIVED = 1005  # what a close frame without a payload reports (§7.1.5)
ABNORMAL_CLOSURE = 1006  # the TCP connection ended without a close frame (§7.1.5)
MAX_REASON_BYTES = 123  # 125 bytes of control payload less the code

_WIRE_CODES = frozenset(range(1000, 1004)) | frozenset(range(1007, 1015))


def is_wire_code(code: int) -> bool:
    """Whether ``code`` may be sent or received in a close frame."""
    return code in _WIRE_CODES or 3000 <= code <= 4999


def parse_close_payload(payload: bytes) -> tuple[int, str]:
    """``(code, reason)`` of a received close frame; 1005 when it has no payload."""
    if not payload:
        return NO_STATUS_RECEIVED, ""
    if len(payload) == 1:
        raise ProtocolError("close frame payload of one byte")
    code = int.from_bytes(payload[:2], "big")
    if not is_wire_code(code):
        raise ProtocolError(f"invalid close code {code}")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidPayload("close reason is not UTF-8") from None
    return code, reason


def close_payload(code: int | None, reason: str = "") -> bytes:
    """The payload of a close frame to send; ``reason`` is cut on a character boundary.

    ``None`` or 1005 (the answer to a close frame that carried no code) gives an empty
    payload, which cannot carry a reason.
    """
    if code is None or code == NO_STATUS_RECEIVED:
        return b""
    if not is_wire_code(code):
        raise ValueError(f"close code {code} cannot be sent")
    encoded = reason.encode("utf-8")
    if len(encoded) > MAX_REASON_BYTES:
        encoded = encoded[:MAX_REASON_BYTES].decode("utf-8", "ignore").encode("utf-8")
    return code.to_bytes(2, "big") + encoded
