"""Input limits on the wire (``http.max_*``), with small values to keep it fast.

Each refusal is the limit's status with ``connection: close``, then a closed
connection; a refused request never reaches the app. A body over ``max_body_size`` is
refused as soon as that is known: from Content-Length before the body is sent, or
while a chunked body is still streaming in.
"""

from __future__ import annotations

import uuid

import pytest
from support.probe import assert_error_and_close, counter, read_response, request
from support.rawhttp import RawConnection

LIMITS = {
    "max_request_line": 256,
    "max_header_size": 1024,
    "max_headers": 10,
    "max_body_size": 1024,
}


@pytest.fixture(scope="module")
def server(module_covetd):
    return module_covetd("engine_probe:app", {"http": LIMITS})


def key() -> str:
    return uuid.uuid4().hex[:12]


def connect(server) -> RawConnection:
    return RawConnection(server.host, server.port)


def line_of(length: int, path: str) -> bytes:
    """``GET <path>?<padding> HTTP/1.1``: a request line of exactly ``length`` bytes."""
    start = f"GET {path}?"
    return (start + "p" * (length - len(start) - len(" HTTP/1.1")) + " HTTP/1.1").encode()


# -- request line ---------------------------------------------------------------------


def test_request_line_at_the_limit_is_served(server) -> None:
    k = key()
    with connect(server) as conn:
        conn.send(line_of(256, f"/count/{k}") + b"\r\nHost: x\r\n\r\n")
        assert read_response(conn).status == 200
    assert counter(server, k) == 1


def test_request_line_over_the_limit_is_414(server) -> None:
    k = key()
    with connect(server) as conn:
        conn.send(line_of(257, f"/count/{k}") + b"\r\nHost: x\r\n\r\n" + request(f"/count/{k}"))
        assert_error_and_close(conn, 414)
    assert counter(server, k) == 0


def test_long_target_is_414_before_the_line_ends(server) -> None:
    with connect(server) as conn:
        conn.send(b"GET /" + b"a" * 1000)  # no end of line, ever
        assert_error_and_close(conn, 414)


# -- header section -------------------------------------------------------------------


def test_header_block_over_the_limit_is_431(server) -> None:
    k = key()
    with connect(server) as conn:
        conn.send(
            f"GET /count/{k} HTTP/1.1\r\nHost: x\r\nX-Big: {'b' * 1024}\r\n\r\n".encode()
            + request(f"/count/{k}")
        )
        assert_error_and_close(conn, 431)
    assert counter(server, k) == 0


def test_endless_header_line_is_431_before_it_ends(server) -> None:
    # 4 KiB of one unfinished header line is more than any legal head here (256 + 1024):
    # the answer is 431 now, not a 408 once header_timeout (10 s) expires.
    with RawConnection(server.host, server.port, timeout=2.0) as conn:
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Endless: " + b"e" * 4096)  # no CRLF
        assert_error_and_close(conn, 431)


def test_header_count_at_the_limit_is_served(server) -> None:
    fields = "".join(f"X-{i}: v\r\n" for i in range(9))  # + Host = 10
    with connect(server) as conn:
        conn.send(f"GET / HTTP/1.1\r\nHost: x\r\n{fields}\r\n".encode())
        assert read_response(conn).status == 200


def test_header_count_over_the_limit_is_431(server) -> None:
    k = key()
    fields = "".join(f"X-{i}: v\r\n" for i in range(10))  # + Host = 11
    with connect(server) as conn:
        conn.send(f"GET /count/{k} HTTP/1.1\r\nHost: x\r\n{fields}\r\n".encode())
        assert_error_and_close(conn, 431)
    assert counter(server, k) == 0


# -- body -----------------------------------------------------------------------------


def test_content_length_at_the_limit_is_served(server) -> None:
    with connect(server) as conn:
        conn.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1024\r\n\r\n" + b"q" * 1024)
        response = read_response(conn)
    assert (response.status, response.body) == (200, b"q" * 1024)


def test_content_length_over_the_limit_is_413_before_the_body_is_sent(server) -> None:
    k = key()
    with connect(server) as conn:
        conn.send(f"POST /count/{k} HTTP/1.1\r\nHost: x\r\nContent-Length: 1025\r\n\r\n".encode())
        assert_error_and_close(conn, 413)  # no body byte was sent
    assert counter(server, k) == 0


def test_chunked_body_at_the_limit_is_served(server) -> None:
    with connect(server) as conn:
        conn.send(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + (b"200\r\n" + b"c" * 512 + b"\r\n") * 2
            + b"0\r\n\r\n"
        )
        response = read_response(conn)
    assert (response.status, response.body) == (200, b"c" * 1024)


def test_chunked_body_crossing_the_limit_is_413_while_the_client_sends(server) -> None:
    with connect(server) as conn:
        conn.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        conn.send((b"200\r\n" + b"c" * 512 + b"\r\n") * 2)  # exactly the limit so far
        conn.send(b"1\r\nc\r\n")  # one byte over; the last chunk is never sent
        assert_error_and_close(conn, 413)
