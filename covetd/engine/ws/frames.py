"""Frames (RFC 6455 §5): the reader (client → server bytes) and the writer (server → client).

      0                   1                   2                   3
      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
     +-+-+-+-+-------+-+-------------+-------------------------------+
     |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
     |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
     |N|V|V|V|       |S|             |   (if payload len==126/127)   |
     | |1|2|3|       |K|             |                               |
     +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
     |     Extended payload length continued, if payload len == 127  |
     + - - - - - - - - - - - - - - - +-------------------------------+
     |                               |Masking-key, if MASK set to 1  |
     +-------------------------------+-------------------------------+
     | Masking-key (continued)       |          Payload Data         |
     +-------------------------------- - - - - - - - - - - - - - - - +

What the reader refuses, as soon as the bytes that show it have arrived:

    1002  a client frame without MASK (§5.1); RSV2/RSV3; RSV1 without permessage-deflate,
          or on a control or continuation frame (RFC 7692 §6.1); opcodes 3-7 and 11-15
          (§5.2); a control frame with FIN clear or more than 125 bytes (§5.5); a
          continuation without a message, or a text/binary frame inside one (§5.4); a
          payload length not in the minimal form, or a 64-bit one with its top bit set
          (§5.2: "the minimal number of bytes MUST be used"; wsproto refuses them too,
          and Autobahn never sends them); a malformed close payload (§5.5.1, §7.4)
    1007  a text message that is not UTF-8, at the first byte that shows it, across
          frame and read boundaries (§8.1); a close reason that is not UTF-8; corrupt
          deflate data
    1009  a message over ``max_message_size``: on the wire as soon as a frame header
          announces it, once inflated as soon as inflating passes it

Invariants: the reader holds at most one unfinished header or control frame (≤ 131
bytes) plus the message in progress (≤ ``max_message_size``): a data frame's payload
is unmasked, inflated and decoded as its bytes arrive, never kept raw. After a close
frame it reads nothing more; after a ``WebSocketError`` it must not be fed again.
"""

from __future__ import annotations

from struct import Struct

from .close import close_payload, parse_close_payload
from .deflate import PerMessageDeflate
from .errors import InvalidPayload, MessageTooBig, ProtocolError
from .events import BytesMessage, CloseReceived, Event, Ping, Pong, TextMessage
from .masking import rotate, unmask
from .utf8 import Utf8Decoder

__all__ = [
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONTINUATION",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "FrameReader",
    "close_frame",
    "control_frame",
    "data_frame",
]

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

_FIN = 0x80
_RSV1 = 0x40
_MASKED = 0x80
_TEXT_FRAME = _FIN | OP_TEXT  # a whole text message in one frame: the common case
_BINARY_FRAME = _FIN | OP_BINARY


