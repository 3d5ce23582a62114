"""A Covet handler that does not accept answers real HTTP (issue 5, deliverable 3), and
a handler that fails is reported: 500 before accepting, close 1011 after, both logged.

The refusal ends the connection (``connection: close``, then EOF): after an upgrade
request the client's next bytes would be frames, never a second request.
"""

from __future__ import annotations

from typing import Any

import pytest
from support.process import Covetd, wait_for
from support.rawhttp import RawConnection
from wsclients import WsprotoClient, closed_by_server, refused, upgrade_request, ws_connect

APP = "ws_covet:app"


@pytest.fixture(scope="module")
def server(module_covetd: Any) -> Covetd:
    server: Covetd = module_covetd(APP, {"websocket": {"ping_interval": 0}})
    return server


def test_returning_a_response_refuses_with_it(server: Covetd) -> None:
    response = refused(server, "/refuse/response")
    assert response.status_code == 451
    assert response.headers["X-Refused"] == "yes"
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert bytes(response.body) == b"no WebSocket for you\n"


def test_raising_http_exception_refuses_with_its_status(server: Covetd) -> None:
    response = refused(server, "/refuse/http-exception")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert bytes(response.body) == b'{"detail":"token needed"}'


def test_returning_without_accepting_is_403(server: Covetd) -> None:
    response = refused(server, "/refuse/silently")
    assert (response.status_code, bytes(response.body)) == (403, b"Forbidden\n")


def test_close_before_accept_is_403(server: Covetd) -> None:
    """``ws.close()`` before ``accept()`` is documented as a refusal with HTTP 403.
    (It used to answer nothing at all and drop the connection.)"""
    response = refused(server, "/refuse/close")
    assert (response.status_code, bytes(response.body)) == (403, b"Forbidden\n")


def test_unknown_path_is_404(server: Covetd) -> None:
    response = refused(server, "/no/such/socket")
    assert (response.status_code, bytes(response.body)) == (404, b"Not Found\n")


def test_a_path_with_only_http_routes_is_refused(server: Covetd) -> None:
    """``/`` is a GET route: an upgrade there is no WebSocket (403), not a 200 page."""
    assert refused(server, "/").status_code == 403


def test_handler_raising_before_accept_is_500_and_logged(server: Covetd) -> None:
    response = refused(server, "/crash/before-accept")
    assert (response.status_code, bytes(response.body)) == (500, b"Internal Server Error\n")
    wait_for(
        lambda: (
            'Exception in WebSocket handler for "GET /crash/before-accept' in server.log()
            and "RuntimeError: ws-crash-before-accept" in server.log()
        ),
        10,
        what="the error-log entry",
    )


def test_handler_raising_after_accept_closes_1011_and_logs(server: Covetd) -> None:
    with ws_connect(server, "/crash/after-accept") as client:
        client.send("go")
        assert closed_by_server(client) == (1011, "internal error")
    wait_for(
        lambda: (
            'Exception in WebSocket handler for "GET /crash/after-accept' in server.log()
            and "RuntimeError: ws-crash-after-accept" in server.log()
        ),
        10,
        what="the error-log entry",
    )


def test_handler_raising_after_accept_with_wsproto(server: Covetd) -> None:
    with WsprotoClient.open(server.host, server.port, "/crash/after-accept") as client:
        client.send_text("go")
        closed = client.wait_closed()
    assert (closed.code, closed.reason, closed.eof) == (1011, "internal error", True)


def test_wsproto_sees_the_refusal_body(server: Covetd) -> None:
    with WsprotoClient.open(server.host, server.port, "/refuse/response") as client:
        assert client.accepted is None and client.rejection is not None
        assert client.rejection.status == 451
        assert client.rejection.headers["x-refused"] == "yes"
        assert client.rejection.body == b"no WebSocket for you\n"


@pytest.mark.parametrize(
    ("path", "status"),
    [("/refuse/response", 451), ("/refuse/silently", 403), ("/nowhere", 404), ("/", 403)],
)
def test_a_refusal_ends_the_connection(server: Covetd, path: str, status: int) -> None:
    """The refusal says ``connection: close`` and the server closes; a request sent
    after it is not left waiting on a connection nobody reads any more."""
    with RawConnection(server.host, server.port, timeout=10) as conn:
        conn.send(upgrade_request(path))
        response = conn.read_response()
        assert response.status == status
        assert response.header("connection") == "close"
        conn.send(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        # (well under http.keepalive_timeout, 5 s, which would close it anyway)
        assert conn.is_closed(timeout=3), "the connection stayed open after the refusal"
        assert b"HTTP/1.1" not in conn.buffer, conn.buffer
