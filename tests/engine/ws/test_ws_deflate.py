"""permessage-deflate: the negotiation table of RFC 7692 §7.1 and the codec against zlib.

The codec is checked against Python's ``zlib`` acting as the peer, for every window
size (8 to 15) with and without context takeover, and for the bound on inflated
output that stops zip bombs before they take memory.
"""

from __future__ import annotations

import random
import tracemalloc
import zlib

import pytest
from ws_support import BINARY, CONTINUATION, TEXT, failure, frame, receive

from covetd.engine.ws import (
    BytesMessage,
    DeflateConfig,
    DeflateParams,
    ExtensionOffer,
    InvalidPayload,
    MessageTooBig,
    PerMessageDeflate,
    TextMessage,
    negotiate_deflate,
)
from covetd.engine.ws.headers import parse_extensions

TAIL = b"\x00\x00\xff\xff"


def offer(header: str, config: DeflateConfig | None = None) -> bytes | None:
    """The answer to a ``Sec-WebSocket-Extensions`` header, or None when declined."""
    codec = negotiate_deflate(parse_extensions([header.encode()]), config or DeflateConfig())
    return codec.response_header if codec is not None else None


def messages(count: int = 12, seed: int = 7) -> list[bytes]:
    """Compressible messages whose repeats sit at distances from 1 byte to 40 KiB, so
    that a too-small window on either side shows."""
    rng = random.Random(seed)
    blocks = [rng.randbytes(rng.choice((40, 300, 700, 5000))) for _ in range(8)]
    out = [b"", b"a"]
    for _ in range(count):
        parts = [
            rng.choice(blocks) + rng.randbytes(rng.choice((0, 100, 400)))
            for _ in range(rng.randint(1, 12))
        ]
        out.append(b"".join(parts))
    return out


# -- negotiation (§7.1) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "config", "answer"),
    [
        ("permessage-deflate", DeflateConfig(max_window_bits=15), "permessage-deflate"),
        ("permessage-deflate", DeflateConfig(), "permessage-deflate; server_max_window_bits=12"),
        (
            "permessage-deflate; server_no_context_takeover",
            DeflateConfig(max_window_bits=15),
            "permessage-deflate; server_no_context_takeover",
        ),
        (
            "permessage-deflate; client_no_context_takeover",
            DeflateConfig(max_window_bits=15),
            "permessage-deflate; client_no_context_takeover",
        ),
        (
            "permessage-deflate",
            DeflateConfig(
                max_window_bits=15, server_no_context_takeover=True, client_no_context_takeover=True
            ),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ),
        (
            "permessage-deflate; server_max_window_bits=10",
            DeflateConfig(),
            "permessage-deflate; server_max_window_bits=10",
        ),
        (
            "permessage-deflate; server_max_window_bits=14",
            DeflateConfig(),
            "permessage-deflate; server_max_window_bits=12",
        ),
        (
            "permessage-deflate; server_max_window_bits=8",
            DeflateConfig(),
            "permessage-deflate; server_max_window_bits=8",
        ),
        (
            'permessage-deflate; server_max_window_bits="9"',
            DeflateConfig(max_window_bits=15),
            "permessage-deflate; server_max_window_bits=9",
        ),
        (
            "permessage-deflate; client_max_window_bits",
            DeflateConfig(),
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
        ),
        (
            "permessage-deflate; client_max_window_bits",
            DeflateConfig(max_window_bits=15),
            "permessage-deflate",
        ),
        (
            "permessage-deflate; client_max_window_bits=9",
            DeflateConfig(max_window_bits=15),
            "permessage-deflate; client_max_window_bits=9",
        ),
        (
            "permessage-deflate; client_max_window_bits=15",
            DeflateConfig(max_window_bits=10),
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits=10",
        ),
        # Declined: the server's window has no valueless form; out-of-range or
        # non-canonical values; unknown or repeated parameters; values on flags.
        ("permessage-deflate; server_max_window_bits", DeflateConfig(), None),
        ("permessage-deflate; server_max_window_bits=16", DeflateConfig(), None),
        ("permessage-deflate; client_max_window_bits=7", DeflateConfig(), None),
        ("permessage-deflate; server_max_window_bits=09", DeflateConfig(), None),
        ("permessage-deflate; client_max_window_bits=+9", DeflateConfig(), None),
        ("permessage-deflate; mystery", DeflateConfig(), None),
        (
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            DeflateConfig(),
            None,
        ),
        ("permessage-deflate; client_no_context_takeover=1", DeflateConfig(), None),
        ("x-webkit-deflate-frame", DeflateConfig(), None),
        ("permessage-deflate", DeflateConfig(enabled=False), None),
    ],
)
def test_negotiation(header: str, config: DeflateConfig, answer: str | None) -> None:
    assert offer(header, config) == (answer.encode() if answer is not None else None)


