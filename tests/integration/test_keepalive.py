"""Persistence (RFC 9112 §9.3): HTTP/1.1 stays open unless told to close; HTTP/1.0
closes unless it asks for keep-alive, and then is told ``connection: keep-alive``."""

from __future__ import annotations

import uuid

import pytest
from support.probe import (
    assert_closed_without_more,
    counter,
    nothing_arrives,
    read_response,
    request,
)
from support.rawhttp import RawConnection


@pytest.fixture(scope="module")
def server(module_covetd):
    return module_covetd("engine_probe:app")


def test_http11_keeps_the_connection_open_by_default(server) -> None:
    with RawConnection(server.host, server.port) as conn:
        for i in range(3):
            conn.send(request(f"/seq/{i}"))
            response = read_response(conn)
            assert (response.status, response.body) == (200, f"seq {i}".encode())
            assert response.header("connection") is None
        assert nothing_arrives(conn, 0.2), "the connection was closed"


def test_http11_connection_close_is_honoured(server) -> None:
    k = uuid.uuid4().hex
    with RawConnection(server.host, server.port) as conn:
        conn.send(request("/", headers="Connection: close\r\n") + request(f"/count/{k}"))
        response = read_response(conn)
        assert (response.status, response.header("connection")) == (200, "close")
        assert_closed_without_more(conn)
    assert counter(server, k) == 0


def test_app_asking_to_close_closes(server) -> None:
    with RawConnection(server.host, server.port) as conn:
        conn.send(request("/close-me") + request("/"))
        response = read_response(conn)
        assert (response.status, response.body) == (200, b"bye")
        assert [v for n, v in response.headers if n == "connection"] == ["close"]
        assert_closed_without_more(conn)


def test_http10_closes_by_default(server) -> None:
    with RawConnection(server.host, server.port) as conn:
        conn.send(b"GET / HTTP/1.0\r\n\r\n")
        response = read_response(conn)
        assert (response.status, response.body) == (200, b"hello")
        assert response.header("connection") == "close"
        assert_closed_without_more(conn)


def test_http10_keep_alive_is_kept_alive(server) -> None:
    with RawConnection(server.host, server.port) as conn:
        for i in range(2):
            conn.send(f"GET /seq/{i} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".encode())
            response = read_response(conn)
            assert (response.status, response.body) == (200, f"seq {i}".encode())
            assert response.header("connection") == "keep-alive"
        conn.send(b"GET / HTTP/1.0\r\n\r\n")  # no keep-alive: the last one
        assert read_response(conn).header("connection") == "close"
        assert_closed_without_more(conn)
