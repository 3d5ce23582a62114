"""covetd.db.Databases: a worker's pools by name, opened and closed together."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Mapping
from typing import Any

import pytest
import uvloop
from support.pgquery import sessions, unique_name
from support.process import wait_for
from support.services import postgres_dsn

from covetd.config import DatabaseConfig
from covetd.db import DatabaseConnectError, Databases, Pool, PoolObserver


@pytest.fixture(scope="module")
def dsn() -> str:
    return postgres_dsn()


def named(dsn: str, **settings: Any) -> DatabaseConfig:
    return DatabaseConfig(dsn=dsn, server_settings={"application_name": unique_name()}, **settings)


def test_pools_by_name_read_only_with_health(dsn: str) -> None:
    configs = {"default": named(dsn), "replica": named(dsn, connect="lazy")}

    async def run() -> tuple[Any, ...]:
        databases = await Databases.open(configs)
        try:
            assert isinstance(databases, Mapping)
            assert not hasattr(databases, "__setitem__")
            default, replica = databases["default"], databases["replica"]
            assert isinstance(default, Pool) and default.name == "default"
            assert replica.config is configs["replica"]
            values = (
                await default.fetchval("SELECT 1"),
                await replica.fetchval("SELECT 2"),
            )
            return sorted(databases), len(databases), values, databases.up, databases.health()
        finally:
            await databases.close()

    names, count, values, up, health = uvloop.run(run())
    assert (names, count, values, up) == (["default", "replica"], 2, (1, 2), True)
    assert health == {"default": True, "replica": True}
    names = [cfg.server_settings["application_name"] for cfg in configs.values()]
    wait_for(lambda: all(sessions(dsn, n) == 0 for n in names), what="every session closed")


def test_one_pool_failing_to_open_closes_the_others(dsn: str) -> None:
    good = named(dsn, min_size=2)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    bad = DatabaseConfig(dsn=f"postgresql://postgres@127.0.0.1:{port}/x")

    async def run() -> None:
        await Databases.open({"default": good, "analytics": bad})

    with pytest.raises(DatabaseConnectError, match="database pool 'analytics' cannot connect"):
        uvloop.run(run())
    name = good.server_settings["application_name"]
    wait_for(lambda: sessions(dsn, name) == 0, what="the good pool's sessions closed")


def test_one_observer_for_every_pool(dsn: str) -> None:
    class Names(PoolObserver):
        def __init__(self) -> None:
            self.pools: list[str] = []

        def acquired(self, pool: Pool, wait_seconds: float) -> None:
            self.pools.append(pool.name)

    observer = Names()

    async def run() -> None:
        databases = await Databases.open({"a": named(dsn), "b": named(dsn)})
        try:
            databases.observer = observer
            assert databases.observer is observer
            assert all(pool.observer is observer for pool in databases.values())
            await databases["a"].fetchval("SELECT 1")
            await databases["b"].fetchval("SELECT 1")
        finally:
            await databases.close()

    uvloop.run(run())
    assert observer.pools == ["a", "b"]


def test_no_pools_configured_is_an_empty_mapping() -> None:
    async def run() -> tuple[int, bool]:
        databases = await Databases.open({})
        await databases.close()
        return len(databases), databases.up

    assert uvloop.run(run()) == (0, True)


def test_a_cancelled_opening_closes_the_pools_already_open(dsn: str) -> None:
    """A worker told to stop while it boots cancels the opening: nothing stays open."""
    good = named(dsn, min_size=2)
    name = good.server_settings["application_name"]
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts, never answers: that pool's opening hangs
        slow = DatabaseConfig(
            dsn=f"postgresql://postgres@{silent.getsockname()[0]}:{silent.getsockname()[1]}/x",
            acquire_timeout=30,
        )

        async def run() -> int:
            opening = asyncio.ensure_future(Databases.open({"default": good, "slow": slow}))
            deadline = time.monotonic() + 10
            while await asyncio.to_thread(sessions, dsn, name) < 2:  # the good one is open
                assert time.monotonic() < deadline, "the good pool never opened"
            opening.cancel()
            with pytest.raises(asyncio.CancelledError):
                await opening
            return len(asyncio.all_tasks())

        assert uvloop.run(run()) == 1  # no task left behind but the test's own
    wait_for(lambda: sessions(dsn, name) == 0, what="the good pool's sessions closed")
