"""Chunked transfer coding both ways: request bodies (with extensions, trailers, odd
splits, sizes above the read high-water mark) reach the handler intact; streaming
responses are chunked to HTTP/1.1 and close-delimited to HTTP/1.0."""

from __future__ import annotations

import json

import pytest
from support.probe import assert_closed_without_more, read_response, request
from support.rawhttp import RawConnection

CHUNKED_POST = b"POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
WITH_EXTRAS = (
    b'4;name=value;q="a;b"\r\nWiki\r\n5;flag\r\npedia\r\n'
    b"E\r\n in\r\n\r\nchunks.\r\n0;last=yes\r\nX-Checksum: 42\r\nX-Trace: t\r\n\r\n"
)


@pytest.fixture(scope="module")
def server(module_covetd):
    return module_covetd("engine_probe:app")


def inspect(server, data: bytes) -> dict:
    with RawConnection(server.host, server.port) as conn:
        conn.send(data)
        response = read_response(conn)
    assert response.status == 200, response
    return json.loads(response.body)


def test_chunked_body_with_extensions_and_trailers_reaches_the_handler(server) -> None:
    seen = inspect(server, CHUNKED_POST % b"/inspect" + WITH_EXTRAS)
    assert seen["body"] == "Wikipedia in\r\n\r\nchunks."


def test_trailers_do_not_show_up_as_request_headers(server) -> None:
    # RFC 9110 §6.5.1: trailer fields MUST NOT be merged into the header section.
    seen = inspect(
        server,
        CHUNKED_POST % b"/inspect" + b"3\r\nabc\r\n0\r\nX-Checksum: 42\r\nHost: evil\r\n\r\n",
    )
    assert seen["headers"] == [["host", "x"], ["transfer-encoding", "chunked"]]
    assert seen["url"] == "http://x/inspect"


def test_trailers_do_not_leak_into_the_next_request(server) -> None:
    with RawConnection(server.host, server.port) as conn:
        conn.send(
            CHUNKED_POST % b"/echo"
            + b"3\r\nabc\r\n0\r\nX-Checksum: 42\r\nHost: evil\r\n\r\n"
            + b"GET /inspect HTTP/1.1\r\nHost: next\r\n\r\n"
        )
        assert read_response(conn).body == b"abc"
        response = read_response(conn)
    assert response.status == 200, response
    assert json.loads(response.body)["headers"] == [["host", "next"]]


def test_chunked_body_sent_in_small_pieces(server) -> None:
    data = CHUNKED_POST % b"/echo" + WITH_EXTRAS
    with RawConnection(server.host, server.port) as conn:
        for i in range(0, len(data), 3):
            conn.send(data[i : i + 3])
        response = read_response(conn)
    assert response.body == b"Wikipedia in\r\n\r\nchunks."


def test_large_chunked_body_is_intact(server) -> None:
    pieces = [bytes([i]) * 65536 for i in range(32)]  # 2 MiB, far above the high water
    with RawConnection(server.host, server.port) as conn:
        conn.send(CHUNKED_POST % b"/echo")
        for piece in pieces:
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        conn.send(b"0\r\n\r\n")
        response = read_response(conn)
    assert response.body == b"".join(pieces)


def test_empty_chunked_body(server) -> None:
    with RawConnection(server.host, server.port) as conn:
        conn.send(CHUNKED_POST % b"/echo" + b"0\r\n\r\n")
        response = read_response(conn)
    assert (response.status, response.body) == (200, b"")


def test_streaming_response_is_chunked_to_http11(server) -> None:
    with RawConnection(server.host, server.port) as conn:
        conn.send(request("/stream?n=3"))
        head = conn.read_until(b"\r\n\r\n").lower()
        assert b"\r\ntransfer-encoding: chunked\r\n" in head
        assert b"content-length" not in head
        wire = conn.read_until(b"0\r\n\r\n")
        assert wire == b"7\r\npart 0\n\r\n7\r\npart 1\n\r\n7\r\npart 2\n\r\n0\r\n\r\n"
        conn.send(request("/"))  # still usable afterwards
        assert read_response(conn).body == b"hello"


def test_streaming_response_is_close_delimited_to_http10(server) -> None:
    with RawConnection(server.host, server.port) as conn:
        conn.send(b"GET /stream?n=3 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        head = conn.read_until(b"\r\n\r\n").lower()
        assert b"transfer-encoding" not in head
        assert b"content-length" not in head
        assert b"\r\nconnection: close\r\n" in head
        assert conn.read_to_close() == b"part 0\npart 1\npart 2\n"


def test_streaming_response_with_a_known_length_is_not_chunked(server) -> None:
    with RawConnection(server.host, server.port) as conn:
        conn.send(request("/stream-sized"))
        response = read_response(conn)
        assert response.header("transfer-encoding") is None
        assert (response.header("content-length"), response.body) == (
            "20",
            b"0123456789abcdefghij",
        )
        conn.send(request("/", headers="Connection: close\r\n"))
        assert read_response(conn).body == b"hello"
        assert_closed_without_more(conn)
