"""``RequestParser`` fed canned bytes: heads, bodies, pipelining, limits, framing rules.

No sockets: a recording listener (``support.h1.Recorder``) hears what the parser
reports. The raw-request corpus (``test_corpus.py``) adds breadth; the tests here pin
the contracts of the parser: what ``RequestHead`` says, when events fire, where each
limit is enforced and that an error comes before a refused head reaches the listener.
"""

from __future__ import annotations

import pytest
from support.h1 import Recorder, bytewise, feed, fields, split_at, whole

from covetd.app.head import RequestHead
from covetd.engine.h1.errors import ProtocolError
from covetd.engine.h1.limits import Limits
from covetd.engine.h1.parser import RequestParser

HOST = b"Host: example.com\r\n"


def refused(data: bytes | list[bytes], limits: Limits | None = None) -> tuple[int, Recorder]:
    """Feed ``data`` (or its pieces) expecting a ProtocolError: (status, what was heard)."""
    recorder = Recorder()
    with pytest.raises(ProtocolError) as caught:
        feed(data if isinstance(data, list) else [data], limits, recorder)
    return caught.value.status, recorder


def one(data: bytes, limits: Limits | None = None):
    recorder = whole(data, limits)
    assert len(recorder.requests) == 1
    assert recorder.requests[0].complete
    return recorder.requests[0]


# -- request line and headers ---------------------------------------------------------


def test_request_line_and_headers() -> None:
    head = one(
        b"GET /a/b%20c?x=1&y=%41 HTTP/1.1\r\nHost: example.com\r\nX-Two: 2\r\nX-Case: MiXeD\r\n\r\n"
    ).head
    assert head.method == "GET"
    assert head.raw_path == b"/a/b%20c"
    assert head.query_string == b"x=1&y=%41"
    assert head.http_version == "1.1"
    assert fields(head) == [(b"host", b"example.com"), (b"x-two", b"2"), (b"x-case", b"MiXeD")]


def test_field_values_exclude_surrounding_whitespace() -> None:
    # RFC 9112 §5.1: "The field line value does not include that whitespace."
    head = one(b"GET / HTTP/1.1\r\n" + HOST + b"X-Pad: \t value with inner space \t \r\n\r\n").head
    assert fields(head)[-1] == (b"x-pad", b"value with inner space")


def test_standard_and_extension_methods() -> None:
    assert one(b"DELETE /x HTTP/1.1\r\n" + HOST + b"\r\n").head.method == "DELETE"
    assert one(b"PROPFIND /x HTTP/1.1\r\n" + HOST + b"\r\n").head.method == "PROPFIND"


