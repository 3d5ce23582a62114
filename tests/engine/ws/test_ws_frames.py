"""The frame reader and writer fed canned bytes: every rule of RFC 6455 §5 and its code.

Each refused input checks the close code and that the failure comes as soon as the
bytes that show it have arrived (Autobahn's "fail fast"), not later.
"""

from __future__ import annotations

import pytest
from ws_support import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    PONG,
    TEXT,
    bytewise,
    close_payload,
    failure,
    frame,
    receive,
    server_frames,
)

from covetd.engine.ws import (
    BytesMessage,
    CloseReceived,
    Connection,
    ConnectionFailed,
    DeflateParams,
    PerMessageDeflate,
    Ping,
    Pong,
    TextMessage,
)
from covetd.engine.ws.frames import close_frame, control_frame, data_frame

# RFC 6455 §8.1 / Autobahn 6.4.1: valid text, then U+110000 "encoded", then more text.
KOSME = "κόσμε".encode()
OUT_OF_RANGE = b"\xf4\x90\x80\x80"


def deflate_codec() -> PerMessageDeflate:
    return PerMessageDeflate(DeflateParams())


# -- whole messages ---------------------------------------------------------------------


def test_rfc_example_single_masked_text_frame() -> None:
    # RFC 6455 §5.7: "A single-frame masked text message ... contains "Hello""
    data = bytes.fromhex("818537fa213d7f9f4d5158")
    assert receive(data) == [TextMessage("Hello")]


