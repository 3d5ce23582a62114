"""Canned client frames and small drivers for the sans-IO WebSocket tests."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import NamedTuple

from covetd.engine.ws import Connection, ConnectionFailed, Event, PerMessageDeflate

MASK = b"\x37\xfa\x21\x3d"  # the mask of RFC 6455 §5.7's examples

TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def xor(data: bytes, mask: bytes) -> bytes:
    """The reference masking, byte by byte (what covetd's fast one must equal)."""
    return bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = MASK,
    length: str | None = None,
) -> bytes:
    """A client frame. ``rsv`` is the RSV bits (0x40, 0x20, 0x10); ``mask=None`` sends it
    unmasked; ``length`` forces a length form ("7", "16" or "64") whatever the size."""
    first = (0x80 if fin else 0) | rsv | opcode
    masked = 0x80 if mask is not None else 0
    size = len(payload)
    form = length or ("7" if size < 126 else "16" if size < 65536 else "64")
    if form == "7":
        head = bytes((first, masked | size))
    elif form == "16":
        head = struct.pack("!BBH", first, masked | 126, size)
    else:
        head = struct.pack("!BBQ", first, masked | 127, size)
    if mask is None:
        return head + payload
    return head + mask + xor(payload, mask)


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return code.to_bytes(2, "big") + reason


def receive(
    data: bytes | Iterable[bytes],
    *,
    max_message_size: int = 1 << 20,
    deflate: PerMessageDeflate | None = None,
) -> list[Event]:
    """Every event a new connection reports for ``data`` (or for its pieces, in order)."""
    conn = Connection(max_message_size=max_message_size, deflate=deflate)
    pieces = [data] if isinstance(data, bytes) else data
    events: list[Event] = []
    for piece in pieces:
        events += conn.receive_data(piece)
    return events


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def failure(events: list[Event]) -> ConnectionFailed:
    """The ``ConnectionFailed`` that must end ``events``."""
    assert events, "no events"
    last = events[-1]
    assert isinstance(last, ConnectionFailed), events
    return last


class ServerFrame(NamedTuple):
    fin: bool
    rsv: int
    opcode: int
    payload: bytes


def server_frames(data: bytes) -> list[ServerFrame]:
    """Split bytes covetd wrote into frames, checking they are unmasked (§5.1)."""
    frames = []
    pos = 0
    while pos < len(data):
        first, second = data[pos], data[pos + 1]
        assert not second & 0x80, "a server frame must not be masked"
        size = second & 0x7F
        pos += 2
        if size == 126:
            (size,) = struct.unpack_from("!H", data, pos)
            pos += 2
        elif size == 127:
            (size,) = struct.unpack_from("!Q", data, pos)
            pos += 8
        frames.append(
            ServerFrame(bool(first & 0x80), first & 0x70, first & 0x0F, data[pos : pos + size])
        )
        pos += size
    return frames