@pytest.mark.parametrize(
    ("head", "keep_alive"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", True),
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", False),
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Close\r\n\r\n", False),
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, close\r\n\r\n", False),
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: foo\r\nConnection: close\r\n\r\n", False),
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n", True),
        (b"GET / HTTP/1.0\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", True),
        (b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", True),
        (b"GET / HTTP/1.0\r\nConnection: foo\r\n\r\n", False),
    ],
    ids=[
        "1.1-default",
        "1.1-close",
        "1.1-close-case",
        "1.1-close-in-list",
        "1.1-close-second-field",
        "1.1-keep-alive",
        "1.0-default",
        "1.0-keep-alive",
        "1.0-keep-alive-case",
        "1.0-other-token",
    ],
)
def test_keep_alive(head: bytes, keep_alive: bool) -> None:
    assert one(head).head.keep_alive is keep_alive


@pytest.mark.parametrize(
    ("headers", "has_body", "content_length", "chunked"),
    [
        (b"", False, None, False),
        (b"Content-Length: 0\r\n", False, 0, False),
        (b"Content-Length: 3\r\n", True, 3, False),
        (b"Transfer-Encoding: chunked\r\n", True, None, True),
    ],
    ids=["none", "cl-0", "cl-3", "chunked"],
)
def test_body_framing_facts(
    headers: bytes, has_body: bool, content_length: int | None, chunked: bool
) -> None:
    body = b"abc" if content_length else b"3\r\nabc\r\n0\r\n\r\n" if chunked else b""
    parsed = one(b"POST / HTTP/1.1\r\n" + HOST + headers + b"\r\n" + body)
    head = parsed.head
    assert (head.has_body, head.content_length, head.chunked) == (
        has_body,
        content_length,
        chunked,
    )
    assert parsed.body == (b"abc" if has_body else b"")


@pytest.mark.parametrize(
    ("version", "expect", "wanted"),
    [
        ("1.1", b"100-continue", True),
        ("1.1", b"100-Continue", True),
        ("1.0", b"100-continue", False),  # RFC 9110 §10.1.1: MUST ignore in HTTP/1.0
        ("1.1", None, False),
    ],
    ids=["1.1", "1.1-case", "1.0-ignored", "absent"],
)
def test_expect_continue(version: str, expect: bytes | None, wanted: bool) -> None:
    header = b"Expect: " + expect + b"\r\n" if expect else b""
    data = f"POST / HTTP/{version}\r\n".encode() + HOST + header + b"Content-Length: 1\r\n\r\nx"
    assert one(data).head.expect_continue is wanted


def test_upgrade_is_noted_only_with_connection_upgrade() -> None:
    upgrade = (
        b"GET /ws HTTP/1.1\r\n"
        + HOST
        + b"Upgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n\r\n"
    )
    assert one(upgrade).head.upgrade == b"websocket"
    plain = b"GET /ws HTTP/1.1\r\n" + HOST + b"Upgrade: websocket\r\n\r\n"
    assert one(plain).head.upgrade is None
    assert one(b"GET / HTTP/1.1\r\n" + HOST + b"\r\n").head.upgrade is None


def test_upgrade_in_http10_is_ignored() -> None:
    # RFC 9110 §7.8: "A server MUST ignore an Upgrade header field that is received in
    # an HTTP/1.0 request."
    head = one(b"GET /ws HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n").head
    assert head.upgrade is None


class _Switching(Recorder):
    """A listener that takes every upgrade (as the WebSocket engine will)."""

    def on_request(self, head: RequestHead) -> None:
        super().on_request(head)
        head.switching = True  # type: ignore[attr-defined]


def test_bytes_after_an_upgrade_head_are_handed_back_when_switching() -> None:
    recorder = _Switching()
    parser = RequestParser(recorder, Limits())
    tail = parser.feed(
        b"GET /ws HTTP/1.1\r\n" + HOST + b"Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        b"\x81\x05hello"
    )
    assert tail == b"\x81\x05hello"
    assert recorder.events == ["head"]


def test_an_upgrade_not_taken_is_an_ordinary_request() -> None:
    recorder = whole(
        b"GET /ws HTTP/1.1\r\n" + HOST + b"Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        b"GET /next HTTP/1.1\r\n" + HOST + b"\r\n"
    )
    assert [h.raw_path for h in recorder.heads] == [b"/ws", b"/next"]


def test_the_body_of_an_upgrade_request_is_not_a_new_request() -> None:
    # The request that asks for an upgrade is a complete HTTP/1.1 message: its body is
    # framed by Content-Length like any other (RFC 9112 §6.3). Handing it back as "the
    # bytes after the head" lets the body be parsed as the next request (smuggling).
    recorder = whole(
        b"POST /up HTTP/1.1\r\n" + HOST + b"Upgrade: h2c\r\nConnection: Upgrade\r\n"
        b"Content-Length: 35\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    assert [h.raw_path for h in recorder.heads] == [b"/up"]
    assert recorder.requests[0].body == b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


def test_in_head_is_true_only_between_a_first_byte_and_the_end_of_a_head() -> None:
    parser = RequestParser(Recorder(), Limits())
    assert not parser.in_head
    parser.feed(b"GET / HTTP/1.1\r\nHo")
    assert parser.in_head
    parser.feed(b"st: x\r\n\r\n")
    assert not parser.in_head


# -- bodies ---------------------------------------------------------------------------


def test_content_length_body_then_complete() -> None:
    recorder = feed([b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 10\r\n\r\n01234", b"56789"])
    assert recorder.events == ["head", "body", "complete"]
    assert recorder.requests[0].body == b"0123456789"


def test_chunked_body_with_extensions_and_trailers() -> None:
    recorder = whole(
        b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
        b'4;name=value;q="a;b"\r\nWiki\r\n5;x\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n'
        b"0;end\r\nX-Checksum: 42\r\nX-Other: o\r\n\r\n"
    )
    assert recorder.requests[0].body == b"Wikipedia in\r\n\r\nchunks."
    assert recorder.requests[0].complete


def test_trailer_fields_do_not_join_the_head() -> None:
    # RFC 9110 §6.5.1: a recipient "MUST NOT merge a received trailer field into the
    # header section". A trailer "Host" would otherwise sit among the head's fields.
    recorder = whole(
        b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\nX-Checksum: 42\r\nHost: evil.example\r\n\r\n"
    )
    head = recorder.requests[0].head
    assert fields(head) == [(b"host", b"example.com"), (b"transfer-encoding", b"chunked")]


def test_trailer_fields_do_not_leak_into_the_next_request() -> None:
    recorder = whole(
        b"POST /1 HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\nX-Checksum: 42\r\nHost: evil.example\r\n\r\n"
        b"GET /2 HTTP/1.1\r\nHost: next.example\r\n\r\n"
    )
    assert [r.complete for r in recorder.requests] == [True, True]
    assert fields(recorder.requests[1].head) == [(b"host", b"next.example")]


def test_get_with_a_content_length_body() -> None:
    parsed = one(b"GET / HTTP/1.1\r\n" + HOST + b"Content-Length: 2\r\n\r\nhi")
    assert (parsed.head.has_body, parsed.body) == (True, b"hi")


# -- pipelining and arbitrary splits --------------------------------------------------

PIPELINE = (
    b"GET /1 HTTP/1.1\r\n" + HOST + b"\r\n"
    b"POST /2 HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\n\r\nhello"
    b"POST /3 HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
    b"2;e=1\r\nhi\r\n3\r\nyou\r\n0\r\nT: v\r\n\r\n"
    b"HEAD /4?q HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n"
)
PIPELINE_EXPECTED = [
    (b"/1", b"", b"", True),
    (b"/2", b"", b"hello", True),
    (b"/3", b"", b"hiyou", True),
    (b"/4", b"q", b"", False),
]


def summary(recorder: Recorder) -> list[tuple[bytes, bytes, bytes, bool]]:
    return [
        (r.head.raw_path, r.head.query_string, r.body, r.head.keep_alive)
        for r in recorder.requests
        if r.complete
    ]


def test_pipelined_requests_in_one_feed_come_out_in_order() -> None:
    recorder = whole(PIPELINE)
    assert summary(recorder) == PIPELINE_EXPECTED
    assert recorder.events == ["head"] + ["head", "body", "complete"] * 2 + ["head"]


def test_pipelined_requests_fed_byte_by_byte() -> None:
    assert summary(bytewise(PIPELINE)) == PIPELINE_EXPECTED


def test_pipelined_requests_split_at_every_boundary() -> None:
    for index in range(1, len(PIPELINE)):
        assert summary(split_at(PIPELINE, index)) == PIPELINE_EXPECTED, index


def test_an_error_after_good_requests_keeps_them_and_stops() -> None:
    status, recorder = refused(PIPELINE + b"GET / HTTP/1.1\r\n\r\n" + PIPELINE)
    assert status == 400
    assert summary(recorder) == PIPELINE_EXPECTED


# -- limits ---------------------------------------------------------------------------

SMALL = Limits(max_request_line=64, max_header_size=256, max_headers=8, max_body_size=100)


def request_line_of(length: int) -> bytes:
    """A request line of exactly ``length`` bytes (CRLF not counted)."""
    fixed = len(b"GET / HTTP/1.1")
    return b"GET /" + b"a" * (length - fixed) + b" HTTP/1.1"


def test_request_line_at_the_limit_is_accepted() -> None:
    line = request_line_of(SMALL.max_request_line)
    assert len(line) == 64
    one(line + b"\r\n" + HOST + b"\r\n", SMALL)


def test_request_line_over_the_limit_is_414() -> None:
    # docs/configuration.md: "Longest request line, in bytes (414 above)" — the line,
    # not only its target.
    line = request_line_of(SMALL.max_request_line + 1)
    status, recorder = refused(line + b"\r\n" + HOST + b"\r\n", SMALL)
    assert (status, recorder.requests) == (414, [])


def test_long_target_is_414_before_the_line_ends() -> None:
    # Streamed in: refused as soon as it is too long, without waiting for the rest.
    start = b"GET /" + b"a" * 200
    status, _ = refused([start[i : i + 7] for i in range(0, len(start), 7)], SMALL)
    assert status == 414


def header_block(size: int) -> bytes:
    """Field lines (after Host) making a header block of exactly ``size`` bytes, each
    line counted as ``name: value`` + CRLF."""
    filler = size - len(HOST) - len(b"X-Fill: \r\n")
    return HOST + b"X-Fill: " + b"f" * filler + b"\r\n"


def test_header_block_at_the_limit_is_accepted() -> None:
    block = header_block(SMALL.max_header_size)
    assert len(block) == 256
    one(b"GET / HTTP/1.1\r\n" + block + b"\r\n", SMALL)


def test_header_block_over_the_limit_is_431() -> None:
    status, recorder = refused(
        b"GET / HTTP/1.1\r\n" + header_block(SMALL.max_header_size + 1) + b"\r\n", SMALL
    )
    assert (status, recorder.requests) == (431, [])


def test_header_count_at_and_over_the_limit() -> None:
    fields = HOST + b"".join(b"X-%d: v\r\n" % i for i in range(SMALL.max_headers - 1))
    one(b"GET / HTTP/1.1\r\n" + fields + b"\r\n", SMALL)
    status, recorder = refused(b"GET / HTTP/1.1\r\n" + fields + b"X-Last: v\r\n\r\n", SMALL)
    assert (status, recorder.requests) == (431, [])


SLACK = 16  # "plus one read" (docstring of parser.py)


def test_an_endless_header_line_is_refused_while_it_streams_in() -> None:
    # The parser must not buffer an unfinished head without bound (slowloris, giant
    # lines): it refuses once the bytes fed exceed what a legal head can hold.
    limits = Limits(max_request_line=64, max_header_size=256)
    parser = RequestParser(Recorder(), limits)
    parser.feed(b"GET / HTTP/1.1\r\n" + HOST + b"X-Endless: ")
    fed = 0
    with pytest.raises(ProtocolError) as caught:
        while fed < 100_000:
            parser.feed(b"a" * 16)
            fed += 16
    assert caught.value.status == 431
    assert fed <= limits.max_request_line + limits.max_header_size + SLACK


def test_an_unfinished_head_over_the_limit_in_one_feed_is_refused() -> None:
    # One read can already hold more than any legal head: refuse it now (431) rather
    # than wait for more bytes that a slow client may never send.
    limits = Limits(max_request_line=64, max_header_size=256)
    parser = RequestParser(Recorder(), limits)
    with pytest.raises(ProtocolError) as caught:
        parser.feed(b"GET / HTTP/1.1\r\n" + HOST + b"X-Endless: " + b"a" * 4096)
    assert caught.value.status == 431


def test_an_endless_header_line_fed_byte_by_byte_is_refused() -> None:
    limits = Limits(max_request_line=64, max_header_size=256)
    parser = RequestParser(Recorder(), limits)
    data = b"GET / HTTP/1.1\r\n" + HOST + b"X-Endless: " + b"a" * 10_000
    with pytest.raises(ProtocolError) as caught:
        for i in range(len(data)):
            parser.feed(data[i : i + 1])
    assert caught.value.status == 431
    assert i + 1 <= limits.max_request_line + limits.max_header_size + SLACK


def test_content_length_at_the_limit_is_accepted() -> None:
    parsed = one(b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 100\r\n\r\n" + b"b" * 100, SMALL)
    assert len(parsed.body) == 100


def test_content_length_over_the_limit_is_413_at_the_head() -> None:
    # Known from the head: refused before any body byte, and before the listener hears
    # of the request (the app never runs).
    status, recorder = refused(
        b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 101\r\n\r\n", SMALL
    )
    assert (status, recorder.requests) == (413, [])


def chunked_of(sizes: list[int]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (n, b"c" * n) for n in sizes) + b"0\r\n\r\n"


def test_chunked_body_at_the_limit_is_accepted() -> None:
    parsed = one(
        b"POST / HTTP/1.1\r\n"
        + HOST
        + b"Transfer-Encoding: chunked\r\n\r\n"
        + chunked_of([60, 40]),
        SMALL,
    )
    assert len(parsed.body) == 100


def test_chunked_body_crossing_the_limit_is_413_when_it_crosses() -> None:
    head = b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
    recorder = Recorder()
    parser = RequestParser(recorder, SMALL)
    parser.feed(head + b"3c\r\n" + b"c" * 60 + b"\r\n")
    with pytest.raises(ProtocolError) as caught:
        parser.feed(b"29\r\n" + b"c" * 41)  # the terminating chunk never comes
    assert caught.value.status == 413
    assert len(recorder.requests[0].body) <= SMALL.max_body_size
    assert not recorder.requests[0].complete


def test_body_limit_is_per_request() -> None:
    one_body = (
        b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n" + chunked_of([80])
    )
    cl_body = b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 80\r\n\r\n" + b"d" * 80
    recorder = whole(one_body + cl_body + one_body, SMALL)
    assert [len(r.body) for r in recorder.requests] == [80, 80, 80]


# -- framing rules (each refused before the head reaches the listener) ----------------

HEAD_RULES = [
    (
        "cl-and-te",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
    ),
    (
        "te-and-cl",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        400,
    ),
    (
        "cl-duplicate-same",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
        400,
    ),
    (
        "cl-duplicate-differing",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy",
        400,
    ),
    ("cl-plus", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\nx", 400),
    ("cl-minus", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\nx", 400),
    ("cl-list", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\nx", 400),
    (
        "cl-overflow",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
        400,
    ),
    (
        "te-chunked-gzip",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        400,
    ),
    (
        "te-gzip-chunked",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        400,
    ),
    ("te-identity", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n", 400),
    (
        "te-gzip-then-chunked-fields",
        b"POST / HTTP/1.1\r\nHost: x\r\n"
        b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
    ),
    (
        "te-chunked-twice",
        b"POST / HTTP/1.1\r\nHost: x\r\n"
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
    ),
    ("te-in-http10", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    ("missing-host", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("duplicate-host", b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400),
    ("duplicate-host-http10", b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("obs-fold", b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", 400),
    ("bare-lf", b"GET / HTTP/1.1\nHost: x\n\n", 400),
    ("nul-in-value", b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n", 400),
    ("space-before-colon", b"GET / HTTP/1.1\r\nHost: x\r\nX : a\r\n\r\n", 400),
    ("http09", b"GET /\r\n\r\n", 400),
    ("http20", b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    ("unknown-method", b"FOO / HTTP/1.1\r\nHost: x\r\n\r\n", 501),
    ("unsupported-expectation", b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n", 417),
    ("authority-form", b"GET example.com:80 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("connect", b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 400),
    ("asterisk-not-options", b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("absolute-form-other-scheme", b"GET ftp://x/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
]


@pytest.mark.parametrize(
    ("data", "status"), [r[1:] for r in HEAD_RULES], ids=[r[0] for r in HEAD_RULES]
)
def test_head_rule(data: bytes, status: int) -> None:
    got, recorder = refused(data)
    assert (got, recorder.requests) == (status, [])


@pytest.mark.parametrize(
    "value",
    [b"example.com/evil", b"exa mple.com", b"user@example.com"],
)
def test_host_with_an_invalid_value_is_400(value: bytes) -> None:
    # RFC 9112 §3.2: a server MUST respond 400 to a request with "a Host header field
    # with an invalid field value" (Host = uri-host [ ":" port ]).
    got, recorder = refused(b"GET / HTTP/1.1\r\nHost: " + value + b"\r\n\r\n")
    assert (got, recorder.requests) == (400, [])


BODY_RULES = [
    ("chunk-size-not-hex", b"zz\r\nab\r\n0\r\n\r\n"),
    ("chunk-size-0x", b"0x2\r\nab\r\n0\r\n\r\n"),
    ("chunk-size-negative", b"-2\r\nab\r\n0\r\n\r\n"),
    ("chunk-size-overflow", b"10000000000000002\r\nab\r\n0\r\n\r\n"),
    ("chunk-data-too-long", b"2\r\nabc\r\n0\r\n\r\n"),
    ("chunk-size-bare-lf", b"2\nab\r\n0\r\n\r\n"),
    ("trailer-without-colon", b"2\r\nab\r\n0\r\nbroken\r\n\r\n"),
]


@pytest.mark.parametrize("body", [r[1] for r in BODY_RULES], ids=[r[0] for r in BODY_RULES])
def test_body_rule(body: bytes) -> None:
    head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    status, recorder = refused(head + body)
    assert status == 400
    assert [r.complete for r in recorder.requests] == [False]


def test_chunk_size_overflow_is_refused_byte_by_byte_too() -> None:
    head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    data = head + b"f" * 40 + b"\r\n"
    status, _ = refused([data[i : i + 1] for i in range(len(data))])
    assert status == 400


# -- request targets and versions -----------------------------------------------------


@pytest.mark.parametrize(
    ("target", "raw_path", "query"),
    [
        (b"http://example.com/p/q?x=1", b"/p/q", b"x=1"),
        (b"https://example.com", b"/", b""),
        (b"http://example.com:8080?x", b"/", b"x"),
        (b"HTTP://EXAMPLE.COM/A", b"/A", b""),
    ],
)
def test_absolute_form(target: bytes, raw_path: bytes, query: bytes) -> None:
    head = one(b"GET " + target + b" HTTP/1.1\r\nHost: example.com\r\n\r\n").head
    assert (head.raw_path, head.query_string) == (raw_path, query)


def test_asterisk_form_for_options() -> None:
    head = one(b"OPTIONS * HTTP/1.1\r\n" + HOST + b"\r\n").head
    assert (head.method, head.raw_path, head.query_string) == ("OPTIONS", b"*", b"")


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_supported_versions(version: str) -> None:
    assert one(f"GET / HTTP/{version}\r\nHost: x\r\n\r\n".encode()).head.http_version == version


def test_error_statuses_carry_their_wire_answer() -> None:
    from covetd.engine.h1 import errors

    assert [
        (cls.__name__, cls.status)
        for cls in (
            errors.BadRequest,
            errors.RequestTimeout,
            errors.BodyTooLarge,
            errors.RequestLineTooLong,
            errors.ExpectationFailed,
            errors.HeadersTooLarge,
            errors.VersionNotSupported,
        )
    ] == [
        ("BadRequest", 400),
        ("RequestTimeout", 408),
        ("BodyTooLarge", 413),
        ("RequestLineTooLong", 414),
        ("ExpectationFailed", 417),
        ("HeadersTooLarge", 431),
        ("VersionNotSupported", 505),
    ]
    assert errors.ProtocolError("x", 501).status == 501
