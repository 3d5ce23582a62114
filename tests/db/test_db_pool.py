"""covetd.db.Pool against a real PostgreSQL (DESIGN §7): helpers, leases, transactions,
settings, bounded acquisition, sessions, stats and events. In-process, one event loop
(uvloop, as in a worker) per test."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
import uvloop
from support.pgquery import sessions, unique_name
from support.process import wait_for
from support.services import postgres_dsn

from covetd.app.exceptions import HTTPException
from covetd.config import DatabaseConfig
from covetd.db import DatabaseUnavailable, Pool, PoolObserver


@pytest.fixture(scope="module")
def dsn() -> str:
    return postgres_dsn()


def config(dsn: str, **settings: Any) -> DatabaseConfig:
    settings.setdefault("server_settings", {"application_name": unique_name()})
    return DatabaseConfig(dsn=dsn, **settings)


def with_pool(cfg: DatabaseConfig, body: Callable[[Pool], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        pool = Pool("default", cfg)
        await pool.open()
        try:
            return await body(pool)
        finally:
            await pool.close()

    return uvloop.run(run())


class Recorder(PoolObserver):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def acquired(self, pool: Pool, wait_seconds: float) -> None:
        self.events.append(("acquired", wait_seconds))

    def failed(self, pool: Pool, error: DatabaseUnavailable) -> None:
        self.events.append(("failed", error.reason))

    def state_changed(self, pool: Pool, up: bool) -> None:
        self.events.append(("state", up))


# -- helpers and leases ----------------------------------------------------------------


def test_helpers_run_one_statement_each(dsn: str) -> None:
    async def body(pool: Pool) -> None:
        assert await pool.fetchval("SELECT $1::int + 1", 41) == 42
        assert await pool.fetchval("SELECT 1, 'two'", column=1) == "two"
        row = await pool.fetchrow("SELECT 7 AS id, 'seven' AS name")
        assert (row["id"], row["name"]) == (7, "seven")
        assert await pool.fetchrow("SELECT 1 WHERE false") is None
        rows = await pool.fetch("SELECT g FROM generate_series(1, 3) AS g")
        assert [r["g"] for r in rows] == [1, 2, 3]
        assert await pool.execute("CREATE TEMP TABLE IF NOT EXISTS t (x int)") == "CREATE TABLE"

    with_pool(config(dsn), body)


def test_executemany_and_transaction_commit(dsn: str) -> None:
    table = f"covetd_tx_{unique_name('t')[-12:]}"

    async def body(pool: Pool) -> list[int]:
        await pool.execute(f"CREATE TABLE {table} (x int)")
        try:
            async with pool.transaction() as conn:
                assert conn.is_in_transaction()
                await conn.executemany(f"INSERT INTO {table} VALUES ($1)", [(1,), (2,)])
            await pool.executemany(f"INSERT INTO {table} VALUES ($1)", [(3,)])
            return [r[0] for r in await pool.fetch(f"SELECT x FROM {table} ORDER BY x")]
        finally:
            await pool.execute(f"DROP TABLE {table}")

    assert with_pool(config(dsn), body) == [1, 2, 3]


def test_transaction_rolls_back_when_the_block_raises(dsn: str) -> None:
    table = f"covetd_rb_{unique_name('t')[-12:]}"

    async def body(pool: Pool) -> int:
        await pool.execute(f"CREATE TABLE {table} (x int)")
        try:
            with pytest.raises(ZeroDivisionError):
                async with pool.transaction() as conn:
                    await conn.execute(f"INSERT INTO {table} VALUES (1)")
                    1 / 0  # noqa: B018
            count: int = await pool.fetchval(f"SELECT count(*) FROM {table}")
            return count
        finally:
            await pool.execute(f"DROP TABLE {table}")

    assert with_pool(config(dsn), body) == 0


def test_transaction_options_reach_the_server(dsn: str) -> None:
    async def body(pool: Pool) -> tuple[str, str]:
        async with pool.transaction(isolation="serializable", readonly=True) as conn:
            isolation = await conn.fetchval("SHOW transaction_isolation")
            readonly = await conn.fetchval("SHOW transaction_read_only")
        return isolation, readonly

    assert with_pool(config(dsn, max_size=1), body) == ("serializable", "on")


def test_a_lent_connection_comes_back_with_a_fresh_session(dsn: str) -> None:
    """acquire() hands the session to the caller, so it is reset on the way back."""

    async def body(pool: Pool) -> tuple[str, str]:
        async with pool.acquire() as conn:
            await conn.execute("SET search_path TO covetd_nowhere")
            inside = await conn.fetchval("SHOW search_path")
        async with pool.acquire() as conn:  # max_size 1: the same connection
            after = await conn.fetchval("SHOW search_path")
        return inside, after

    inside, after = with_pool(config(dsn, max_size=1), body)
    assert inside == "covetd_nowhere"
    assert after != "covetd_nowhere"


def test_query_errors_surface_unchanged(dsn: str) -> None:
    """Errors of a query are the application's: not a 503."""

    async def body(pool: Pool) -> None:
        with pytest.raises(asyncpg.UndefinedTableError):
            await pool.fetch("SELECT * FROM covetd_no_such_table")
        with pytest.raises(asyncpg.UndefinedTableError):
            async with pool.acquire() as conn:
                await conn.fetch("SELECT * FROM covetd_no_such_table")
        assert await pool.fetchval("SELECT 1") == 1  # the connection went back usable
        assert pool.up

    with_pool(config(dsn, max_size=1), body)


