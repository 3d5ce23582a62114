"""Cancellations aimed at a handler's task reach that handler, and only it.

The engine runs a request's first step inside the connection's callback with the
connection's driver task as the current task, so ``asyncio.timeout`` captures the
driver task. A timeout that fires before the driver has resumed the request (an
already-expired deadline, or a busy loop) must still end in the handler's
TimeoutError, never in a stuck request or a dead connection.
"""

from __future__ import annotations

import concurrent.futures

import pytest
from support.probe import read_response, request
from support.rawhttp import RawConnection


@pytest.fixture(scope="module")
def server(module_covetd):
    return module_covetd("engine_probe:app")


@pytest.mark.parametrize("seconds", ["0", "0.0001", "0.01"])
def test_timeout_reaches_the_handler(server, seconds: str) -> None:
    with RawConnection(server.host, server.port) as conn:
        for _ in range(3):  # and the connection goes on serving
            conn.send(request(f"/timeout/{seconds}"))
            response = read_response(conn)
            assert (response.status, response.body) == (200, b"timed out")
        conn.send(request("/"))
        assert read_response(conn).status == 200


def test_timeouts_on_many_connections_at_once(server) -> None:
    # A new connection gets a new driver task; a deadline that fires before that
    # task's first step used to cancel it with the request still queued (a hang
    # seen about once in a few hundred requests on a loaded machine).
    def one(i: int) -> bytes:
        with RawConnection(server.host, server.port) as conn:
            conn.send(request(f"/timeout/{['0', '0.001', '0.005'][i % 3]}"))
            return read_response(conn).body

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        bodies = list(pool.map(one, range(384)))
    assert bodies == [b"timed out"] * 384
