"""Issue 5: rooms and broadcast across the workers of one host (backend ``local``).

One covetd master with 2 workers; members are placed on both workers (each welcome
names the worker's pid). Publishers on both workers broadcast numbered sequences at
once: every member gets every message exactly once, in each publisher's order.
Presence counts are per worker (``app.hub.count``). A member that stops reading is
dropped with 1013 while the room goes on; a worker killed with SIGKILL is replaced
and the room keeps working on the survivor and the replacement.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from pathlib import Path
from typing import Any

import httpx
from support.process import Covetd, wait_for
from support.workers import worker_pids
from support.wsbroadcast import (
    Member,
    Server,
    assert_delivered,
    buckets,
    close_all,
    exchange,
    members_in,
    one_per_worker,
    place_members,
    run,
    unique_room,
)

APP = "ws_broadcast:app"
COUNT = 200


def start(covetd: Any, tmp_path: Path, **websocket: Any) -> tuple[Covetd, Server]:
    """2 workers; the local backend's sockets live under ``tmp_path`` (XDG_RUNTIME_DIR)."""
    config = {"server": {"workers": 2}, "websocket": {"ping_interval": 0, **websocket}}
    server = covetd(APP, config, env={"XDG_RUNTIME_DIR": str(tmp_path)})
    return server, Server("a", f"ws://127.0.0.1:{server.port}")


def test_every_member_on_both_workers_gets_every_message_once_in_order(
    covetd: Any, tmp_path: Path
) -> None:
    _, server = start(covetd, tmp_path)

    async def scenario() -> None:
        room = unique_room("order")
        async with members_in([server], room, workers=2, per_worker=3) as members:
            assert len(buckets(members)) == 2
            publishers = one_per_worker(members, count=2)  # 2 publishers per worker
            tags = await exchange(publishers, members, COUNT)
            assert_delivered(members, tags, COUNT)

    run(scenario())


def test_presence_counts_are_per_worker_and_follow_leave_and_disconnect(
    covetd: Any, tmp_path: Path
) -> None:
    _, server = start(covetd, tmp_path)

    async def scenario() -> None:
        room = unique_room("presence")
        async with members_in([server], room, workers=2, per_worker=3) as members:
            grouped = buckets(members)
            for group in grouped.values():
                answer = await group[0].command("count")
                assert answer["count"] == len(group), (answer, group)
            (first, second) = grouped.values()
            leaver, quitter, watcher = first[0], first[1], first[-1]
            left = await leaver.command("leave")
            assert left["count"] == len(first) - 1
            await quitter.close()

            async def count_is(expected: int) -> bool:
                return (await watcher.command("count"))["count"] == expected

            await _poll(lambda: count_is(len(first) - 2), "the disconnect to leave")
            # The other worker's count is its own: unchanged.
            assert (await second[0].command("count"))["count"] == len(second)
            # The member that left hears nothing more; the others hear everything.
            stayed = [m for m in members if m not in (leaver, quitter)]
            tags = await exchange(one_per_worker(stayed), stayed, 50)
            assert_delivered(stayed, tags, 50)
            assert not set(tags) & set(leaver.received), leaver.received
            rejoined = await leaver.command("join")
            assert rejoined["count"] == len(first) - 1

    run(scenario())


def test_broadcast_from_a_background_task_reaches_both_workers(covetd: Any, tmp_path: Path) -> None:
    covetd_server, server = start(covetd, tmp_path)

    async def scenario() -> None:
        room = unique_room("background")
        async with members_in([server], room, workers=2, per_worker=2) as members:
            # From a task a handler started (the handler goes on reading) ...
            tags = await exchange(one_per_worker(members), members, COUNT, op="spawn")
            assert_delivered(members, tags, COUNT)
            # ... and from a task an HTTP request started (it answered 202 at once).
            async with httpx.AsyncClient(base_url=covetd_server.url) as http:
                response = await http.post(f"/background/{room}?tag=http&count={COUNT}")
            assert response.status_code == 202
            await asyncio.gather(*(m.wait_ends(["http"]) for m in members))
            assert_delivered(members, ["http"], COUNT)

    run(scenario())