# -- settings --------------------------------------------------------------------------


def test_server_settings_statement_timeout_applies_and_is_not_a_503(dsn: str) -> None:
    cfg = config(dsn, server_settings={"statement_timeout": "100"})

    async def body(pool: Pool) -> None:
        assert await pool.fetchval("SHOW statement_timeout") == "100ms"
        with pytest.raises(asyncpg.QueryCanceledError):
            await pool.execute("SELECT pg_sleep(2)")

    with_pool(cfg, body)


def test_command_timeout_bounds_a_query(dsn: str) -> None:
    async def body(pool: Pool) -> float:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await pool.execute("SELECT pg_sleep(5)")
        return time.monotonic() - started

    assert with_pool(config(dsn, command_timeout=0.2), body) < 2


def test_default_application_name_names_the_worker_process(dsn: str) -> None:
    import os

    cfg = DatabaseConfig(dsn=dsn)
    name = with_pool(cfg, lambda pool: pool.fetchval("SHOW application_name"))
    assert name == f"covetd worker {os.getpid()}"


def test_statement_cache_size_zero_prepares_nothing_that_stays(dsn: str) -> None:
    async def prepared_after_queries(pool: Pool) -> int:
        async with pool.acquire() as conn:
            for _ in range(3):
                await conn.fetchval("SELECT $1::int", 1)
            count: int = await conn.fetchval("SELECT count(*) FROM pg_prepared_statements")
        return count

    assert with_pool(config(dsn, statement_cache_size=0, max_size=1), prepared_after_queries) == 0
    assert with_pool(config(dsn, statement_cache_size=10, max_size=1), prepared_after_queries) >= 1


def test_ssl_disable_connects_in_clear(dsn: str) -> None:
    async def body(pool: Pool) -> Any:
        return await pool.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")

    assert with_pool(config(dsn, ssl="disable"), body) is False


# -- sessions: eager, lazy, close ------------------------------------------------------


def test_eager_opens_min_size_sessions_and_close_ends_them(dsn: str) -> None:
    cfg = config(dsn, min_size=3, max_size=5)
    name = cfg.server_settings["application_name"]

    async def body(pool: Pool) -> int:
        return await asyncio.to_thread(sessions, dsn, name)

    assert with_pool(cfg, body) == 3
    wait_for(lambda: sessions(dsn, name) == 0, what="the sessions closed")


def test_lazy_opens_no_session_until_used(dsn: str) -> None:
    cfg = config(dsn, min_size=2, connect="lazy")
    name = cfg.server_settings["application_name"]

    async def body(pool: Pool) -> tuple[int, int, int]:
        before = await asyncio.to_thread(sessions, dsn, name)
        size_before = pool.stats().size
        await pool.fetchval("SELECT 1")
        return before, size_before, await asyncio.to_thread(sessions, dsn, name)

    assert with_pool(cfg, body) == (0, 0, 1)


