"""A pool's health through outages, in-process: fail fast while down, recover without
a request, one log line per change, bounded connects. The database is a throwaway
server that the tests stop and start (``support/pgcluster.py``), or a port where no
server answers."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any

import pytest
import uvloop
from support.pgcluster import PgCluster

from covetd.config import DatabaseConfig
from covetd.db import DatabaseConnectError, DatabaseUnavailable, Pool, PoolObserver

DEADLINE = 20.0


def closed_port() -> int:
    """A port on which nothing listens (bound, never listening, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class States(PoolObserver):
    def __init__(self) -> None:
        self.changes: list[bool] = []
        self.failures: list[str] = []

    def state_changed(self, pool: Pool, up: bool) -> None:
        self.changes.append(up)

    def failed(self, pool: Pool, error: DatabaseUnavailable) -> None:
        self.failures.append(error.reason)


async def until(predicate: Any, what: str, timeout: float = DEADLINE) -> None:
    """Await a condition with a deadline (the loop keeps running meanwhile)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


def idle_backends(pool: Pool) -> list[int]:
    """Server pids of the pool's idle connections (a look inside, for this test)."""
    assert pool._conns is not None
    return [conn.get_server_pid() for conn, _ in pool._conns.idle]


def pool_lines(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "covetd.error" and f"database pool {name!r}" in r.getMessage()
    ]


def test_outage_fails_fast_logs_once_and_recovers_without_a_request(
    cluster: PgCluster, caplog: pytest.LogCaptureFixture
) -> None:
    states = States()
    cfg = DatabaseConfig(dsn=cluster.dsn, min_size=2, max_size=4, acquire_timeout=2)

    async def run() -> dict[str, Any]:
        pool = Pool("default", cfg)
        await pool.open()
        pool.observer = states
        seen: dict[str, Any] = {}
        try:
            assert await pool.fetchval("SELECT 1") == 1
            await asyncio.to_thread(cluster.stop)
            # The first request after the outage finds the connection broken or
            # cannot reconnect: 503 either way, and the pool is down.
            with pytest.raises(DatabaseUnavailable) as first:
                await pool.fetchval("SELECT 1")
            seen["first"] = first.value.reason
            await until(lambda: not pool.up, "the pool to be down")
            timings = []
            for _ in range(50):
                started = time.monotonic()
                with pytest.raises(DatabaseUnavailable) as caught:
                    await pool.fetchval("SELECT 1")
                timings.append(time.monotonic() - started)
                assert caught.value.reason == "unreachable"
            seen["slowest"] = max(timings)
            await asyncio.to_thread(cluster.start)
            # No request now: the watcher alone must bring the pool back.
            await until(lambda: pool.up, "the pool to be up again")
            seen["after"] = await pool.fetchval("SELECT 1")
        finally:
            await pool.close()
        return seen

    with caplog.at_level(logging.INFO, logger="covetd.error"):
        seen = uvloop.run(run())
    assert seen["first"] in ("lost", "unreachable")
    assert seen["slowest"] < 0.05, "a pool known to be down must fail without waiting"
    assert seen["after"] == 1
    assert states.changes == [False, True]
    assert states.failures.count("unreachable") >= 50
    lines = pool_lines(caplog, "default")
    assert len(lines) == 2, lines
    assert lines[0].startswith("database pool 'default' is down: ")
    assert lines[1] == "database pool 'default' is up again"


def test_a_lazy_pool_opens_with_the_database_down_and_connects_once_it_is_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = closed_port()
    cfg = DatabaseConfig(dsn=f"postgresql://postgres@127.0.0.1:{port}/x", connect="lazy")

    async def run() -> tuple[bool, str, bool]:
        pool = Pool("lazy", cfg)
        await pool.open()  # no connection attempt: nothing to fail
        try:
            up_at_open = pool.up
            with pytest.raises(DatabaseUnavailable) as caught:
                await pool.fetchval("SELECT 1")
            return up_at_open, caught.value.reason, pool.up
        finally:
            await pool.close()

    with caplog.at_level(logging.INFO, logger="covetd.error"):
        assert uvloop.run(run()) == (True, "unreachable", False)
    assert len(pool_lines(caplog, "lazy")) == 1


def test_a_database_that_never_answers_is_bounded_by_acquire_timeout() -> None:
    """A server that accepts TCP but never answers (a hung host, a black hole): the
    connect is cut at acquire_timeout, the request gets 503 and the pool is down."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel completes handshakes; nobody ever answers
        port = silent.getsockname()[1]
        cfg = DatabaseConfig(
            dsn=f"postgresql://postgres@127.0.0.1:{port}/x", connect="lazy", acquire_timeout=0.4
        )

        async def run() -> tuple[float, str, bool, float]:
            pool = Pool("silent", cfg)
            await pool.open()
            try:
                started = time.monotonic()
                with pytest.raises(DatabaseUnavailable) as caught:
                    await pool.fetchval("SELECT 1")
                elapsed = time.monotonic() - started
                started = time.monotonic()
                with pytest.raises(DatabaseUnavailable):
                    await pool.fetchval("SELECT 1")
                return elapsed, caught.value.reason, pool.up, time.monotonic() - started
            finally:
                await pool.close()

        elapsed, reason, up, second = uvloop.run(run())
    assert 0.35 < elapsed < 2
    assert reason == "unreachable"
    assert up is False
    assert second < 0.05


def test_eager_open_with_the_database_down_names_the_pool() -> None:
    port = closed_port()
    cfg = DatabaseConfig(dsn=f"postgresql://postgres:hunter2@127.0.0.1:{port}/x", min_size=0)

    async def run() -> None:
        await Pool("reports", cfg).open()

    with pytest.raises(DatabaseConnectError) as caught:
        uvloop.run(run())
    message = str(caught.value)
    assert message.startswith(
        f"database pool 'reports' cannot connect to postgresql://postgres:***@127.0.0.1:{port}/x: "
    )
    assert "ConnectionRefusedError" in message
    assert "hunter2" not in message
    assert "\n" not in message


def test_eager_open_against_a_silent_server_fails_within_acquire_timeout() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        cfg = DatabaseConfig(dsn=f"postgresql://postgres@127.0.0.1:{port}/x", acquire_timeout=0.3)

        async def run() -> None:
            await Pool("default", cfg).open()

        started = time.monotonic()
        with pytest.raises(DatabaseConnectError, match="database pool 'default' cannot connect"):
            uvloop.run(run())
    assert time.monotonic() - started < 3


def test_an_idle_pool_notices_the_outage_without_a_request(
    cluster: PgCluster, caplog: pytest.LogCaptureFixture
) -> None:
    """The server closing idle connections is news: the pool checks at once."""
    states = States()
    cfg = DatabaseConfig(dsn=cluster.dsn, min_size=2, acquire_timeout=2)

    async def run() -> tuple[int, int]:
        pool = Pool("idle", cfg)
        await pool.open()
        pool.observer = states
        try:
            await asyncio.to_thread(cluster.stop)
            await until(lambda: not pool.up, "the idle pool to notice")
            idle_while_down = pool.stats().idle  # the dead connections were dropped
            await asyncio.to_thread(cluster.start)
            await until(lambda: pool.up, "the pool to be up again")
            return idle_while_down, await pool.fetchval("SELECT 1")
        finally:
            await pool.close()

    with caplog.at_level(logging.INFO, logger="covetd.error"):
        assert uvloop.run(run()) == (0, 1)
    assert states.changes == [False, True]
    assert len(pool_lines(caplog, "idle")) == 2


def test_one_lost_connection_is_not_an_outage(
    cluster: PgCluster, caplog: pytest.LogCaptureFixture
) -> None:
    """A single backend killed (pg_terminate_backend): the check finds the server
    answering, so the pool stays up and nothing is logged."""
    states = States()
    cfg = DatabaseConfig(dsn=cluster.dsn, min_size=1, max_size=2)

    async def run() -> tuple[bool, int, int]:
        pool = Pool("one", cfg)
        await pool.open()
        pool.observer = states
        try:
            killer = pool.acquire()
            other = await killer.__aenter__()  # a second connection does the killing
            victim = await pool.fetchval("SELECT pg_backend_pid()")  # idle again after
            assert await other.fetchval("SELECT pg_backend_pid()") != victim
            await other.execute("SELECT pg_terminate_backend($1)", victim)
            await until(
                lambda: idle_backends(pool) not in ([], [victim]),
                "the lost connection replaced by the check's new one",
            )
            await killer.__aexit__(None, None, None)
            return pool.up, await pool.fetchval("SELECT 1"), pool.stats().size
        finally:
            await pool.close()

    with caplog.at_level(logging.INFO, logger="covetd.error"):
        up, value, size = uvloop.run(run())
    assert (up, value, size) == (True, 1, 2)
    assert states.changes == []
    assert pool_lines(caplog, "one") == []
