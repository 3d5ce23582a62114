"""Backpressure (issue 5, deliverable 2; STYLE habit 7): a slow reader on either side
of a WebSocket cannot grow the server's memory without bound.

- The client stops reading while the handler sends a lot: the handler's ``send()``
  blocks once the socket and the transport buffer are full (its progress counter,
  read over HTTP, stops well short of the total), the worker's memory stays flat,
  then everything arrives intact and in order once the client reads.
- The handler stops reading while the client sends a lot: the server stops reading the
  socket once a bounded number of messages wait, so the client's sends block (the
  kernel's buffers fill) and the worker's memory stays flat; once the handler reads
  again, every message arrives.
"""

from __future__ import annotations

import select
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from support.process import Covetd, wait_for
from wsclients import WsprotoClient, frame, get_json

MIB = 1 << 20
SIZE = 64 * 1024
FLOOD = 512  # x 64 KiB = 32 MiB from the handler
# What may be in flight while the client reads nothing: the server's socket send
# buffer (tcp_wmem max 4 MiB), the client's 16 KiB receive buffer and the transport's
# high-water mark. 8 MiB, a quarter of the flood, is generous.
SENT_BOUND = 128
PUSH = 4096  # x 64 KiB = 256 MiB at most from the client
# Kernel buffers may hold a lot on loopback (tcp_rmem max is often 32 MiB), but none of
# it is the worker's memory; its own share is at most 64 waiting messages + one read.
PUSHED_BOUND = 96 * MIB
RSS_GROWTH_BOUND = 32 * MIB


@pytest.fixture(scope="module")
def server(module_covetd: Any) -> Covetd:
    config = {"websocket": {"ping_interval": 0, "max_message_size": "1MiB"}}
    server: Covetd = module_covetd("ws_covet:app", config)
    return server


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def worker_pid(server: Covetd) -> int:
    pid: int = get_json(server, "/pid")["pid"]
    return pid


def test_send_blocks_while_the_client_does_not_read(server: Covetd) -> None:
    pid = worker_pid(server)
    baseline = rss(pid)
    path = f"/flood?key=out&count={FLOOD}&size={SIZE}"
    with WsprotoClient.open(server.host, server.port, path, receive_buffer=16384) as client:
        stalled = wait_for(
            lambda: (
                (s := get_json(server, "/flood-state/out"))["sent"] > 0 and s["idle"] > 1.0 and s
            ),
            20,
            0.1,
            "the handler's send() to block",
        )
        assert not stalled["finished"], "the whole flood was queued in memory"
        assert stalled["sent"] <= SENT_BOUND, stalled
        assert stalled["error"] is None, stalled
        assert rss(pid) - baseline < RSS_GROWTH_BOUND, (rss(pid) - baseline) / MIB
        for i in range(FLOOD):
            message = client.receive(timeout=30)
            assert message == bytes([i % 256]) * SIZE, f"message {i} is corrupt or missing"
        final = get_json(server, "/flood-state/out")
        assert (final["sent"], final["finished"]) == (FLOOD, True)
        client.close()
        assert client.wait_closed().code == 1000


def push_until_stalled(sock: socket.socket, data: bytes, stall: float = 1.5) -> tuple[int, int]:
    """Send ``data`` over and over without blocking until the kernel takes nothing for
    ``stall`` s (or PUSH copies went); (whole copies sent, bytes of the next one sent)."""
    sock.setblocking(False)
    copies = offset = 0
    while copies < PUSH:
        try:
            offset += sock.send(data[offset:])
        except BlockingIOError:
            _, writable, _ = select.select([], [sock], [], stall)
            if not writable:
                break
            continue
        if offset == len(data):
            copies, offset = copies + 1, 0
    sock.setblocking(True)
    return copies, offset


def test_the_server_stops_reading_while_the_handler_does_not(server: Covetd) -> None:
    pid = worker_pid(server)
    baseline = rss(pid)
    message = frame(0x2, b"\x5a" * SIZE)  # one masked frame, sent again and again
    with WsprotoClient.open(server.host, server.port, "/deaf?key=in") as client:
        started = time.monotonic()
        copies, offset = push_until_stalled(client.sock, message)
        pushed = copies * len(message) + offset
        print(f"pushed {pushed / MIB:.1f} MiB in {time.monotonic() - started:.1f}s")
        assert copies < PUSH, "the server read everything: no backpressure"
        assert pushed < PUSHED_BOUND, pushed / MIB
        growth = rss(pid) - baseline
        assert growth < RSS_GROWTH_BOUND, growth / MIB
        assert get_json(server, "/observed/in")["released"] is False

        get_json(server, "/release/in")
        client.sock.sendall(message[offset:] if offset else b"")
        client.send_bytes(b"last")
        state = client.receive_json(timeout=30)
    sent = copies + (1 if offset else 0)
    assert state == {"received": sent + 1, "bytes": sent * SIZE + 4, "released": True}