def test_close_waits_for_a_lent_connection_then_cuts_it(dsn: str) -> None:
    cfg = config(dsn, min_size=1, max_size=1)
    name = cfg.server_settings["application_name"]

    async def run() -> tuple[float, int]:
        pool = Pool("default", cfg)
        await pool.open()
        lease = pool.acquire()
        await lease.__aenter__()  # lent and never given back
        started = time.monotonic()
        await pool.close(timeout=0.3)
        return time.monotonic() - started, await asyncio.to_thread(sessions, dsn, name)

    elapsed, left = uvloop.run(run())
    assert 0.25 < elapsed < 2
    assert left <= 1
    wait_for(lambda: sessions(dsn, name) == 0, what="the cut session gone")


# -- bounded acquisition ---------------------------------------------------------------


def test_an_exhausted_pool_answers_503_after_acquire_timeout_and_stays_up(dsn: str) -> None:
    recorder = Recorder()

    async def body(pool: Pool) -> tuple[DatabaseUnavailable, float]:
        pool.observer = recorder
        async with pool.acquire():
            started = time.monotonic()
            with pytest.raises(DatabaseUnavailable) as caught:
                await pool.fetchval("SELECT 1")
            elapsed = time.monotonic() - started
        assert pool.up
        assert await pool.fetchval("SELECT 1") == 1
        return caught.value, elapsed

    error, elapsed = with_pool(config(dsn, max_size=1, acquire_timeout=0.3), body)
    assert isinstance(error, HTTPException)
    assert error.status_code == 503
    assert error.headers == {"Retry-After": "1"}
    assert error.reason == "exhausted"
    assert error.pool == "default"
    assert 0.25 < elapsed < 1.5
    assert [kind for kind, _ in recorder.events] == ["acquired", "failed", "acquired"]
    assert recorder.events[1] == ("failed", "exhausted")


def test_stats_and_acquired_events(dsn: str) -> None:
    recorder = Recorder()

    async def body(pool: Pool) -> tuple[Any, Any, Any]:
        before = pool.stats()
        pool.observer = recorder
        async with pool.acquire():
            during = pool.stats()
        pool.observer = None
        await pool.fetchval("SELECT 1")  # no observer: no event
        return before, during, pool.stats()

    before, during, after = with_pool(config(dsn, min_size=2, max_size=4), body)
    assert dataclasses.astuple(before) == (2, 2, 0, 2, 4, True)
    assert (during.size, during.idle, during.in_use) == (2, 1, 1)
    assert (after.size, after.in_use) == (2, 0)
    assert len(recorder.events) == 1
    kind, wait = recorder.events[0]
    assert kind == "acquired" and 0 <= wait < 1


def test_idle_connections_past_their_lifetime_close_down_to_min_size(dsn: str) -> None:
    cfg = config(dsn, min_size=1, max_size=3, max_inactive_connection_lifetime=0.2)
    name = cfg.server_settings["application_name"]

    async def body(pool: Pool) -> tuple[int, int, int]:
        leases = [pool.acquire() for _ in range(3)]
        for lease in leases:
            await lease.__aenter__()
        for lease in leases:
            await lease.__aexit__(None, None, None)
        grown = pool.stats().size
        deadline = time.monotonic() + 10
        while pool.stats().size > 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)  # polling the sweeper, with a deadline
        on_server = await asyncio.to_thread(sessions, dsn, name)
        while on_server > 1 and time.monotonic() < deadline:  # backends end just after
            on_server = await asyncio.to_thread(sessions, dsn, name)
        return grown, pool.stats().size, on_server

    assert with_pool(cfg, body) == (3, 1, 1)


def test_a_waiter_gets_the_connection_given_back(dsn: str) -> None:
    recorder = Recorder()

    async def body(pool: Pool) -> tuple[list[Any], int]:
        pool.observer = recorder
        holding = asyncio.Event()

        async def hold() -> None:
            async with pool.acquire() as conn:
                holding.set()
                await conn.execute("SELECT pg_sleep(0.3)")

        holder = asyncio.ensure_future(hold())
        await holding.wait()
        value = await pool.fetchval("SELECT 7")  # queues until hold() gives it back
        await holder
        return recorder.events, value

    events, value = with_pool(config(dsn, max_size=1, acquire_timeout=5), body)
    assert value == 7
    assert [kind for kind, _ in events] == ["acquired", "acquired"]
    assert 0.2 < events[1][1] < 3  # the second one waited for the first
