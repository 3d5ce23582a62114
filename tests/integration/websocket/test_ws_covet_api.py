"""The WebSocket API a Covet handler gets (issue 5, deliverable 3), through a real covetd
and two independent clients: the ``websockets`` library and wsproto on a raw socket.

accept (subprotocol, headers), receive/send text, bytes and JSON, ``async for``, what
the handler sees of the upgrade request (Origin, query, path params, headers, cookies,
client), ``close(code, reason)`` reaching the client, and ``close_code`` after the
client closed.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from support.process import Covetd, wait_for
from websockets.exceptions import ConnectionClosedOK
from wsclients import (
    WsprotoClient,
    closed_by_server,
    get_json,
    refused,
    ws_connect,
)

APP = "ws_covet:app"
TEXTS = ["hello", "", "héllo wörld ✓ 🎉", "x" * 70_000]  # 70 000: a 64-bit length
BLOBS = [b"\x00\x01\x02", b"", bytes(range(256)) * 300]


@pytest.fixture(scope="module")
def server(module_covetd: Any) -> Covetd:
    server: Covetd = module_covetd(APP, {"websocket": {"ping_interval": 0}})
    return server


def observed(server: Covetd, key: str, **expected: Any) -> dict[str, Any]:
    """What a handler recorded under ``key``, once it includes ``expected``."""

    def matches() -> dict[str, Any] | None:
        seen: dict[str, Any] = get_json(server, f"/observed/{key}")
        return seen if seen and expected.items() <= seen.items() else None

    found: dict[str, Any] = wait_for(matches, 10, 0.05, f"the handler to record {key}")
    return found


# -- echo ---------------------------------------------------------------------------------


def test_echo_text_and_bytes_with_websockets(server: Covetd) -> None:
    with ws_connect(server, "/echo") as client:
        for text in TEXTS:
            client.send(text)
            assert client.recv(timeout=10) == text
        for blob in BLOBS:
            client.send(blob)
            answer = client.recv(timeout=10)
            assert isinstance(answer, bytes) and answer == blob


def test_echo_text_and_bytes_with_wsproto(server: Covetd) -> None:
    with WsprotoClient.open(server.host, server.port, "/echo") as client:
        for text in TEXTS:
            client.send_text(text)
            assert client.receive() == text
        for blob in BLOBS:
            client.send_bytes(blob)
            assert client.receive() == blob
        client.close()
        closed = client.wait_closed()
    assert (closed.code, closed.eof) == (1000, True)


def test_fragmented_message_is_reassembled(server: Covetd) -> None:
    """Three frames of one message (wsproto's message_finished=False) echo as one."""
    from wsproto import events as wp

    with WsprotoClient.open(server.host, server.port, "/echo") as client:
        for part, last in (("frag", False), ("ment", False), ("ed ✓", True)):
            client.write(client.conn.send(wp.TextMessage(data=part, message_finished=last)))
        assert client.receive() == "fragmented ✓"


def test_receive_text_bytes_json_and_their_send_twins(server: Covetd) -> None:
    with ws_connect(server, "/typed") as client:
        client.send("shout")
        assert client.recv(timeout=10) == "SHOUT"
        client.send(b"\x01\x02\x03")
        assert client.recv(timeout=10) == b"\x03\x02\x01"
        client.send(json.dumps({"a": [1, 2, {"b": None}], "ü": "✓"}))
        answer = client.recv(timeout=10)
        assert isinstance(answer, str)
        assert json.loads(answer) == {"got": {"a": [1, 2, {"b": None}], "ü": "✓"}, "type": "dict"}
        assert "✓" in answer  # send_json keeps non-ASCII as is


def test_async_for_yields_every_message_then_ends_on_close(server: Covetd) -> None:
    with ws_connect(server, "/iter?key=iter-1") as client:
        client.send("one")
        client.send(b"two!")
        client.send("three")
        answers = [json.loads(client.recv(timeout=10)) for _ in range(3)]
        client.close(4321, "done here")
    assert answers == [
        {"index": 0, "kind": "text", "size": 3},
        {"index": 1, "kind": "bytes", "size": 4},
        {"index": 2, "kind": "text", "size": 5},
    ]
    # The loop ended normally (no exception) and the handler saw the client's code.
    assert observed(server, "iter-1") == {"count": 3, "close_code": 4321}


# -- the handshake ------------------------------------------------------------------------


def test_subprotocol_chosen_by_the_app_is_in_the_101(server: Covetd) -> None:
    with ws_connect(server, "/subprotocol", subprotocols=["chat.v1", "chat.v2"]) as client:
        assert client.subprotocol == "chat.v2"  # the server's preference wins
        assert client.response.headers["Sec-WebSocket-Protocol"] == "chat.v2"
        assert json.loads(client.recv(timeout=10)) == {
            "offered": ["chat.v1", "chat.v2"],
            "chosen": "chat.v2",
        }


def test_subprotocol_with_wsproto(server: Covetd) -> None:
    with WsprotoClient.open(
        server.host, server.port, "/subprotocol", subprotocols=["other", "chat.v1"]
    ) as client:
        assert client.accepted is not None
        assert client.accepted.subprotocol == "chat.v1"
        assert client.receive_json() == {"offered": ["other", "chat.v1"], "chosen": "chat.v1"}


def test_no_common_subprotocol_means_none_in_the_101(server: Covetd) -> None:
    with ws_connect(server, "/subprotocol", subprotocols=["mqtt"]) as client:
        assert client.subprotocol is None
        assert "Sec-WebSocket-Protocol" not in client.response.headers
        assert json.loads(client.recv(timeout=10))["chosen"] is None


def test_accepting_a_subprotocol_not_offered_is_an_error(server: Covetd) -> None:
    """accept(subprotocol=...) with one the client did not offer raises in the handler
    (before the 101): the client gets a 500 and the log says why."""
    response = refused(server, "/subprotocol/unoffered", subprotocols=["chat.v1"])
    assert response.status_code == 500
    wait_for(
        lambda: "'never-offered' was not offered by the client" in server.log(),
        10,
        what="the error in the log",
    )


def test_accept_headers_reach_the_client(server: Covetd) -> None:
    with ws_connect(server, "/accept-headers") as client:
        headers = client.response.headers
        assert headers["X-Covet-Test"] == "accepted"
        assert headers["Set-Cookie"] == "seen=1; Path=/"
        assert client.recv(timeout=10) == "hello"


def test_the_handler_sees_the_upgrade_request(server: Covetd) -> None:
    path = "/info/lobby/42?name=ada&lang=fr&lang=en&empty="
    with ws_connect(
        server,
        path,
        origin="https://chat.example",
        additional_headers={"X-Custom": "custom value", "Cookie": "session=abc; theme=dark"},
        subprotocols=["a", "b"],
    ) as client:
        seen = json.loads(client.recv(timeout=10))
    assert seen["origin"] == "https://chat.example"
    assert seen["path"] == "/info/lobby/42"
    assert seen["query"]["name"] == "ada" and "lang" in seen["query"]
    assert seen["path_params"] == {"room": "lobby", "number": 42}
    assert (seen["room"], seen["number"], seen["number_type"]) == ("lobby", 42, "int")
    assert seen["header"] == "custom value"
    assert seen["cookies"] == {"session": "abc", "theme": "dark"}
    assert seen["client_host"] == "127.0.0.1"
    assert seen["url_scheme"] == "http"
    assert seen["subprotocols"] == ["a", "b"]


def test_origin_is_none_without_the_header(server: Covetd) -> None:
    with WsprotoClient.open(server.host, server.port, "/info/r/1") as client:
        assert client.receive_json()["origin"] is None


def test_handler_can_refuse_by_origin(server: Covetd) -> None:
    response = refused(server, "/refuse/origin", origin="https://evil.example")
    assert (response.status_code, bytes(response.body)) == (403, b"origin not allowed\n")
    with ws_connect(server, "/refuse/origin", origin="https://good.example") as client:
        assert client.recv(timeout=10) == "welcome"


# -- closing ------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "reason"), [(1000, ""), (4000, "bye now"), (1008, "policy")])
def test_server_close_code_and_reason_reach_the_client(
    server: Covetd, code: int, reason: str
) -> None:
    key = f"close-{code}"
    with ws_connect(server, f"/close/{code}?reason={quote(reason)}&key={key}") as client:
        assert closed_by_server(client) == (code, reason)
    # close() returned once the client answered: the handler went on and recorded.
    assert observed(server, key) == {"close_code": code}


def test_server_close_reaches_a_wsproto_client(server: Covetd) -> None:
    with WsprotoClient.open(server.host, server.port, "/close/4999?reason=r%C3%A9sum%C3%A9") as c:
        closed = c.wait_closed()
    assert (closed.code, closed.reason, closed.eof) == (4999, "résumé", True)


@pytest.mark.parametrize(("code", "reason"), [(1000, ""), (1001, "tab closed"), (4100, "app")])
def test_close_code_after_the_client_closed(server: Covetd, code: int, reason: str) -> None:
    key = f"client-close-{code}"
    with ws_connect(server, f"/observe?key={key}") as client:
        client.send("one")
        client.send("two")
        observed(server, key, received=2)
        client.close(code, reason)
    seen = observed(server, key, open=False)
    assert seen == {
        "received": 2,
        "open": False,
        "close_code": code,
        "disconnect_code": code,
        "disconnect_reason": reason,
    }


def test_client_vanishing_without_a_close_frame_is_1006(server: Covetd) -> None:
    with WsprotoClient.open(server.host, server.port, "/observe?key=vanish") as client:
        client.send_text("one")
        observed(server, "vanish", received=1)
    seen = observed(server, "vanish", open=False)
    assert (seen["close_code"], seen["disconnect_code"]) == (1006, 1006)


def test_messages_after_the_server_close_raise(server: Covetd) -> None:
    """After the close handshake the client's connection is closed for good."""
    with ws_connect(server, "/close/1000") as client:
        closed_by_server(client)
        with pytest.raises(ConnectionClosedOK):
            client.send("too late")
