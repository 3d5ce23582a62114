"""Pipelining: many requests in one write are answered in order, each correctly, while
the server pauses and resumes reading behind the request it is handling."""

from __future__ import annotations

import threading

import pytest
from support.probe import read_response, request
from support.rawhttp import RawConnection


@pytest.fixture(scope="module")
def server(module_covetd):
    return module_covetd("engine_probe:app")


def test_200_pipelined_requests_to_a_slow_endpoint_in_one_write(server) -> None:
    count = 200
    with RawConnection(server.host, server.port) as conn:
        conn.send(b"".join(request(f"/seq/{i}?s=0.002") for i in range(count)))
        bodies = [read_response(conn).body for _ in range(count)]
    assert bodies == [f"seq {i}".encode() for i in range(count)]


def test_pipelined_requests_of_every_kind_in_one_write(server) -> None:
    with RawConnection(server.host, server.port) as conn:
        conn.send(
            request("/seq/1?s=0.05")
            + b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
            + b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"3;x=y\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
            + request("/", "HEAD")
            + request("/stream?n=2")
            + request("/seq/2")
        )
        got = [
            read_response(conn, head_request=method == "HEAD")
            for method in ("GET", "POST", "POST", "HEAD", "GET", "GET")
        ]
    assert [(r.status, r.body) for r in got] == [
        (200, b"seq 1"),
        (200, b"hello"),
        (200, b"abcde"),
        (200, b""),
        (200, b"part 0\npart 1\n"),
        (200, b"seq 2"),
    ]
    assert got[3].header("content-length") == "5"


def test_a_long_pipeline_sent_while_responses_are_read(server) -> None:
    # Far more than one read (~750 KB): the server pauses reading behind the requests
    # it holds and resumes as responses go out, many times over.
    count = 3000
    pad = "X-Pad: " + "p" * 200 + "\r\n"
    data = b"".join(request(f"/seq/{i}", headers=pad) for i in range(count))
    with RawConnection(server.host, server.port, timeout=10.0) as conn:
        sender = threading.Thread(target=conn.send, args=(data,))
        sender.start()
        try:
            bodies = [read_response(conn).body for _ in range(count)]
        finally:
            sender.join(10)
    assert bodies == [f"seq {i}".encode() for i in range(count)]


def test_pipelined_request_after_connection_close_is_not_answered(server) -> None:
    with RawConnection(server.host, server.port) as conn:
        conn.send(request("/seq/1", headers="Connection: close\r\n") + request("/seq/2"))
        response = read_response(conn)
        assert (response.body, response.header("connection")) == (b"seq 1", "close")
        assert conn.read_to_close() == b""
