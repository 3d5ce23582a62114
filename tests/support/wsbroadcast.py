"""Room members for the broadcast tests (``tests/apps/ws_broadcast.py``).

A ``Member`` is one ``websockets`` asyncio client joined to a room: it knows which
worker (pid) of which server answered it, and a reader task sorts what arrives into
broadcasts (by publisher tag, in arrival order), end markers, and answers to its own
commands. ``place_members`` opens connections until every worker of every server has
members (connections land on workers as the kernel decides: open until each pid is
seen, with a deadline). ``exchange`` has publishers send numbered sequences at once
and checks that every member got every message exactly once, in each publisher's
order. Every wait has a deadline; nothing sleeps for a fixed time.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

DEADLINE = 20.0  # generous: two shared cores run servers, clients and the tests


def unique_room(name: str) -> str:
    """A room (and so a Redis channel) no parallel run on the same server shares."""
    return f"{name}-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class Server:
    """What a test knows of one covetd: a label and its base URL (ws://host:port)."""

    label: str
    url: str


class Member:
    """One client joined to a room (see the module docstring)."""

    def __init__(self, conn: ClientConnection, server: Server, welcome: dict[str, Any]) -> None:
        self.conn = conn
        self.server = server
        self.pid: int = welcome["pid"]
        self.welcome = welcome
        self.received: dict[str, list[int]] = defaultdict(list)
        self.ends: dict[str, list[int]] = defaultdict(list)
        self.raw: list[str | bytes] = []  # anything that is not JSON (big messages)
        self.answers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.closed: ConnectionClosed | None = None
        self._reader: asyncio.Task[None] | None = None
        self._arrived = asyncio.Event()

    @property
    def bucket(self) -> tuple[str, int]:
        return (self.server.label, self.pid)

    @classmethod
    async def join(cls, server: Server, room: str, *, read: bool = True, **options: Any) -> Member:
        """Connect to ``room`` and read the welcome; ``read=False``: then read nothing
        more until ``start_reading`` (a member that stops reading)."""
        options.setdefault("open_timeout", DEADLINE)
        options.setdefault("close_timeout", DEADLINE)
        options.setdefault("proxy", None)
        conn = await connect(f"{server.url}/room/{room}", **options)
        raw = await asyncio.wait_for(conn.recv(), DEADLINE)
        welcome = json.loads(raw)
        assert welcome["event"] == "welcome", welcome
        member = cls(conn, server, welcome)
        if read:
            member.start_reading()
        return member

    def start_reading(self) -> None:
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.conn:
                self._sort(raw)
                self._arrived.set()
        except ConnectionClosed as closed:
            self.closed = closed
        self.closed = self.closed or _closed_of(self.conn)
        self._arrived.set()

    def _sort(self, raw: str | bytes) -> None:
        if not isinstance(raw, str) or not raw.startswith("{"):
            self.raw.append(raw)
            return
        message = json.loads(raw)
        if "event" in message:
            self.answers.put_nowait(message)
        elif "end" in message:
            self.ends[message["tag"]].append(message["end"])
        else:
            self.received[message["tag"]].append(message["seq"])

    async def command(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send a command and wait for its answer."""
        await self.conn.send(json.dumps({"op": op, **fields}))
        answer = await asyncio.wait_for(self.answers.get(), DEADLINE)
        assert answer.get("op") == op, (op, answer)
        return answer

    async def wait_until(self, predicate: Any, what: str, timeout: float = DEADLINE) -> None:
        """Wait (with a deadline) until ``predicate(self)`` holds after a read."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"member {self.bucket}: timed out waiting for {what}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)

    async def wait_ends(self, tags: Iterable[str], timeout: float = DEADLINE) -> None:
        wanted = list(tags)

        def ended(member: Member) -> bool:
            return member.closed is not None or all(member.ends.get(t) for t in wanted)

        await self.wait_until(ended, f"the end of {wanted}", timeout)
        assert self.closed is None, f"member {self.bucket} closed early: {self.closed!r}"

    async def wait_closed(self, timeout: float = DEADLINE) -> ConnectionClosed:
        await self.wait_until(lambda m: m.closed is not None, "the close", timeout)
        assert self.closed is not None
        return self.closed

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.conn.close(), DEADLINE)
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, DEADLINE)

    def __repr__(self) -> str:
        return f"<Member {self.server.label} pid={self.pid}>"