def test_text_and_binary_messages_of_every_length_form() -> None:
    for size in (0, 1, 125, 126, 65535, 65536, 70000):
        text = "x" * size
        assert receive(frame(TEXT, text.encode())) == [TextMessage(text)]
        data = bytes(range(256)) * (size // 256) + bytes(size % 256)
        assert receive(frame(BINARY, data)) == [BytesMessage(data)]


def test_several_frames_in_one_read_and_one_frame_over_many_reads() -> None:
    data = frame(TEXT, b"one") + frame(BINARY, b"two") + frame(PING, b"p") + frame(PONG)
    expected = [TextMessage("one"), BytesMessage(b"two"), Ping(b"p"), Pong(b"")]
    assert receive(data) == expected
    assert receive(bytewise(data)) == expected
    big = frame(BINARY, bytes(range(256)) * 300)
    assert receive([big[:3], big[3:9], big[9:5000], big[5000:]]) == [
        BytesMessage(bytes(range(256)) * 300)
    ]


def test_masking_is_undone_at_every_offset_of_a_split_payload() -> None:
    payload = bytes(range(256)) * 40  # crosses the unmasking strategies' threshold
    data = frame(BINARY, payload)
    for cut in (7, 8, 9, 10, 11, 2000, 5000, len(data) - 1):
        assert receive([data[:cut], data[cut:]]) == [BytesMessage(payload)], cut


# -- fragmentation (§5.4) -----------------------------------------------------------------


def test_fragmented_message_with_control_frames_between_fragments() -> None:
    data = (
        frame(TEXT, b"frag", fin=False)
        + frame(PING, b"a")
        + frame(CONTINUATION, b"men", fin=False)
        + frame(PONG, b"b")
        + frame(CONTINUATION, b"ted")
    )
    expected = [Ping(b"a"), Pong(b"b"), TextMessage("fragmented")]
    assert receive(data) == expected
    assert receive(bytewise(data)) == expected


def test_fragmented_binary_with_empty_fragments() -> None:
    data = (
        frame(BINARY, b"", fin=False)
        + frame(CONTINUATION, b"ab", fin=False)
        + frame(CONTINUATION, b"", fin=False)
        + frame(CONTINUATION, b"")
    )
    assert receive(data) == [BytesMessage(b"ab")]


def test_continuation_without_a_message_is_a_protocol_error() -> None:
    assert failure(receive(frame(CONTINUATION, b"x"))).code == 1002


def test_new_message_inside_a_fragmented_one_is_a_protocol_error() -> None:
    for opcode in (TEXT, BINARY):
        events = receive(frame(TEXT, b"a", fin=False) + frame(opcode, b"b"))
        assert failure(events).code == 1002
        assert len(events) == 1


def test_close_inside_a_fragmented_message_is_a_close() -> None:
    # Autobahn 7.1.5: the close is honoured (answered 1000), not a protocol error.
    data = (
        frame(TEXT, b"frag", fin=False)
        + frame(CLOSE, close_payload(1000))
        + frame(CONTINUATION, b"x")
    )
    assert receive(data) == [CloseReceived(1000, "")]


# -- control frames (§5.5) ---------------------------------------------------------------


def test_control_frames_carry_up_to_125_bytes() -> None:
    payload = bytes(range(125))
    assert receive(frame(PING, payload)) == [Ping(payload)]
    assert receive(bytewise(frame(PONG, payload))) == [Pong(payload)]


def test_control_frame_over_125_bytes_fails_at_its_header() -> None:
    for opcode in (PING, PONG, CLOSE):
        data = frame(opcode, bytes(126))
        events = receive(data[:2])  # the length field alone shows it
        assert failure(events).code == 1002


def test_fragmented_control_frame_is_a_protocol_error() -> None:
    for opcode in (PING, PONG, CLOSE):
        assert failure(receive(frame(opcode, b"x", fin=False)[:2])).code == 1002


def test_reserved_opcodes_are_protocol_errors() -> None:
    for opcode in (3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF):
        events = receive(frame(TEXT, b"ok") + frame(opcode, b"x")[:2])
        assert events[0] == TextMessage("ok")
        assert failure(events).code == 1002, opcode


# -- masking, reserved bits, lengths -------------------------------------------------------


def test_unmasked_client_frame_is_a_protocol_error() -> None:
    assert failure(receive(frame(TEXT, b"hi", mask=None)[:2])).code == 1002


def test_reserved_bits_without_an_extension_are_protocol_errors() -> None:
    for rsv in (0x40, 0x20, 0x10, 0x70):
        assert failure(receive(frame(TEXT, b"x", rsv=rsv)[:2])).code == 1002, rsv


def test_rsv1_with_deflate_only_on_the_first_frame_of_a_data_message() -> None:
    deflate = deflate_codec()
    assert failure(receive(frame(PING, b"", rsv=0x40), deflate=deflate)).code == 1002
    data = frame(TEXT, b"", fin=False, rsv=0x40) + frame(CONTINUATION, b"", rsv=0x40)
    assert failure(receive(data, deflate=deflate_codec())).code == 1002
    for rsv in (0x20, 0x10):
        assert failure(receive(frame(TEXT, b"x", rsv=rsv), deflate=deflate_codec())).code == 1002


def test_non_minimal_payload_lengths_are_protocol_errors() -> None:
    # §5.2: "the minimal number of bytes MUST be used to encode the length".
    assert failure(receive(frame(BINARY, b"x" * 125, length="16")[:4])).code == 1002
    assert failure(receive(frame(BINARY, b"x" * 65535, length="64")[:10])).code == 1002
    assert receive(frame(BINARY, b"x" * 126, length="16")) == [BytesMessage(b"x" * 126)]


def test_64_bit_length_with_the_top_bit_set_is_a_protocol_error() -> None:
    head = bytes((0x82, 0xFF)) + (1 << 63 | 70000).to_bytes(8, "big")
    assert failure(receive(head)).code == 1002


# -- max_message_size -------------------------------------------------------------------


def test_message_over_the_limit_fails_at_its_header_without_the_payload() -> None:
    head = frame(BINARY, bytes(2000))[:8]  # 16-bit length form + mask, no payload
    assert failure(receive(head, max_message_size=1999)).code == 1009
    assert receive(frame(BINARY, bytes(2000)), max_message_size=2000) == [BytesMessage(bytes(2000))]


def test_fragments_adding_up_over_the_limit_fail_at_the_crossing_header() -> None:
    first = frame(TEXT, b"a" * 600, fin=False)
    second = frame(CONTINUATION, b"b" * 600)
    events = receive([first, second[:4]], max_message_size=1000)  # its 16-bit length
    assert failure(events).code == 1009
    assert receive(first + frame(CONTINUATION, b"b" * 400), max_message_size=1000) == [
        TextMessage("a" * 600 + "b" * 400)
    ]


def test_64_bit_length_beyond_any_limit_fails_at_once() -> None:
    head = bytes((0x82, 0xFF)) + (1 << 62).to_bytes(8, "big")
    assert failure(receive(head)).code == 1009


def test_control_frames_do_not_count_toward_the_message_size() -> None:
    data = (
        frame(BINARY, b"a" * 10, fin=False)
        + frame(PING, b"p" * 100)
        + frame(CONTINUATION, b"b" * 10)
    )
    assert receive(data, max_message_size=20) == [
        Ping(b"p" * 100),
        BytesMessage(b"a" * 10 + b"b" * 10),
    ]


# -- UTF-8 (§8.1) ---------------------------------------------------------------------------


def test_invalid_utf8_in_one_frame_is_1007() -> None:
    assert failure(receive(frame(TEXT, KOSME + OUT_OF_RANGE))).code == 1007
    assert failure(receive(frame(TEXT, b"\xff"))).code == 1007


def test_valid_utf8_split_at_every_byte_across_fragments() -> None:
    text = "κόσμε 𝄞 €"
    raw = text.encode()
    for cut in range(len(raw) + 1):
        data = frame(TEXT, raw[:cut], fin=False) + frame(CONTINUATION, raw[cut:])
        assert receive(data) == [TextMessage(text)], cut


def test_invalid_utf8_split_across_frames_fails_at_the_frame_that_shows_it() -> None:
    # Autobahn 6.4.2: the first frame ends in F4 (a valid start); 0x90 after it is not.
    conn = Connection()
    assert conn.receive_data(frame(TEXT, KOSME + b"\xf4", fin=False)) == []
    events = conn.receive_data(frame(CONTINUATION, b"\x90", fin=False))
    assert failure(events).code == 1007


def test_invalid_utf8_within_one_frame_fails_before_the_frame_ends() -> None:
    # Autobahn 6.4.3: one frame, delivered in chops; the chop with 0x90 fails.
    data = frame(TEXT, KOSME + OUT_OF_RANGE + b"edited")
    cut = 6 + len(KOSME) + 1  # header, valid text, F4
    conn = Connection()
    assert conn.receive_data(data[:cut]) == []
    assert failure(conn.receive_data(data[cut : cut + 1])).code == 1007


def test_encoded_surrogate_fails_at_its_second_byte() -> None:
    # CPython's incremental decoder waits for a third byte after ED A0; we do not.
    conn = Connection()
    assert conn.receive_data(frame(TEXT, b"ok\xed", fin=False)) == []
    assert failure(conn.receive_data(frame(CONTINUATION, b"\xa0", fin=False))).code == 1007


def test_text_message_ending_inside_a_character_is_1007() -> None:
    data = frame(TEXT, "€".encode()[:2], fin=False) + frame(CONTINUATION, b"")
    assert failure(receive(data)).code == 1007


def test_binary_messages_are_not_checked_for_utf8() -> None:
    assert receive(frame(BINARY, b"\xff\xfe")) == [BytesMessage(b"\xff\xfe")]


# -- close frames (§5.5.1, §7.4) -----------------------------------------------------------

VALID_CODES = [
    1000,
    1001,
    1002,
    1003,
    1007,
    1008,
    1009,
    1010,
    1011,
    1012,
    1013,
    1014,
    3000,
    3999,
    4000,
    4999,
]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]


