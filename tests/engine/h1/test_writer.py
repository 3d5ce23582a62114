"""Response serialisation: status lines, heads, chunk framing, error answers, preamble.

Heads are checked byte for byte and also read back with llhttp's response parser, so a
head that looks right but does not parse (or frames its body differently than it
says) fails here.
"""

from __future__ import annotations

import re
import time
from email.utils import parsedate_to_datetime

import httptools
import pytest

from covetd.engine.h1.writer import (
    CONTINUE,
    LAST_CHUNK,
    Preamble,
    encode_chunk,
    error_response,
    serialize_head,
    status_line,
)

IMF_FIXDATE = re.compile(
    rb"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    rb" \d{4} \d\d:\d\d:\d\d GMT"
)
PREAMBLE = b"server: t\r\ndate: Thu, 01 Jan 2026 00:00:00 GMT\r\n"


class ReadBack:
    """What an HTTP client makes of a response (llhttp's response parser)."""

    def __init__(self, data: bytes) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.complete = False
        self.keep_alive: bool | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._parser.feed_data(data)
        self.status = self._parser.get_status_code()

    def on_headers_complete(self) -> None:
        self.keep_alive = self._parser.should_keep_alive()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.complete = True


# -- status lines ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "line"),
    [
        (200, b"HTTP/1.1 200 OK\r\n"),
        (404, b"HTTP/1.1 404 Not Found\r\n"),
        (431, b"HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        (505, b"HTTP/1.1 505 HTTP Version Not Supported\r\n"),
    ],
)
def test_status_line_for_known_codes(status: int, line: bytes) -> None:
    assert status_line(status) == line


def test_status_line_for_an_unknown_code_has_an_empty_reason() -> None:
    # RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]
    assert status_line(599) == b"HTTP/1.1 599 \r\n"
    assert status_line(299) == b"HTTP/1.1 299 \r\n"
    assert ReadBack(status_line(599) + b"content-length: 0\r\n\r\n").status == 599


@pytest.mark.parametrize("status", [0, 99, 1000, -200])
def test_status_line_refuses_codes_outside_three_digits(status: int) -> None:
    with pytest.raises(ValueError):
        status_line(status)


# -- heads ----------------------------------------------------------------------------

HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"2"), (b"x-b", b"1")]


def test_keep_alive_head_for_http11_has_no_connection_header() -> None:
    head = serialize_head(200, HEADERS, PREAMBLE, keep_alive=True)
    assert head == (
        b"HTTP/1.1 200 OK\r\n" + PREAMBLE + b"content-type: text/plain\r\n"
        b"content-length: 2\r\nx-b: 1\r\n\r\n"
    )
    read = ReadBack(head + b"ok")
    assert (read.status, read.body, read.complete, read.keep_alive) == (200, b"ok", True, True)


def test_closing_head_says_connection_close() -> None:
    head = serialize_head(200, HEADERS, PREAMBLE, keep_alive=False)
    assert head.endswith(b"x-b: 1\r\nconnection: close\r\n\r\n")
    assert ReadBack(head + b"ok").keep_alive is False


def test_http10_keep_alive_head_says_keep_alive() -> None:
    # An HTTP/1.0 client closes unless told otherwise (RFC 9112 §9.3, Appendix C.2.2).
    head = serialize_head(200, HEADERS, PREAMBLE, keep_alive=True, http10=True)
    assert head.endswith(b"x-b: 1\r\nconnection: keep-alive\r\n\r\n")


def test_http10_closing_head_says_close() -> None:
    head = serialize_head(200, HEADERS, PREAMBLE, keep_alive=False, http10=True)
    assert head.endswith(b"x-b: 1\r\nconnection: close\r\n\r\n")


def test_chunked_head_and_chunks_read_back_as_one_body() -> None:
    head = serialize_head(200, [(b"content-type", b"text/plain")], PREAMBLE, True, chunked=True)
    assert head.count(b"transfer-encoding: chunked\r\n") == 1
    assert head.endswith(b"\r\n\r\n") and not head.endswith(b"\r\n\r\n\r\n")
    read = ReadBack(head + encode_chunk(b"hello ") + encode_chunk(b"world") + LAST_CHUNK)
    assert (read.body, read.complete, read.keep_alive) == (b"hello world", True, True)


