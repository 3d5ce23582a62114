"""``http.max_connections``: above it the worker stops accepting, but a connection over
the limit is not refused: it waits in the listen backlog and is served once a slot
frees up."""

from __future__ import annotations

from support.probe import nothing_arrives, read_response, request
from support.rawhttp import RawConnection


def test_third_connection_waits_for_a_free_slot(covetd) -> None:
    server = covetd("engine_probe:app", {"http": {"max_connections": 2}})
    first = RawConnection(server.host, server.port)
    second = RawConnection(server.host, server.port)
    third = None
    try:
        for conn in (first, second):
            conn.send(request("/"))
            assert read_response(conn).status == 200
        third = RawConnection(server.host, server.port)  # connects: the kernel queues it
        third.send(request("/seq/3"))
        assert nothing_arrives(third, 0.5), "served above max_connections"

        first.close()
        response = read_response(third)  # not refused: served as soon as a slot frees
        assert (response.status, response.body) == (200, b"seq 3")

        second.send(request("/seq/2"))  # the survivor still works
        assert read_response(second).body == b"seq 2"
    finally:
        for conn in (first, second, third):
            if conn is not None:
                conn.close()
