"""A client that leaves mid-request: the handler can tell (``is_disconnected``, or
``ClientDisconnect`` from the body), a streaming response stops being produced, and
the server goes on serving everyone else."""

from __future__ import annotations

import uuid

import pytest
from support.probe import counter, fetch, read_response, request, state, wait_for_state
from support.rawhttp import RawConnection


@pytest.fixture(scope="module")
def server(module_covetd):
    return module_covetd("engine_probe:app")


def key() -> str:
    return uuid.uuid4().hex[:12]


def test_handler_sees_the_disconnect(server) -> None:
    k = key()
    with RawConnection(server.host, server.port) as conn:
        conn.send(request(f"/hold/{k}"))
        wait_for_state(server, k, "waiting")
    wait_for_state(server, k, "disconnected")
    assert fetch(server, request("/")).body == b"hello"


def test_disconnect_mid_body_raises_client_disconnect_in_the_handler(server) -> None:
    k = key()
    with RawConnection(server.host, server.port) as conn:
        head = f"POST /hold-body/{k} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
        conn.send(head.encode() + b"only part of it")
        wait_for_state(server, k, "reading")
    wait_for_state(server, k, "ClientDisconnect")
    assert fetch(server, request("/")).body == b"hello"


def test_streaming_response_stops_when_the_client_leaves(server) -> None:
    k = key()
    with RawConnection(server.host, server.port) as conn:
        conn.send(request(f"/ticker/{k}"))
        conn.read_until(b"\r\n\r\n")
        conn.read_until(b"tick 3\n")  # it is streaming
    wait_for_state(server, k, "stopped")  # the generator was closed, not run out
    produced = state(server, f"{k}:final")
    assert produced >= 3
    # Another full request/response later, nothing more was produced.
    assert fetch(server, request("/seq/1?s=0.1")).body == b"seq 1"
    assert counter(server, k) == produced


def test_other_clients_are_served_while_one_streams_and_after_it_leaves(server) -> None:
    k = key()
    with RawConnection(server.host, server.port) as streaming:
        streaming.send(request(f"/ticker/{k}"))
        streaming.read_until(b"tick 2\n")
        with RawConnection(server.host, server.port) as other:
            for i in range(3):
                other.send(request(f"/seq/{i}"))
                assert read_response(other).body == f"seq {i}".encode()
    wait_for_state(server, k, "stopped")
    assert fetch(server, request("/")).body == b"hello"
