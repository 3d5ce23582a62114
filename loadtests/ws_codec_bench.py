"""Micro-benchmark of the sans-IO WebSocket codec: µs per echo, without sockets.

One echo = ``Connection.receive_data`` of one masked client frame (unmask, checks,
UTF-8 for text, the event) + ``send_text``/``send_bytes`` of the same message (the
frame bytes). Messages of 16 bytes and 64 KiB, text and binary; then with
permessage-deflate negotiated (context takeover, level 6), on compressible text.

    python loadtests/ws_codec_bench.py [--seconds 0.5]

Prints the best of 5 timed rounds for each case, in CPU time of this process (so that
other load on a shared machine inflates the figures less). Informational: nothing
asserts on it.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from covetd.engine import ws
from covetd.engine.ws.masking import unmask


def client_frame(opcode: int, payload: bytes, rsv1: bool = False) -> bytes:
    """One masked client frame, as a browser sends it (FIN set)."""
    first = 0x80 | opcode | (0x40 if rsv1 else 0)
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", first, 0x80 | size)
    elif size < 65536:
        head = struct.pack("!BBH", first, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, size)
    mask = os.urandom(4)
    return head + mask + unmask(payload, mask)


def deflated(payload: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return (compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


def per_call(step: Callable[[], object], seconds: float) -> float:
    """Best µs per call over 5 rounds of about ``seconds`` each."""
    calls = 1
    while True:  # calibrate: enough calls for a round to last ``seconds``
        start = time.process_time()
        for _ in range(calls):
            step()
        elapsed = time.process_time() - start
        if elapsed > seconds / 10:
            break
        calls *= 4
    calls = max(1, int(calls * seconds / elapsed))
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for _ in range(calls):
            step()
        best = min(best, (time.process_time() - start) / calls)
    return best * 1e6


def echo_step(conn: ws.Connection, frame: bytes) -> Callable[[], object]:
    def step() -> object:
        out = b""
        for event in conn.receive_data(frame):
            if isinstance(event, ws.TextMessage):
                out = conn.send_text(event.data)
            elif isinstance(event, ws.BytesMessage):
                out = conn.send_bytes(event.data)
        return out

    return step


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="per timed round")
    args = parser.parse_args()
    sizes = {"16 B": 16, "64 KiB": 64 * 1024}
    print(f"{'case':40} {'µs/echo':>10}")
    for label, size in sizes.items():
        text = ("abcdefghijklmnop" * (size // 16))[:size]
        binary = os.urandom(size)
        for kind, frame in (
            ("text", client_frame(0x1, text.encode())),
            ("binary", client_frame(0x2, binary)),
        ):
            conn = ws.Connection(max_message_size=1 << 20)
            micros = per_call(echo_step(conn, frame), args.seconds)
            print(f"{'echo ' + kind + ' ' + label:40} {micros:10.2f}")
    for label, size in sizes.items():
        text = ('{"room":"lobby","user":"alice","n":%d}' * (size // 32 + 1))[:size]
        deflate = ws.negotiate_deflate(
            [ws.ExtensionOffer("permessage-deflate", (("server_no_context_takeover", None),))],
            ws.DeflateConfig(min_size=0, max_window_bits=15, memory_level=8),
        )
        assert deflate is not None
        conn = ws.Connection(max_message_size=1 << 20, deflate=deflate)
        # The client keeps no context either, so the same frame can be replayed.
        frame = client_frame(0x1, deflated(text.encode()), rsv1=True)
        micros = per_call(echo_step(conn, frame), args.seconds)
        print(f"{'echo deflated text ' + label + ' (no takeover)':40} {micros:10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
