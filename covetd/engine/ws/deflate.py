"""permessage-deflate (RFC 7692), server side: negotiation and the per-message codec.

Negotiation (§5, §7.1): the server accepts the first ``permessage-deflate`` offer it
can honour and declines the others; an offer with an unknown, repeated or malformed
parameter is declined (§7.1: "MUST decline"), not an error. What the answer says:

    server_no_context_takeover   when offered (MUST, §7.1.1.1) or configured
    client_no_context_takeover   when offered (lets the server drop the inflater's
                                 window between messages) or configured (§7.1.1.2)
    server_max_window_bits=N     offered M: N = min(M, configured) (MUST answer ≤ M,
                                 §7.1.2.1); not offered: the configured value when
                                 below 15 (a server MAY limit itself)
    client_max_window_bits=N     offered M: N = min(M, configured); offered without a
                                 value: the configured value when below 15; not offered:
                                 never (MUST NOT, §7.1.2.2), and the inflater uses 15

Window bits 8 are legal (§7.1.2.1: 8..15) but zlib cannot *deflate* raw data with a
256-byte window (since 1.2.9 it rejects ``wbits=-8``; before it silently used 9).
wsproto and ASP.NET decline such offers; websockets used to fail the handshake. This
codec accepts them and compresses with 9 bits: zlib never emits a distance beyond
``w_size - MIN_LOOKAHEAD`` = 512 - 262 = 250 bytes (deflate.c ``MAX_DIST``), so every
stream it produces decodes with a 256-byte window, which is what the answer
``server_max_window_bits=8`` promises the client. Inflating with 8 bits works as is.
(Autobahn 13.3.*/13.4.* offer 8 and count a declined offer as UNIMPLEMENTED.)

Codec (§7.2): a message is deflated with ``Z_SYNC_FLUSH`` and the trailing
``00 00 ff ff`` removed; inflating appends it back. Without context takeover the
(de)compressor is dropped after each message, which also frees its memory while the
connection idles. Inflating is bounded (zip bombs): ``inflate`` never produces more
than ``limit + 1`` bytes from one call and raises 1009 past ``limit``.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import InvalidPayload, MessageTooBig
from .headers import ExtensionOffer

__all__ = ["DeflateConfig", "DeflateParams", "PerMessageDeflate", "negotiate_deflate"]

NAME = "permessage-deflate"
_TAIL = b"\x00\x00\xff\xff"
_WINDOW_BITS = {str(bits): bits for bits in range(8, 16)}  # no sign, no leading zero
_KNOWN = frozenset(
    {
        "server_no_context_takeover",
        "client_no_context_takeover",
        "server_max_window_bits",
        "client_max_window_bits",
    }
)


@dataclass(frozen=True, slots=True)
class DeflateConfig:
    """The server's side of permessage-deflate: what it asks for and how it compresses.

    ``max_window_bits`` (8-15) caps both directions' LZ77 windows. Memory per
    connection (zlib's figures): ``2**(max_window_bits + 2) + 2**(memory_level + 9)``
    bytes for the compressor (32 KiB with the defaults, 256 KiB with 15 and 8), plus
    ``2**max_window_bits`` and about 7 KiB for the inflater; without context takeover
    each is freed between messages (at ~50 µs per message to rebuild a 15/8
    compressor, ~4 µs a 12/5 one). Below 9, some clients (Autobahn's newer releases,
    wsproto) refuse the answer: keep it for clients that ask for 8 themselves.
    Messages shorter than ``min_size`` bytes are sent uncompressed (RSV1 clear; RFC
    7692 §6 allows it per message). ``level`` and ``memory_level`` are zlib's.
    """

    enabled: bool = True
    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    max_window_bits: int = 12
    level: int = 6
    memory_level: int = 5
    min_size: int = 128

    def __post_init__(self) -> None:
        if not 8 <= self.max_window_bits <= 15:
            raise ValueError("max_window_bits must be between 8 and 15")
        if not -1 <= self.level <= 9:
            raise ValueError("level must be between -1 and 9")
        if not 1 <= self.memory_level <= 9:
            raise ValueError("memory_level must be between 1 and 9")
        if self.min_size < 0:
            raise ValueError("min_size must not be negative")


@dataclass(frozen=True, slots=True)
class DeflateParams:
    """What was agreed, as the answer says it; a window size left out means 15 bits."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int | None = None
    client_max_window_bits: int | None = None

    def header(self) -> bytes:
        """The ``Sec-WebSocket-Extensions`` value that accepts the offer."""
        parts = [NAME]
        if self.server_no_context_takeover:
            parts.append("server_no_context_takeover")
        if self.client_no_context_takeover:
            parts.append("client_no_context_takeover")
        if self.server_max_window_bits is not None:
            parts.append(f"server_max_window_bits={self.server_max_window_bits}")
        if self.client_max_window_bits is not None:
            parts.append(f"client_max_window_bits={self.client_max_window_bits}")
        return "; ".join(parts).encode("ascii")


def negotiate_deflate(
    offers: Sequence[ExtensionOffer], config: DeflateConfig
) -> PerMessageDeflate | None:
    """The codec for the first acceptable ``permessage-deflate`` offer, or ``None``."""
    if not config.enabled:
        return None
    for offer in offers:
        if offer.name == NAME:
            params = _accept(offer, config)
            if params is not None:
                return PerMessageDeflate(params, config)
    return None


def _accept(offer: ExtensionOffer, config: DeflateConfig) -> DeflateParams | None:
    """The answer to one offer, or ``None`` to decline it (§7: unknown, repeated or
    malformed parameters)."""
    params: dict[str, str | None] = {}
    for name, value in offer.params:
        if name in params or name not in _KNOWN:
            return None
        params[name] = value
    if params.get("server_no_context_takeover") or params.get("client_no_context_takeover"):
        return None  # these take no value
    limit = config.max_window_bits
    server_bits = limit if limit < 15 else None
    if "server_max_window_bits" in params:
        offered = _WINDOW_BITS.get(params["server_max_window_bits"] or "")  # never valueless
        if offered is None:
            return None
        server_bits = min(offered, limit)
    client_bits = None
    if "client_max_window_bits" in params:
        value = params["client_max_window_bits"]
        if value is None:
            client_bits = limit if limit < 15 else None
        elif (offered := _WINDOW_BITS.get(value)) is not None:
            client_bits = min(offered, limit)
        else:
            return None
    return DeflateParams(
        server_no_context_takeover="server_no_context_takeover" in params
        or config.server_no_context_takeover,
        client_no_context_takeover="client_no_context_takeover" in params
        or config.client_no_context_takeover,
        server_max_window_bits=server_bits,
        client_max_window_bits=client_bits,
    )


class PerMessageDeflate:
    """The negotiated codec of one connection: compress outgoing, inflate incoming.

    ``response_header`` is the ``Sec-WebSocket-Extensions`` value to answer with;
    ``min_size`` is the size under which ``Connection`` sends a message uncompressed.
    Incoming messages go through ``inflate`` (each frame's payload, as it arrives)
    then ``finish`` (once, after the message's last frame).
    """

    __slots__ = (
        "_compress_bits",
        "_compressor",
        "_decompressor",
        "_inflate_bits",
        "_level",
        "_memory_level",
        "_reset_compressor",
        "_reset_decompressor",
        "min_size",
        "params",
        "response_header",
    )

    def __init__(self, params: DeflateParams, config: DeflateConfig | None = None) -> None:
        config = config if config is not None else DeflateConfig()
        self.params = params
        self.response_header = params.header()
        self.min_size = config.min_size
        self._level = config.level
        self._memory_level = config.memory_level
        self._compress_bits = max(params.server_max_window_bits or 15, 9)  # see the module doc
        self._inflate_bits = params.client_max_window_bits or 15
        self._reset_compressor = params.server_no_context_takeover
        self._reset_decompressor = params.client_no_context_takeover
        self._compressor: zlib._Compress | None = None
        self._decompressor: zlib._Decompress | None = None

    def compress(self, message: bytes) -> bytes:
        """One whole message's payload, to send with RSV1 set (§7.2.1)."""
        compressor = self._compressor
        if compressor is None:
            compressor = zlib.compressobj(
                self._level, zlib.DEFLATED, -self._compress_bits, self._memory_level
            )
            if not self._reset_compressor:
                self._compressor = compressor
        data = compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH)
        return data[:-4] if data.endswith(_TAIL) else data

    def inflate(self, data: bytes, limit: int) -> bytes:
        """Inflate part of an incoming message; raise 1009 past ``limit`` output bytes."""
        decompressor = self._decompressor
        if decompressor is None:
            decompressor = self._decompressor = zlib.decompressobj(-self._inflate_bits)
        try:
            out = decompressor.decompress(data, limit + 1)
        except zlib.error as exc:
            raise InvalidPayload(f"invalid compressed data: {exc}") from None
        if len(out) > limit:
            raise MessageTooBig("message too big once decompressed")
        return out

    def finish(self, limit: int) -> bytes:
        """End the incoming message: its last bytes (at most ``limit``), and the reset."""
        out = self.inflate(_TAIL, limit)
        decompressor = self._decompressor
        if self._reset_decompressor or (decompressor is not None and decompressor.eof):
            # No context takeover; or the peer ended its deflate stream (a BFINAL
            # block, §7.2.3.4): the next message starts a new one.
            self._decompressor = None
        return out