def test_a_member_that_stops_reading_is_dropped_with_1013_and_the_room_goes_on(
    covetd: Any, tmp_path: Path
) -> None:
    _, server = start(covetd, tmp_path, max_send_buffer="64KiB")
    # 8 MB at most ~2000 messages/s: more than the kernel buffers (~4 MB on loopback)
    # hold for the stalled members, slow enough for the reading ones in this process.
    size, count = 4096, 2000

    async def scenario() -> None:
        room = unique_room("slow")
        plain = {"compression": None}  # the padding must not shrink on the wire
        members = await place_members([server], room, workers=2, per_worker=1, **plain)
        slow: list[Member] = []
        try:
            while {m.pid for m in slow} != {m.pid for m in members}:
                member = await Member.join(
                    server, room, read=False, max_queue=4, sock=_small_socket(server), **plain
                )
                if member.pid in {m.pid for m in slow}:
                    members.append(member)
                    member.start_reading()
                else:
                    slow.append(member)
            publisher = members[0]
            tags = await exchange([publisher], members, count, size=size, pace=16, pause=0.008)
            assert_delivered(members, tags, count)
            for group in buckets(members).values():
                answer = await group[0].command("count")  # the slow ones are gone
                assert answer["count"] == len(group), answer
            for member in slow:
                member.start_reading()
                closed = await member.wait_closed()
                assert closed.rcvd is not None and closed.rcvd.code == 1013, closed
                got = member.received[tags[0]]
                assert got == list(range(len(got))) and len(got) < count, len(got)
        finally:
            await close_all(members + slow)

    run(scenario())


def test_after_kill_9_of_a_worker_the_survivor_and_the_replacement_share_the_room(
    covetd: Any, tmp_path: Path
) -> None:
    covetd_server, server = start(covetd, tmp_path)
    assert covetd_server.proc is not None
    master = covetd_server.proc.pid
    sockets = tmp_path / f"covetd-{master}-ws"

    async def scenario() -> None:
        room = unique_room("restart")
        async with members_in([server], room, workers=2, per_worker=2) as members:
            tags = await exchange(one_per_worker(members), members, 20, label="before")
            assert_delivered(members, tags, 20)
            victim = members[0].pid
            assert (sockets / f"{victim}.sock").exists()
            os.kill(victim, signal.SIGKILL)
            doomed = [m for m in members if m.pid == victim]
            for member in doomed:
                await member.wait_closed()
            survivors = [m for m in members if m.pid != victim]
            replacement = await asyncio.to_thread(_replacement, master, {m.pid for m in members})
            newcomers = await _members_on(server, room, replacement)
            members.extend(newcomers)
            live = survivors + newcomers
            publishers = one_per_worker(live)
            assert {p.pid for p in publishers} == {survivors[0].pid, replacement}
            tags = await exchange(publishers, live, COUNT, label="after")
            assert_delivered(live, tags, COUNT)
            await asyncio.to_thread(
                wait_for,
                lambda: not (sockets / f"{victim}.sock").exists(),
                10.0,
                what="the dead worker's socket to be removed",
            )
            assert (sockets / f"{replacement}.sock").exists()

    run(scenario())
    assert covetd_server.stop() == 0


def _small_socket(server: Server) -> socket.socket:
    """A connected socket with a small receive buffer: a stalled reader is felt soon."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    host, _, port = server.url.removeprefix("ws://").rpartition(":")
    sock.connect((host, int(port)))
    sock.setblocking(False)
    return sock


def _replacement(master: int, old: set[int]) -> int:
    found = wait_for(
        lambda: [pid for pid in worker_pids(master) if pid not in old],
        20.0,
        what="a replacement worker",
    )
    return int(found[0])


async def _members_on(server: Server, room: str, pid: int) -> list[Member]:
    """Members until one lands on ``pid`` (all kept: they are on live workers)."""
    opened: list[Member] = []
    while not any(m.pid == pid for m in opened):
        if len(opened) >= 80:
            raise AssertionError(f"80 connections and none reached the replacement {pid}")
        opened.append(await Member.join(server, room))
    return opened


async def _poll(check: Any, what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)
