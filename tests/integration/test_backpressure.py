"""Writing is bounded (STYLE habit 7): a handler streaming a large response to a client
that does not read is held back once the socket and the transport buffer are full; the
number of chunks produced stays bounded while the client stalls. Then the client reads
everything, intact and in order."""

from __future__ import annotations

import pytest
from support.probe import SmallWindowConnection, get_json, request
from support.process import wait_for

CHUNKS = 512  # x 64 KiB = 32 MiB in all
SIZE = 65536
# What can be in flight while the client reads nothing: the server's socket send buffer
# (tcp_wmem max 4 MiB), the client's 16 KiB receive buffer and the transport's
# high-water mark. 8 MiB is a generous bound, a quarter of the response.
BOUND = 128


@pytest.fixture
def server(covetd):
    return covetd("engine_probe:app")


def progress(server) -> dict:
    return get_json(server, "/flood-state/bp")


def read_chunked_pieces(conn, count: int, size: int) -> None:
    """Read the chunked body piece by piece, checking each (no 32 MiB concatenation)."""
    for i in range(count):
        assert int(conn.read_until(b"\r\n")[:-2], 16) == size, i
        piece = conn.read_exactly(size)
        assert piece == bytes([i % 256]) * size, f"piece {i} is corrupt"
        assert conn.read_exactly(2) == b"\r\n"
    assert conn.read_until(b"\r\n\r\n") == b"0\r\n\r\n"


def test_producer_is_held_back_while_the_client_does_not_read(server) -> None:
    with SmallWindowConnection(server.host, server.port) as conn:
        conn.send(request(f"/flood/bp?chunks={CHUNKS}&size={SIZE}"))
        stalled = wait_for(
            lambda: (p := progress(server))["produced"] > 0 and p["idle"] > 0.5 and p,
            timeout=10,
            what="the producer to stall",
        )
        assert not stalled["finished"], "the whole response was produced into memory"
        assert stalled["produced"] <= BOUND, stalled

        head = conn.read_until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ")
        assert b"transfer-encoding: chunked" in head
        read_chunked_pieces(conn, CHUNKS, SIZE)
    final = progress(server)
    assert (final["produced"], final["finished"]) == (CHUNKS, True)
