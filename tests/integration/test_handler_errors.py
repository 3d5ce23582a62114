"""A handler that raises: the client gets a bare 500 (no traceback, no exception text),
the error log gets the request line and the traceback, and the server goes on."""

from __future__ import annotations

import pytest
from support.probe import fetch, read_response, request
from support.process import wait_for
from support.rawhttp import RawConnection

SECRETS = (b"secret", b"Traceback", b"RuntimeError", b"engine_probe", b'File "')


@pytest.fixture
def server(covetd):
    return covetd("engine_probe:app")


def logged(server, text: str) -> str:
    """The error log, once it contains ``text``."""
    return wait_for(lambda: text in (log := server.log()) and log, what=f"{text!r} in the log")


def test_exception_is_a_bare_500(server) -> None:
    with RawConnection(server.host, server.port) as conn:
        conn.send(request("/boom"))
        response = read_response(conn)
        assert response.status == 500
        assert response.body == b"Internal Server Error\n"
        for secret in SECRETS:
            assert secret not in response.body
            assert all(secret.decode() not in v for _, v in response.headers)
        conn.send(request("/"))  # the same connection goes on
        assert read_response(conn).body == b"hello"


def test_error_log_has_the_request_line_and_the_traceback(server) -> None:
    assert fetch(server, request("/boom?x=1")).status == 500
    log = wait_for(
        lambda: "RuntimeError: secret internal detail" in server.log() and server.log(),
        what="the error log",
    )
    entry = log[log.index('"GET /boom?x=1 HTTP/1.1"') :]
    assert "Traceback (most recent call last)" in entry
    assert "RuntimeError: secret internal detail" in entry


def test_next_request_on_another_connection_works(server) -> None:
    assert fetch(server, request("/boom")).status == 500
    response = fetch(server, request("/"))
    assert (response.status, response.body) == (200, b"hello")


def test_exception_mid_stream_breaks_the_connection_not_the_server(server) -> None:
    # After the head went out, the only honest signal is an incomplete message: the
    # connection closes without the last chunk.
    with RawConnection(server.host, server.port) as conn:
        conn.send(request("/boom-stream") + request("/"))
        head = conn.read_until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ")
        rest = conn.read_to_close()
    assert rest.startswith(b"b\r\nfirst part\n\r\n")
    assert not rest.endswith(b"0\r\n\r\n"), "a failed stream must not look complete"
    assert b"HTTP/1.1" not in rest
    log = logged(server, "RuntimeError: secret streaming detail")
    assert '"GET /boom-stream HTTP/1.1"' in log
    assert fetch(server, request("/")).body == b"hello"
