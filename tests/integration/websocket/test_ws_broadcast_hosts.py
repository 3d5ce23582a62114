"""Issue 5: rooms and broadcast across covetd instances (backends ``redis``, ``postgres``).

Two covetd masters on their own ports share one Redis (pub/sub) or one PostgreSQL
(LISTEN/NOTIFY), as two hosts would. Members on both instances; publishers on both
broadcast numbered sequences at once: every member gets every message exactly once,
in each publisher's order. Rooms are unique per run (``unique_room``), so runs that
share the Redis or the PostgreSQL do not hear each other. The servers come from
``support.services`` (DESIGN 7: env var, else 127.0.0.1, else a throwaway server).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from support.process import Covetd
from support.services import postgres_dsn, redis_url
from support.wsbroadcast import (
    Server,
    assert_delivered,
    buckets,
    exchange,
    members_in,
    one_per_worker,
    run,
    unique_room,
)

APP = "ws_broadcast:app"
COUNT = 200
URLS: dict[str, Callable[[], str]] = {"redis": redis_url, "postgres": postgres_dsn}


def start_instances(covetd: Any, backend: str, workers: int = 1) -> list[tuple[Covetd, Server]]:
    broadcast = {"backend": backend, "url": URLS[backend]()}
    config = {
        "server": {"workers": workers},
        "websocket": {"ping_interval": 0, "broadcast": broadcast},
    }
    started = []
    for label in ("a", "b"):
        server = covetd(APP, config)
        started.append((server, Server(label, f"ws://127.0.0.1:{server.port}")))
    return started


@pytest.fixture(params=["redis", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_every_member_of_both_instances_gets_every_message_once_in_order(
    covetd: Any, backend: str
) -> None:
    servers = [server for _, server in start_instances(covetd, backend)]

    async def scenario() -> None:
        room = unique_room(f"{backend}-order")
        async with members_in(servers, room, workers=1, per_worker=3) as members:
            assert {m.server.label for m in members} == {"a", "b"}
            publishers = one_per_worker(members, count=2)  # 2 publishers per instance
            tags = await exchange(publishers, members, COUNT)
            assert_delivered(members, tags, COUNT)

    run(scenario())


def test_two_workers_per_instance_share_the_room_too(covetd: Any, backend: str) -> None:
    """With a host backend, the workers of one instance also meet through it."""
    servers = [server for _, server in start_instances(covetd, backend, workers=2)]

    async def scenario() -> None:
        room = unique_room(f"{backend}-workers")
        async with members_in(servers, room, workers=2, per_worker=2) as members:
            assert len(buckets(members)) == 4
            tags = await exchange(one_per_worker(members), members, COUNT)
            assert_delivered(members, tags, COUNT)

    run(scenario())


def test_presence_is_per_instance_and_leave_stops_delivery(covetd: Any, backend: str) -> None:
    started = start_instances(covetd, backend)
    servers = [server for _, server in started]

    async def scenario() -> None:
        room = unique_room(f"{backend}-presence")
        async with members_in(servers, room, workers=1, per_worker=2) as members:
            async with httpx.AsyncClient() as http:
                for process, _ in started:
                    answer = (await http.get(f"{process.url}/count/{room}")).json()
                    assert answer["count"] == 2, answer
            leaver = members[0]
            assert (await leaver.command("leave"))["count"] == 1
            stayed = members[1:]
            tags = await exchange(one_per_worker(stayed), stayed, 50)
            assert_delivered(stayed, tags, 50)
            assert not set(tags) & set(leaver.received)

    run(scenario())


def test_broadcast_from_a_background_task_reaches_both_instances(covetd: Any, backend: str) -> None:
    started = start_instances(covetd, backend)
    servers = [server for _, server in started]

    async def scenario() -> None:
        room = unique_room(f"{backend}-background")
        async with members_in(servers, room, workers=1, per_worker=2) as members:
            async with httpx.AsyncClient() as http:
                response = await http.post(
                    f"{started[1][0].url}/background/{room}?tag=http&count={COUNT}"
                )
            assert response.status_code == 202
            await asyncio.gather(*(m.wait_ends(["http"]) for m in members))
            assert_delivered(members, ["http"], COUNT)

    run(scenario())


def test_postgres_refuses_a_message_over_the_notify_limit_and_delivers_none(
    covetd: Any,
) -> None:
    servers = [server for _, server in start_instances(covetd, "postgres")]

    async def scenario() -> None:
        room = unique_room("postgres-limit")
        async with members_in(servers, room, workers=1, per_worker=2) as members:
            answer = await members[0].command("big", size=9000)
            assert answer["event"] == "error", answer
            assert "too large for the postgres backend" in answer["error"], answer
            assert "7999" in answer["error"], answer
            fits = await members[0].command("big", size=7000)
            assert fits["event"] == "published", fits
            for member in members:
                await member.wait_until(lambda m: m.raw, "the message that fits")
                sizes = [len(raw) for raw in member.raw]
                assert sizes == [7000], (member, sizes)  # and never the 9000 one

    run(scenario())
