"""HEAD (RFC 9110 §9.3.2): the GET's header fields, including its Content-Length, and no
content — also for streaming responses. Each HEAD is pipelined before another request:
any stray body byte would corrupt the next response."""

from __future__ import annotations

import pytest
from support.probe import counter, read_response, request, state
from support.rawhttp import RawConnection


@pytest.fixture(scope="module")
def server(module_covetd):
    return module_covetd("engine_probe:app")


def head_then_get(server, path: str):
    with RawConnection(server.host, server.port) as conn:
        conn.send(request(path, "HEAD") + request(path, headers="Connection: close\r\n"))
        head = read_response(conn, head_request=True)
        get = read_response(conn)
        assert conn.read_to_close() == b"", "bytes after the GET's response"
    return head, get


def without_date(response) -> list[tuple[str, str]]:
    return [(n, v) for n, v in response.headers if n not in ("date", "connection")]


def test_head_has_the_gets_headers_and_no_body(server) -> None:
    head, get = head_then_get(server, "/")
    assert (get.status, get.body) == (200, b"hello")
    assert head.status == 200
    assert head.header("content-length") == "5"
    assert without_date(head) == without_date(get)


def test_head_of_a_streaming_response_with_a_length(server) -> None:
    head, get = head_then_get(server, "/stream-sized")
    assert get.body == b"0123456789abcdefghij"
    assert head.header("content-length") == get.header("content-length") == "20"
    assert without_date(head) == without_date(get)


def test_head_of_a_chunked_streaming_response_sends_no_chunks(server) -> None:
    head, get = head_then_get(server, "/stream?n=2")
    assert get.body == b"part 0\npart 1\n"
    assert without_date(head) == without_date(get)
    assert head.header("content-length") is None


def test_head_of_an_endless_stream_is_answered_without_producing_it(server) -> None:
    with RawConnection(server.host, server.port) as conn:
        conn.send(request("/ticker/head-probe", "HEAD") + request("/"))
        head = read_response(conn, head_request=True)
        assert (head.status, head.header("transfer-encoding")) == (200, "chunked")
        assert read_response(conn).body == b"hello"
    assert counter(server, "head-probe") == 0
    assert state(server, "head-probe:final") is None
