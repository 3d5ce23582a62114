"""ASGI apps on covetd's WebSocket (issue 5, deliverable 3): the ``websocket.*`` events
for a raw ASGI app and for Starlette, including the ``websocket.http.response`` denial
extension, through real clients.

echo; ``websocket.close`` before accepting → 403; a denial → the app's own status,
headers and body; the app raising after accepting → close 1011 (and an error-log
entry), before → 500; the app's close code reaching the client; the disconnect code
reaching the app; the scope (subprotocols, headers, path, query_string, scheme ws).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from support.process import Covetd, wait_for
from support.rawhttp import RawConnection
from wsclients import WsprotoClient, closed_by_server, refused, upgrade_request, ws_connect

CONFIG = {"websocket": {"ping_interval": 0}}


@pytest.fixture(scope="module")
def raw(module_covetd: Any) -> Covetd:
    server: Covetd = module_covetd("ws_asgi:app", CONFIG)
    return server


@pytest.fixture(scope="module")
def starlette(module_covetd: Any) -> Covetd:
    server: Covetd = module_covetd("ws_starlette:app", CONFIG)
    return server


def recorded(server: Covetd, key: str) -> Any:
    """What the app recorded under ``key`` (JSON ``null``/``None`` until it did)."""

    def fetch() -> Any:
        body = httpx.get(f"{server.url}/observed/{key}", timeout=10).text
        return None if body in ("null", "None") else body

    return wait_for(fetch, 10, 0.05, f"the app to record {key}")


# -- raw ASGI -----------------------------------------------------------------------------


def test_raw_echo_text_and_bytes(raw: Covetd) -> None:
    with ws_connect(raw, "/echo?key=raw-echo") as client:
        for message in ["hi", "✓" * 1000, b"\x00\xff", b"x" * 100_000]:
            client.send(message)
            assert client.recv(timeout=10) == message
    assert json.loads(recorded(raw, "raw-echo")) == {"code": 1000}


@pytest.mark.parametrize("code", [1001, 4002])
def test_raw_app_receives_the_client_close_code(raw: Covetd, code: int) -> None:
    with WsprotoClient.open(raw.host, raw.port, f"/echo?key=raw-close-{code}") as client:
        client.send_text("x")
        assert client.receive() == "x"
        client.close(code, "leaving")
        assert client.wait_closed().code == code
    assert json.loads(recorded(raw, f"raw-close-{code}")) == {"code": code}


def test_raw_scope(raw: Covetd) -> None:
    with ws_connect(
        raw,
        "/scope/deeper?x=1&y=%20z",
        subprotocols=["graphql-ws", "v2"],
        origin="https://origin.example",
        additional_headers={"X-Trace": "abc"},
    ) as client:
        assert client.subprotocol == "graphql-ws"
        assert client.response.headers["X-Asgi-Accept"] == "yes"
        scope = json.loads(client.recv(timeout=10))
    assert scope["type"] == "websocket"
    assert scope["asgi"]["version"] == "3.0"
    assert scope["http_version"] == "1.1"
    assert scope["scheme"] == "ws"
    assert (scope["path"], scope["raw_path"]) == ("/scope/deeper", "/scope/deeper")
    assert scope["query_string"] == "x=1&y=%20z"
    assert scope["root_path"] == ""
    assert scope["subprotocols"] == ["graphql-ws", "v2"]
    headers = dict(scope["headers"])
    assert all(name == name.lower() for name, _ in scope["headers"])
    assert headers["origin"] == "https://origin.example"
    assert headers["x-trace"] == "abc"
    assert headers["sec-websocket-protocol"] == "graphql-ws, v2"
    assert headers["host"] == f"127.0.0.1:{raw.port}"
    assert scope["client"][0] == "127.0.0.1" and scope["client"][1] > 0
    assert scope["server"] == ["127.0.0.1", raw.port]
    assert scope["extensions"] == ["websocket.http.response"]


def test_raw_close_before_accept_is_403(raw: Covetd) -> None:
    response = refused(raw, "/close-before-accept")
    assert (response.status_code, bytes(response.body)) == (403, b"Forbidden\n")


def test_raw_denial_response_is_the_apps(raw: Covetd) -> None:
    response = refused(raw, "/deny")
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Denied-By"] == "raw-asgi"
    assert response.headers["Content-Length"] == str(len(b'{"error":"who are you"}'))
    assert bytes(response.body) == b'{"error":"who are you"}'  # both body messages


def test_raw_refusals_end_the_connection(raw: Covetd) -> None:
    for path, status in (("/deny", 401), ("/close-before-accept", 403), ("/no-answer", 500)):
        with RawConnection(raw.host, raw.port, timeout=10) as conn:
            conn.send(upgrade_request(path))
            response = conn.read_response()
            assert (response.status, response.header("connection")) == (status, "close")
            assert conn.is_closed(timeout=3), path  # well under http.keepalive_timeout


def test_raw_denial_with_wsproto(raw: Covetd) -> None:
    with WsprotoClient.open(raw.host, raw.port, "/deny") as client:
        assert client.rejection is not None
        assert (client.rejection.status, client.rejection.body) == (401, b'{"error":"who are you"}')


def test_raw_app_raising_after_accept_closes_1011(raw: Covetd) -> None:
    with ws_connect(raw, "/crash/after-accept") as client:
        client.send("boom")
        assert closed_by_server(client) == (1011, "internal error")
    wait_for(
        lambda: (
            "Exception in ASGI WebSocket application" in raw.log()
            and "RuntimeError: asgi-ws-crash-after-accept" in raw.log()
        ),
        10,
        what="the error-log entry",
    )


def test_raw_app_raising_before_accept_is_500(raw: Covetd) -> None:
    assert refused(raw, "/crash/before-accept").status_code == 500
    wait_for(lambda: "RuntimeError: asgi-ws-crash-before-accept" in raw.log(), 10, what="the log")


def test_raw_app_returning_without_answering_is_500(raw: Covetd) -> None:
    assert refused(raw, "/no-answer").status_code == 500
    wait_for(
        lambda: "returned without answering the WebSocket handshake" in raw.log(),
        10,
        what="the log",
    )


def test_raw_app_close_code_reaches_the_client(raw: Covetd) -> None:
    with ws_connect(raw, "/close") as client:
        assert closed_by_server(client) == (4001, "asgi says bye")


def test_raw_app_still_serves_http(raw: Covetd) -> None:
    response = httpx.get(raw.url + "/anything", timeout=10)
    assert (response.status_code, response.text) == (200, "raw ASGI over HTTP")


# -- Starlette ----------------------------------------------------------------------------


def test_starlette_echo(starlette: Covetd) -> None:
    with ws_connect(starlette, "/echo?key=st-echo") as client:
        client.send("hello")
        assert client.recv(timeout=10) == "echo: hello"
        client.send(b"\x01\x02")
        assert client.recv(timeout=10) == b"\x01\x02"
        client.close(4005, "bye")
    assert recorded(starlette, "st-echo") == "4005"


def test_starlette_endpoint_class_with_json_and_subprotocol(starlette: Covetd) -> None:
    with WsprotoClient.open(
        starlette.host, starlette.port, "/counter", subprotocols=["other", "counter"]
    ) as client:
        assert client.accepted is not None and client.accepted.subprotocol == "counter"
        client.send_json({"a": 1})
        assert client.receive_json() == {"count": 1, "echo": {"a": 1}}
        client.send_json([2, "two"])
        assert client.receive_json() == {"count": 2, "echo": [2, "two"]}


def test_starlette_sees_path_params_query_origin_and_scheme(starlette: Covetd) -> None:
    with ws_connect(starlette, "/rooms/blue?q=3", origin="https://o.example") as client:
        seen = json.loads(client.recv(timeout=10))
    assert seen == {
        "path": "/rooms/blue",
        "scheme": "ws",
        "query": {"q": "3"},
        "room": "blue",
        "origin": "https://o.example",
        "client": "127.0.0.1",
    }


def test_starlette_close_before_accept_is_403(starlette: Covetd) -> None:
    assert refused(starlette, "/reject").status_code == 403


def test_starlette_unknown_websocket_route_is_refused(starlette: Covetd) -> None:
    assert refused(starlette, "/no/such/route").status_code == 403  # Starlette closes


def test_starlette_denial_response(starlette: Covetd) -> None:
    response = refused(starlette, "/deny")
    assert response.status_code == 418
    assert response.headers["X-Denied"] == "starlette"
    assert bytes(response.body) == b"teapots only\n"


def test_starlette_raising_after_accept_closes_1011(starlette: Covetd) -> None:
    with ws_connect(starlette, "/crash") as client:
        client.send("boom")
        assert closed_by_server(client) == (1011, "internal error")
    wait_for(
        lambda: "RuntimeError: starlette-ws-crash-after-accept" in starlette.log(),
        10,
        what="the error-log entry",
    )
