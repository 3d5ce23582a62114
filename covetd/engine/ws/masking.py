"""XOR masking of client frame payloads (RFC 6455 §5.3), in pure Python, measured.

``payload[i] ^ mask[i % 4]`` byte by byte costs ~60 ns a byte in CPython. Two
whole-buffer ways do the same in C loops (figures from loadtests/ws_codec_bench.py's
machine, µs per call):

    size      int.from_bytes XOR   4 x bytes.translate on strided slices
    16 B           0.4                     0.9
    1 KiB          2.4                     2.4
    64 KiB       190                     102
    1 MiB       3200                    1620

Big integers win on small payloads (fewer calls) and lose past a few KiB (the
byte↔digit conversions leave the cache), so ``unmask`` picks by size.
"""

from __future__ import annotations

__all__ = ["rotate", "unmask"]

# bytes.translate tables: _XOR[k][b] == b ^ k.
_XOR = [bytes(b ^ k for b in range(256)) for k in range(256)]
_TRANSLATE_FROM = 2048


def unmask(data: bytes, mask: bytes) -> bytes:
    """``data`` XOR the 4-byte ``mask`` repeated (masking and unmasking are the same)."""
    size = len(data)
    if size < _TRANSLATE_FROM:
        if not size:
            return b""
        key = (mask * ((size >> 2) + 1))[:size]
        return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(
            size, "little"
        )
    out = bytearray(data)
    xor = _XOR
    out[0::4] = data[0::4].translate(xor[mask[0]])
    out[1::4] = data[1::4].translate(xor[mask[1]])
    out[2::4] = data[2::4].translate(xor[mask[2]])
    out[3::4] = data[3::4].translate(xor[mask[3]])
    return bytes(out)


def rotate(mask: bytes, consumed: int) -> bytes:
    """The mask to apply to the bytes that follow ``consumed`` bytes of a payload."""
    shift = consumed & 3
    return mask[shift:] + mask[:shift] if shift else mask