def _closed_of(conn: ClientConnection) -> ConnectionClosed:
    return ConnectionClosed(conn.close_rcvd, conn.close_sent, conn.close_rcvd_then_sent)


async def place_members(
    servers: Sequence[Server],
    room: str,
    *,
    workers: int,
    per_worker: int = 2,
    max_connections: int = 80,
    **options: Any,
) -> list[Member]:
    """Open connections to each server until each of its ``workers`` pids has at
    least ``per_worker`` members; every connection opened stays a member."""
    members: list[Member] = []
    deadline = time.monotonic() + DEADLINE * 2
    for server in servers:
        per_pid: dict[int, int] = defaultdict(int)
        opened = 0
        while len(per_pid) < workers or min(per_pid.values()) < per_worker:
            if opened >= max_connections or time.monotonic() > deadline:
                await close_all(members)
                raise AssertionError(
                    f"{server.label}: {opened} connections reached pids {dict(per_pid)};"
                    f" wanted {workers} workers with {per_worker} members each"
                )
            member = await Member.join(server, room, **options)
            members.append(member)
            per_pid[member.pid] += 1
            opened += 1
    return members


@contextlib.asynccontextmanager
async def members_in(
    servers: Sequence[Server], room: str, **placement: Any
) -> AsyncIterator[list[Member]]:
    """``place_members``'s members for the block, all closed when it ends."""
    members = await place_members(servers, room, **placement)
    try:
        yield members
    finally:
        await close_all(members)


def one_per_worker(members: Iterable[Member], count: int = 1) -> list[Member]:
    """``count`` members of each (server, pid): the publishers of a test."""
    return [m for group in buckets(members).values() for m in group[:count]]


async def exchange(
    publishers: Sequence[Member],
    members: Sequence[Member],
    count: int,
    *,
    op: str = "publish",
    label: str = "seq",
    **fields: Any,
) -> list[str]:
    """Every publisher broadcasts ``count`` numbered messages at the same time; returns
    their tags once every member has each publisher's end marker."""
    tags = [f"{label}-{i}-{p.server.label}-{p.pid}" for i, p in enumerate(publishers)]
    answers = await asyncio.gather(
        *(
            p.command(op, tag=tag, count=count, **fields)
            for p, tag in zip(publishers, tags, strict=True)
        )
    )
    assert all(a["event"] in ("published", "spawned") for a in answers), answers
    await asyncio.gather(*(m.wait_ends(tags) for m in members))
    return tags


def assert_delivered(members: Iterable[Member], tags: Iterable[str], count: int) -> None:
    """Each member got each tag's ``count`` messages exactly once, in order."""
    expected = list(range(count))
    problems = []
    for member in members:
        for tag in tags:
            got = member.received.get(tag, [])
            if got != expected or member.ends.get(tag) != [count]:
                problems.append(
                    f"{member!r} {tag}: {_describe(got, count)}, ends {member.ends.get(tag)}"
                )
    assert not problems, "\n".join(problems)


def _describe(got: list[int], count: int) -> str:
    missing = sorted(set(range(count)) - set(got))
    duplicates = len(got) - len(set(got))
    disorder = sum(1 for a, b in itertools.pairwise(got) if b < a)
    return (
        f"{len(got)} received, {len(missing)} missing (first {missing[:5]}),"
        f" {duplicates} duplicated, {disorder} out of order"
    )


def buckets(members: Iterable[Member]) -> dict[tuple[str, int], list[Member]]:
    grouped: dict[tuple[str, int], list[Member]] = defaultdict(list)
    for member in members:
        grouped[member.bucket].append(member)
    return dict(grouped)


async def close_all(members: Iterable[Member]) -> None:
    await asyncio.gather(*(m.close() for m in members))


def run(scenario: Any, timeout: float = 110.0) -> Any:
    """Run an async scenario to completion on a fresh event loop, with a deadline."""
    return asyncio.run(asyncio.wait_for(scenario, timeout))
