"""``Expect: 100-continue`` (RFC 9110 §10.1.1): the interim 100 goes only to HTTP/1.1
clients, only once, and only when the app reads the body. An app that answers without
reading gets no 100 sent, and the connection closes after its answer (the unsent body
would otherwise be read as the next request)."""

from __future__ import annotations

import pytest
from support.probe import assert_closed_without_more, nothing_arrives, read_response, request
from support.rawhttp import RawConnection

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@pytest.fixture(scope="module")
def server(module_covetd):
    return module_covetd("engine_probe:app")


def test_http11_gets_100_continue_when_the_app_reads_the_body(server) -> None:
    with RawConnection(server.host, server.port) as conn:
        conn.send(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n"
        )
        assert conn.read_exactly(len(CONTINUE)) == CONTINUE
        conn.send(b"hello")
        assert nothing_arrives(conn, 0.2), "a second interim response or an early answer"
        conn.send(b"world")
        response = read_response(conn)
        assert (response.status, response.body) == (200, b"helloworld")
        assert response.header("connection") is None
        conn.send(request("/"))  # the connection is still good
        assert read_response(conn).body == b"hello"


def test_http10_never_gets_100_continue(server) -> None:
    # RFC 9110 §10.1.1: a server MUST ignore 100-continue in an HTTP/1.0 request.
    with RawConnection(server.host, server.port) as conn:
        conn.send(b"POST /echo HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        assert nothing_arrives(conn, 0.5), conn.buffer
        conn.send(b"hello")
        assert conn.read_until(b"\r\n") == b"HTTP/1.1 200 OK\r\n"


def test_no_100_continue_when_the_app_answers_without_reading(server) -> None:
    with RawConnection(server.host, server.port) as conn:
        conn.send(
            b"POST /ignore-body HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: 5\r\n\r\n"
        )
        response = read_response(conn)  # the first thing on the wire: not a 100
        assert (response.status, response.body) == (200, b"ignored")
        assert response.header("connection") == "close"
        assert_closed_without_more(conn)