def test_the_first_acceptable_offer_wins() -> None:
    header = (
        "x-unknown; a=1, permessage-deflate; server_max_window_bits=20, "
        "permessage-deflate; client_no_context_takeover, permessage-deflate"
    )
    assert (
        offer(header, DeflateConfig(max_window_bits=15))
        == b"permessage-deflate; client_no_context_takeover"
    )


def test_parameter_names_are_case_insensitive() -> None:
    header = "Permessage-Deflate; Server_No_Context_Takeover"
    assert (
        offer(header, DeflateConfig(max_window_bits=15))
        == b"permessage-deflate; server_no_context_takeover"
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_window_bits": 7},
        {"max_window_bits": 16},
        {"level": 10},
        {"memory_level": 0},
        {"min_size": -1},
    ],
)
def test_config_is_validated(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        DeflateConfig(**kwargs)


# -- compressing: our messages through zlib as the client's inflater ------------------------


@pytest.mark.parametrize("no_context_takeover", [False, True])
@pytest.mark.parametrize("bits", range(8, 16))
def test_compressed_messages_inflate_with_the_announced_window(
    bits: int, no_context_takeover: bool
) -> None:
    codec = PerMessageDeflate(
        DeflateParams(server_no_context_takeover=no_context_takeover, server_max_window_bits=bits)
    )
    inflater = zlib.decompressobj(-bits)  # 8 is fine for inflating; the peer may use it
    for message in messages():
        payload = codec.compress(message)
        assert not payload.endswith(TAIL)
        if no_context_takeover:  # the client may drop its window: the message stands alone
            assert zlib.decompressobj(-bits).decompress(payload + TAIL) == message
        assert inflater.decompress(payload + TAIL) == message


def test_context_takeover_makes_repeated_messages_small() -> None:
    message = bytes(range(256)) * 4
    keep = PerMessageDeflate(DeflateParams())
    drop = PerMessageDeflate(DeflateParams(server_no_context_takeover=True))
    assert len(keep.compress(message)) == len(drop.compress(message))
    assert len(keep.compress(message)) < 20 < len(drop.compress(message))


def test_window_of_8_bits_holds_for_long_streams_of_back_references() -> None:
    # zlib compresses with 9 bits when 8 were agreed; its distances stay within 250
    # bytes, so an inflater with a 256-byte window reads everything it produces.
    codec = PerMessageDeflate(DeflateParams(server_max_window_bits=8))
    inflater = zlib.decompressobj(-8)
    rng = random.Random(1)
    pool = [rng.randbytes(n) for n in (240, 255, 256, 300, 511, 600)]
    for _ in range(300):
        message = b"".join(rng.choice(pool) for _ in range(rng.randint(1, 6)))
        assert inflater.decompress(codec.compress(message) + TAIL) == message


def test_empty_message_compresses_to_a_valid_payload() -> None:
    payload = PerMessageDeflate(DeflateParams()).compress(b"")
    assert zlib.decompressobj(-15).decompress(payload + TAIL) == b""


# -- inflating: zlib as the client's compressor -----------------------------------------------


def client_compressor(bits: int) -> zlib._Compress:
    return zlib.compressobj(6, zlib.DEFLATED, -max(bits, 9))


def client_compress(compressor: zlib._Compress, message: bytes) -> bytes:
    return (compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


@pytest.mark.parametrize("no_context_takeover", [False, True])
@pytest.mark.parametrize("bits", range(8, 16))
def test_client_messages_inflate(bits: int, no_context_takeover: bool) -> None:
    params = DeflateParams(
        client_no_context_takeover=no_context_takeover, client_max_window_bits=bits
    )
    codec = PerMessageDeflate(params)
    compressor = client_compressor(bits)
    for message in messages():
        if no_context_takeover:
            compressor = client_compressor(bits)
        payload = client_compress(compressor, message)
        cut = len(payload) // 3  # as two frames, or two reads
        out = codec.inflate(payload[:cut], 1 << 20)
        out += codec.inflate(payload[cut:], (1 << 20) - len(out))
        assert out + codec.finish(1 << 20) == message


@pytest.mark.parametrize("takeover", [True, False])
def test_compressed_messages_through_the_reader(takeover: bool) -> None:
    codec = PerMessageDeflate(DeflateParams(client_no_context_takeover=not takeover))
    compressor = client_compressor(15)
    data = b""
    expected: list[object] = []
    for message in messages(6):
        if not takeover:
            compressor = client_compressor(15)
        payload = client_compress(compressor, message)
        half = len(payload) // 2
        # A fragmented message: RSV1 on its first frame only (RFC 7692 §6.1).
        data += frame(BINARY, payload[:half], fin=False, rsv=0x40) + frame(
            CONTINUATION, payload[half:]
        )
        expected.append(BytesMessage(message))
    text = "ünïcode " * 50
    data += frame(TEXT, client_compress(compressor, text.encode()), rsv=0x40)
    expected.append(TextMessage(text))
    data += frame(TEXT, b"plain")  # an uncompressed message on the same connection
    expected.append(TextMessage("plain"))
    assert receive(data, deflate=codec) == expected


def test_peer_ending_its_stream_with_a_final_block_starts_a_new_one() -> None:
    # RFC 7692 §7.2.3.4 permits a BFINAL block; the next message is a new stream.
    codec = PerMessageDeflate(DeflateParams())
    for message in (b"first message", b"second message"):
        compressor = client_compressor(15)
        payload = compressor.compress(message) + compressor.flush(zlib.Z_FINISH)
        assert codec.inflate(payload, 1000) + codec.finish(1000) == message


def test_corrupt_compressed_data_is_1007() -> None:
    codec = PerMessageDeflate(DeflateParams())
    with pytest.raises(InvalidPayload):
        codec.inflate(b"\xff\xff\xff\xff", 1000)
    events = receive(
        frame(TEXT, b"\xff\xfe\xfd", rsv=0x40), deflate=PerMessageDeflate(DeflateParams())
    )
    assert failure(events).code == 1007


def test_inflater_keeps_only_the_agreed_window() -> None:
    # client_max_window_bits=9 agreed (512 bytes kept between messages): a client that
    # refers 1000 bytes back into the previous message breaks the agreement.
    codec = PerMessageDeflate(DeflateParams(client_max_window_bits=9))
    compressor = client_compressor(15)
    block = random.Random(3).randbytes(1000)
    first = client_compress(compressor, block)
    assert codec.inflate(first, 1 << 20) + codec.finish(1 << 20) == block
    with pytest.raises(InvalidPayload):
        codec.inflate(client_compress(compressor, block), 1 << 20)


def test_compressed_text_is_checked_for_utf8() -> None:
    payload = client_compress(client_compressor(15), b"ok \xff")
    events = receive(frame(TEXT, payload, rsv=0x40), deflate=PerMessageDeflate(DeflateParams()))
    assert failure(events).code == 1007


# -- bounded inflating (zip bombs) -------------------------------------------------------------


def test_inflated_size_is_bounded_before_it_is_produced() -> None:
    bomb = client_compress(client_compressor(15), bytes(16 * 1024 * 1024))  # ~16 KiB on the wire
    assert len(bomb) < 20_000
    codec = PerMessageDeflate(DeflateParams())
    tracemalloc.start()
    try:
        with pytest.raises(MessageTooBig):
            codec.inflate(bomb, 1024 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024  # never near the 16 MiB the bomb expands to


def test_limit_applies_to_the_whole_message_once_inflated() -> None:
    compressor = client_compressor(15)
    payload = client_compress(compressor, bytes(3000))
    codec = PerMessageDeflate(DeflateParams())
    events = receive(frame(BINARY, payload, rsv=0x40), max_message_size=2999, deflate=codec)
    assert failure(events).code == 1009
    exact = receive(
        frame(BINARY, client_compress(client_compressor(15), bytes(3000)), rsv=0x40),
        max_message_size=3000,
        deflate=PerMessageDeflate(DeflateParams()),
    )
    assert exact == [BytesMessage(bytes(3000))]


def test_limit_counts_every_fragment_of_a_compressed_message() -> None:
    compressor = client_compressor(15)
    payload = client_compress(compressor, bytes(2000) + b"x" * 2000)
    half = len(payload) // 2
    data = frame(BINARY, payload[:half], fin=False, rsv=0x40) + frame(CONTINUATION, payload[half:])
    assert (
        failure(
            receive(data, max_message_size=3999, deflate=PerMessageDeflate(DeflateParams()))
        ).code
        == 1009
    )


def test_extension_offer_is_a_plain_named_tuple() -> None:
    parsed = parse_extensions(
        [b'permessage-deflate; client_max_window_bits; server_max_window_bits="10"']
    )
    assert parsed == [
        ExtensionOffer(
            "permessage-deflate",
            (("client_max_window_bits", None), ("server_max_window_bits", "10")),
        )
    ]