@pytest.mark.parametrize("code", VALID_CODES)
def test_valid_close_codes_are_reported(code: int) -> None:
    assert receive(frame(CLOSE, close_payload(code, b"fin"))) == [CloseReceived(code, "fin")]


@pytest.mark.parametrize("code", INVALID_CODES)
def test_invalid_close_codes_are_protocol_errors(code: int) -> None:
    assert failure(receive(frame(CLOSE, close_payload(code)))).code == 1002


def test_close_payload_forms() -> None:
    assert receive(frame(CLOSE)) == [CloseReceived(1005, "")]
    assert failure(receive(frame(CLOSE, b"\x03"))).code == 1002
    assert failure(receive(frame(CLOSE, close_payload(1000, b"\xce")))).code == 1007
    reason = "é" * 61 + "x"  # 123 bytes: the most a close frame holds
    assert receive(frame(CLOSE, close_payload(1000, reason.encode()))) == [
        CloseReceived(1000, reason)
    ]


def test_nothing_is_read_after_a_close_frame() -> None:
    data = frame(CLOSE, close_payload(1001)) + frame(TEXT, b"late") + b"\xff\xff garbage"
    assert receive(data) == [CloseReceived(1001, "")]


# -- errors keep what came before them ------------------------------------------------------


def test_events_before_an_error_in_the_same_read_are_kept() -> None:
    events = receive(frame(TEXT, b"first") + frame(PING, b"p") + frame(TEXT, b"\xff"))
    assert events[:2] == [TextMessage("first"), Ping(b"p")]
    failed = failure(events)
    assert isinstance(failed, ConnectionFailed)
    assert failed.code == 1007
    assert server_frames(failed.close_frame)[0].payload[:2] == (1007).to_bytes(2, "big")