def test_chunked_closing_head() -> None:
    head = serialize_head(200, [], PREAMBLE, False, chunked=True)
    assert head.endswith(b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n")


def test_head_without_headers_or_preamble() -> None:
    assert serialize_head(204, [], b"", True) == b"HTTP/1.1 204 No Content\r\n\r\n"


def test_head_for_an_unknown_status() -> None:
    assert serialize_head(299, [], b"", True).startswith(b"HTTP/1.1 299 \r\n")


# -- chunks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "encoded"),
    [
        (b"a", b"1\r\na\r\n"),
        (b"x" * 10, b"a\r\n" + b"x" * 10 + b"\r\n"),
        (b"y" * 255, b"ff\r\n" + b"y" * 255 + b"\r\n"),
        (b"z" * 4096, b"1000\r\n" + b"z" * 4096 + b"\r\n"),
        (b"\r\n0\r\n\r\n", b"7\r\n\r\n0\r\n\r\n\r\n"),
    ],
    ids=["1", "10", "255", "4096", "looks-like-last-chunk"],
)
def test_encode_chunk(data: bytes, encoded: bytes) -> None:
    assert encode_chunk(data) == encoded


def test_last_chunk_and_continue() -> None:
    assert LAST_CHUNK == b"0\r\n\r\n"
    assert CONTINUE == b"HTTP/1.1 100 Continue\r\n\r\n"


# -- error answers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "phrase"),
    [
        (400, b"Bad Request"),
        (408, b"Request Timeout"),
        (413, b"Request Entity Too Large"),
        (414, b"Request-URI Too Long"),
        (417, b"Expectation Failed"),
        (431, b"Request Header Fields Too Large"),
        (501, b"Not Implemented"),
        (505, b"HTTP Version Not Supported"),
    ],
)
def test_error_response(status: int, phrase: bytes) -> None:
    answer = error_response(status, PREAMBLE)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status + phrase + b"\r\n" + PREAMBLE)
    assert body == phrase + b"\n"
    read = ReadBack(answer)
    assert (read.status, read.body, read.complete, read.keep_alive) == (
        status,
        phrase + b"\n",
        True,
        False,
    )
    assert (b"connection", b"close") in read.headers
    assert (b"content-type", b"text/plain; charset=utf-8") in read.headers
    assert (b"content-length", b"%d" % len(body)) in read.headers


def test_error_response_for_an_unknown_status() -> None:
    answer = error_response(499, b"")
    assert answer.startswith(b"HTTP/1.1 499 \r\n")
    read = ReadBack(answer)
    assert (read.status, read.body, read.keep_alive) == (499, b"Error\n", False)


# -- preamble -------------------------------------------------------------------------


def test_preamble_has_server_then_date() -> None:
    value = Preamble("covetd-test").value
    match = re.fullmatch(rb"server: covetd-test\r\ndate: (.+)\r\n", value)
    assert match is not None, value
    assert IMF_FIXDATE.fullmatch(match.group(1)), match.group(1)
    stamp = parsedate_to_datetime(match.group(1).decode()).timestamp()
    assert abs(stamp - time.time()) < 5


@pytest.mark.parametrize("server", [None, ""])
def test_preamble_without_server(server: str | None) -> None:
    value = Preamble(server).value
    assert value.startswith(b"date: ") and b"server" not in value


def test_preamble_is_rebuilt_only_when_the_second_changes() -> None:
    preamble = Preamble("s")
    preamble.refresh(1_700_000_000.2)
    first = preamble.value
    assert first == b"server: s\r\ndate: Tue, 14 Nov 2023 22:13:20 GMT\r\n"
    preamble.refresh(1_700_000_000.9)
    assert preamble.value is first
    preamble.refresh(1_700_000_001.0)
    assert preamble.value == b"server: s\r\ndate: Tue, 14 Nov 2023 22:13:21 GMT\r\n"
