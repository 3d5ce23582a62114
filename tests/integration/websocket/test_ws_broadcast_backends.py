"""The hub and the ``local`` backend in one process: the rules the multi-process tests
cannot aim at precisely (timing between workers, failures of a backend).

Two or three ``LocalBackend``s share a directory, as the workers of one master do;
``Peer`` stands in for a worker's hub. A fake backend drives the hub's failure paths.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from covetd.websocket.hub import Hub
from covetd.websocket.local import LocalBackend, decode_frames, encode_frame


class Peer:
    """A worker's hub, as far as the backend sees it."""

    def __init__(self) -> None:
        self.got: list[tuple[str, str | bytes]] = []

    def deliver(self, room: str, message: str | bytes) -> None:
        self.got.append((room, message))


class Member:
    """A room member whose outgoing queue is full once ``full`` is set."""

    def __init__(self, full: bool = False) -> None:
        self.full = full
        self.got: list[str | bytes] = []
        self.abandoned: tuple[int, str] | None = None

    def send_nowait(self, message: str | bytes) -> bool:
        if self.full:
            return False
        self.got.append(message)
        return True

    def abandon(self, code: int, reason: str) -> None:
        self.abandoned = (code, reason)


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 30))


@pytest.fixture
def directory(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "covetd-1-ws"


async def start(directory: Path, name: str) -> tuple[LocalBackend, Peer]:
    peer = Peer()
    backend = LocalBackend(directory, name)
    await backend.start(peer)  # type: ignore[arg-type]
    return backend, peer


async def until(predicate: Any, what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def test_frames_survive_any_split_between_reads() -> None:
    stream = b"".join(
        [encode_frame("room", "héllo"), encode_frame("r2", b"\x00\xff"), encode_frame("r", "")]
    )
    for cut in range(len(stream) + 1):
        buffer = bytearray(stream[:cut])
        frames = decode_frames(buffer)
        buffer += stream[cut:]
        frames += decode_frames(buffer)
        assert frames == [("room", "héllo"), ("r2", b"\x00\xff"), ("r", "")], cut
        assert not buffer


def test_concurrent_first_publishes_share_one_stream_per_peer(directory: Path) -> None:
    """Four publishers find the peer unconnected at once: one stream, each in order."""

    async def scenario() -> None:
        a, _ = await start(directory, "a")
        b, peer = await start(directory, "b")
        count = 50

        async def publisher(tag: str) -> None:
            for seq in range(count):
                await a.publish("room", f"{tag}:{seq}")

        await asyncio.gather(*(publisher(tag) for tag in "pqrs"))
        await until(lambda: len(peer.got) == 4 * count, "every message")
        for tag in "pqrs":
            seqs = [int(m.split(":")[1]) for _, m in peer.got if str(m).startswith(tag)]
            assert seqs == list(range(count)), tag
        assert list(a._peers) == [b.path]
        await a.stop()
        await b.stop()

    run(scenario())


def test_one_stream_per_peer_is_opened(directory: Path, monkeypatch: Any) -> None:
    opened: list[str] = []

    async def scenario() -> None:
        a, _ = await start(directory, "a")
        b, peer = await start(directory, "b")
        loop = asyncio.get_running_loop()
        connect = loop.create_unix_connection

        async def counting(*args: Any, **kwargs: Any) -> Any:
            opened.append(str(args[1]))
            return await connect(*args, **kwargs)

        monkeypatch.setattr(loop, "create_unix_connection", counting)
        await asyncio.gather(*(a.publish("room", f"m{i}") for i in range(8)))
        await until(lambda: len(peer.got) == 8, "every message")
        assert opened == [str(b.path)]
        await a.stop()
        await b.stop()

    run(scenario())


def test_a_worker_that_appears_gets_the_very_next_broadcast(directory: Path) -> None:
    """A replacement binds its socket before it serves; the next broadcast reaches it
    (no listing is trusted once the directory changed)."""

    async def scenario() -> None:
        a, _ = await start(directory, "a")
        await a.publish("room", "before")  # lists the directory: nobody else yet
        b, peer = await start(directory, "b")
        await a.publish("room", "after")
        await until(lambda: peer.got, "the broadcast")
        assert peer.got == [("room", "after")]
        await a.stop()
        await b.stop()

    run(scenario())


def test_a_dead_workers_socket_is_removed_and_the_others_still_hear(directory: Path) -> None:
    async def scenario() -> None:
        a, _ = await start(directory, "a")
        b, peer = await start(directory, "b")
        dead, _ = await start(directory, "dead")
        assert dead._server is not None
        dead._server.close()  # gone without removing its socket, as after kill -9
        await dead._server.wait_closed()
        assert dead.path.exists()
        await a.publish("room", "one")
        await until(lambda: not dead.path.exists(), "the dead socket to be removed")
        await a.publish("room", "two")
        await until(lambda: len(peer.got) == 2, "both broadcasts")
        assert [m for _, m in peer.got] == ["one", "two"]
        await a.stop()
        await b.stop()

    run(scenario())


def test_the_last_worker_out_removes_the_directory_and_a_new_one_recreates_it(
    directory: Path,
) -> None:
    async def scenario() -> None:
        a, _ = await start(directory, "a")
        b, _ = await start(directory, "b")
        await a.stop()
        assert directory.exists()  # b is still there
        await b.stop()
        assert not directory.exists()
        c, _ = await start(directory, "c")
        assert c.path.exists()
        await c.stop()

    run(scenario())


class FakeBackend:
    """A backend whose subscribe and publish the test controls."""

    def __init__(self) -> None:
        self.subscribed: list[str] = []
        self.published: list[tuple[str, str | bytes]] = []
        self.fail_subscribe = 0
        self.gate: asyncio.Event | None = None

    async def start(self, hub: Hub) -> None: ...

    async def subscribe(self, room: str) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_subscribe:
            self.fail_subscribe -= 1
            raise ConnectionError("backend down")
        self.subscribed.append(room)

    async def unsubscribe(self, room: str) -> None:
        self.subscribed.remove(room)

    async def publish(self, room: str, message: str | bytes) -> None:
        if len(message) > 10:
            raise ValueError("too large for the fake backend")
        self.published.append((room, message))

    async def stop(self) -> None: ...


def hub_with(backend: FakeBackend) -> Hub:
    hub = Hub()
    hub.backend = backend
    return hub


def test_a_failed_subscription_is_tried_again_by_the_next_join() -> None:
    async def scenario() -> None:
        backend = FakeBackend()
        backend.fail_subscribe = 1
        hub = hub_with(backend)
        first, second = Member(), Member()
        with pytest.raises(ConnectionError):
            await hub.join("room", first)  # type: ignore[arg-type]
        assert hub.count("room") == 0
        await hub.join("room", second)  # type: ignore[arg-type]
        assert backend.subscribed == ["room"] and hub.count("room") == 1

    run(scenario())


def test_joins_during_a_subscription_wait_for_it() -> None:
    """A join returns only once the room is subscribed, also the second one."""

    async def scenario() -> None:
        backend = FakeBackend()
        backend.gate = asyncio.Event()
        hub = hub_with(backend)
        first = asyncio.ensure_future(hub.join("room", Member()))  # type: ignore[arg-type]
        await until(lambda: "room" in hub._subscribing, "the first join to subscribe")
        second = asyncio.ensure_future(hub.join("room", Member()))  # type: ignore[arg-type]
        for _ in range(10):  # let the second join run as far as it can (no clock)
            await asyncio.sleep(0)
        assert not first.done() and not second.done()
        backend.gate.set()
        await asyncio.gather(first, second)
        assert backend.subscribed == ["room"] and hub.count("room") == 2

    run(scenario())


def test_a_message_the_backend_refuses_reaches_nobody() -> None:
    async def scenario() -> None:
        backend = FakeBackend()
        hub = hub_with(backend)
        member = Member()
        await hub.join("room", member)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="too large"):
            await hub.broadcast("room", "x" * 11)
        assert member.got == []
        await hub.broadcast("room", "fits")
        assert member.got == ["fits"] and backend.published == [("room", "fits")]

    run(scenario())


def test_a_member_that_cannot_keep_up_is_dropped_with_1013() -> None:
    async def scenario() -> None:
        hub = Hub()
        fast, slow = Member(), Member(full=True)
        await hub.join("room", fast)  # type: ignore[arg-type]
        await hub.join("room", slow)  # type: ignore[arg-type]
        await hub.broadcast("room", "hello")
        assert fast.got == ["hello"]
        assert slow.abandoned is not None and slow.abandoned[0] == 1013
        assert hub.count("room") == 1
        await hub.broadcast("room", "again")
        assert fast.got == ["hello", "again"]

    run(scenario())