class FrameReader:
    """Client bytes in, whole messages and control frames out (as ``events``).

    ``feed`` appends what completes to the caller's list, so that the events before a
    ``WebSocketError`` are kept when it raises.
    """

    __slots__ = (
        "_buffer",
        "_chunks",
        "_compressed",
        "_deflate",
        "_last",
        "_mask",
        "_opcode",
        "_remaining",
        "_size",
        "_text",
        "_texts",
        "_wire_size",
        "closed",
        "max_message_size",
    )

    def __init__(self, max_message_size: int, deflate: PerMessageDeflate | None = None) -> None:
        if max_message_size < 1:
            raise ValueError("max_message_size must be positive")
        self.max_message_size = max_message_size
        self._deflate = deflate
        self.closed = False  # a close frame was read: nothing after it is
        self._buffer = b""  # an unfinished header, or control frame
        # The data frame whose payload is arriving:
        self._remaining = 0  # its payload bytes still to come
        self._mask = b""  # the mask for the next of them
        self._last = False  # it ends its message (FIN)
        # The message in progress (``_opcode`` 0: none):
        self._opcode = 0
        self._compressed = False
        self._wire_size = 0  # payload bytes on the wire so far
        self._size = 0  # bytes once inflated, so far
        self._text: Utf8Decoder | None = None
        self._texts: list[str] = []
        self._chunks: list[bytes] = []

    def feed(self, data: bytes, events: list[Event]) -> None:
        """Read ``data``; append to ``events`` what it completes. Raises ``WebSocketError``."""
        if self.closed:
            return
        if self._buffer:
            data = self._buffer + data
            self._buffer = b""
        pos = 0
        end = len(data)
        while pos < end:
            if self._remaining:
                pos = self._read_payload(data, pos, events)
                continue
            if end - pos < 2:
                break
            first = data[pos]
            second = data[pos + 1]
            # Hot path (inlined, measured): one masked whole text or binary message.
            if (first != _TEXT_FRAME and first != _BINARY_FRAME) or self._opcode or second < 128:
                self._check_header(first, second)
            length = second & 0x7F
            if length < 126:
                start = pos + 6
            elif length == 126:
                start = pos + 8
                if pos + 4 > end:
                    break
                length = (data[pos + 2] << 8) | data[pos + 3]
                if length < 126:
                    raise ProtocolError("payload length not in its minimal form")
            else:
                start = pos + 14
                if pos + 10 > end:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                if length >> 63:
                    raise ProtocolError("64-bit payload length with its top bit set")
                if length < 65536:
                    raise ProtocolError("payload length not in its minimal form")
            opcode = first & 0x0F
            if opcode < OP_CLOSE and self._wire_size + length > self.max_message_size:
                raise MessageTooBig(f"message over {self.max_message_size} bytes")
            if start > end:
                break
            mask = data[start - 4 : start]
            stop = start + length
            if stop > end:
                if opcode >= OP_CLOSE:
                    break  # wait for the whole control frame
                self._start_frame(first, length)
                self._remaining = length
                self._mask = mask
                pos = start
                continue
            payload = unmask(data[start:stop], mask)
            pos = stop
            if first == _TEXT_FRAME:
                try:
                    events.append(TextMessage(payload.decode("utf-8")))
                except UnicodeDecodeError:
                    raise InvalidPayload("invalid UTF-8 in a text message") from None
            elif first == _BINARY_FRAME:
                events.append(BytesMessage(payload))
            elif opcode >= OP_CLOSE:
                self._read_control(opcode, payload, events)
                if self.closed:
                    return
            else:
                self._start_frame(first, length)
                self._add_data(payload, True, events)
        if pos < end:
            self._buffer = data[pos:]

    def _check_header(self, first: int, second: int) -> None:
        """Raise for the first rule the header's first two bytes break."""
        opcode = first & 0x0F
        if not second & _MASKED:
            raise ProtocolError("client frame is not masked")
        if first & 0x70:
            if first & 0x30 or self._deflate is None:
                raise ProtocolError("reserved bit set without an extension defining it")
            if opcode != OP_TEXT and opcode != OP_BINARY:
                raise ProtocolError("RSV1 set on a frame that does not start a message")
        if opcode >= OP_CLOSE:
            if opcode > OP_PONG:
                raise ProtocolError(f"reserved control opcode {opcode:#x}")
            if not first & _FIN:
                raise ProtocolError("fragmented control frame")
            if second & 0x7F > 125:
                raise ProtocolError("control frame payload over 125 bytes")
        elif opcode == OP_CONTINUATION:
            if not self._opcode:
                raise ProtocolError("continuation frame without a message to continue")
        elif opcode > OP_BINARY:
            raise ProtocolError(f"reserved data opcode {opcode:#x}")
        elif self._opcode:
            raise ProtocolError("new message started inside a fragmented message")

    def _start_frame(self, first: int, length: int) -> None:
        opcode = first & 0x0F
        if opcode == OP_CONTINUATION:
            self._wire_size += length
        else:
            self._opcode = opcode
            self._compressed = bool(first & _RSV1)
            self._wire_size = length
            self._size = 0
            self._text = Utf8Decoder() if opcode == OP_TEXT else None
        self._last = bool(first & _FIN)

    def _read_payload(self, data: bytes, pos: int, events: list[Event]) -> int:
        """Take what ``data`` holds of the current frame's payload; the new position."""
        take = min(self._remaining, len(data) - pos)
        mask = self._mask
        chunk = unmask(data[pos : pos + take], mask)
        self._mask = rotate(mask, take)
        self._remaining -= take
        self._add_data(chunk, not self._remaining, events)
        return pos + take

    def _add_data(self, chunk: bytes, frame_done: bool, events: list[Event]) -> None:
        """Inflate, check and keep part of the message; report it after its last byte."""
        last = frame_done and self._last
        if self._compressed:
            deflate = self._deflate
            assert deflate is not None  # RSV1 is refused without it
            budget = self.max_message_size - self._size
            chunk = deflate.inflate(chunk, budget)
            if last:
                chunk += deflate.finish(budget - len(chunk))
            self._size += len(chunk)
        text = self._text
        if text is not None:
            piece = text.decode(chunk, last)
            if piece:
                self._texts.append(piece)
        elif chunk:
            self._chunks.append(chunk)
        if last:
            self._end_message(events)

    def _end_message(self, events: list[Event]) -> None:
        if self._text is not None:
            events.append(TextMessage("".join(self._texts)))
            self._texts = []
            self._text = None
        else:
            events.append(BytesMessage(b"".join(self._chunks)))
            self._chunks = []
        self._opcode = 0
        self._wire_size = 0

    def _read_control(self, opcode: int, payload: bytes, events: list[Event]) -> None:
        if opcode == OP_PING:
            events.append(Ping(payload))
        elif opcode == OP_PONG:
            events.append(Pong(payload))
        else:
            code, reason = parse_close_payload(payload)
            events.append(CloseReceived(code, reason))
            self.closed = True
            self._buffer = b""


# -- the writer: server frames are never masked (§5.1) ---------------------------------

_SHORT_HEADERS = {
    first: [bytes((first, size)) for size in range(126)]
    for first in (_TEXT_FRAME, _BINARY_FRAME, _TEXT_FRAME | _RSV1, _BINARY_FRAME | _RSV1)
}
_MEDIUM = Struct("!BBH")
_LONG = Struct("!BBQ")


def data_frame(opcode: int, payload: bytes, compressed: bool = False) -> bytes:
    """One whole message in one frame (FIN set); RSV1 when ``payload`` is deflated."""
    first = _FIN | opcode | (_RSV1 if compressed else 0)
    size = len(payload)
    if size < 126:
        return _SHORT_HEADERS[first][size] + payload
    if size < 65536:
        return _MEDIUM.pack(first, 126, size) + payload
    return _LONG.pack(first, 127, size) + payload


def control_frame(opcode: int, payload: bytes = b"") -> bytes:
    """A ping, pong or close frame; control payloads are at most 125 bytes (§5.5)."""
    if len(payload) > 125:
        raise ValueError("control frame payload over 125 bytes")
    return bytes((_FIN | opcode, len(payload))) + payload


def close_frame(code: int | None = 1000, reason: str = "") -> bytes:
    """A close frame; ``reason`` is cut to fit on a UTF-8 boundary (see close.py)."""
    return control_frame(OP_CLOSE, close_payload(code, reason))