# -- the writer -------------------------------------------------------------------------------


def test_data_frames_use_the_minimal_length_form_unmasked_with_fin() -> None:
    for size, header_size in ((0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)):
        data = data_frame(BINARY, bytes(size))
        assert len(data) == header_size + size
        [written] = server_frames(data)
        assert written == (True, 0, BINARY, bytes(size))
    assert data_frame(TEXT, b"hi")[:2] == b"\x81\x02"
    assert data_frame(TEXT, b"zz", compressed=True)[0] == 0xC1


def test_control_frames() -> None:
    assert control_frame(PING, b"abc") == b"\x89\x03abc"
    assert control_frame(PONG) == b"\x8a\x00"
    with pytest.raises(ValueError):
        control_frame(PING, bytes(126))


def test_close_frame_reason_is_cut_on_a_character_boundary() -> None:
    written = close_frame(1001, "é" * 100)  # 200 bytes of reason
    [parsed] = server_frames(written)
    assert parsed.opcode == CLOSE
    assert len(parsed.payload) == 2 + 122  # 61 characters: 123 would split one
    assert parsed.payload[2:].decode() == "é" * 61
    assert close_frame(None) == b"\x88\x00"
    assert close_frame(1005) == b"\x88\x00"  # the echo of a close without a code


@pytest.mark.parametrize("code", [999, 1004, 1005 + 1, 1015, 2000, 5000])
def test_close_codes_that_cannot_be_sent(code: int) -> None:
    with pytest.raises(ValueError):
        close_frame(code)


def test_server_frames_round_trip_through_the_reader_once_masked() -> None:
    # What the writer produces is what the reader accepts, mask aside.
    for opcode, payload in ((TEXT, "h€llo".encode()), (BINARY, bytes(70000)), (PING, b"x")):
        [written] = server_frames(
            data_frame(opcode, payload) if opcode < 8 else control_frame(opcode, payload)
        )
        event = receive(frame(written.opcode, written.payload))[0]
        assert event in (TextMessage("h€llo"), BytesMessage(bytes(70000)), Ping(b"x"))
