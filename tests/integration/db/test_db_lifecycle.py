"""Pools live and die with their workers (issue 6): opened after fork in each worker,
never in the master (not even with ``preload``), closed on reload and stop after the
in-flight requests finished; no server session outlives its worker.

Sessions are counted on the server (``pg_stat_activity``) by ``application_name``,
whose default names the worker: ``covetd worker <pid>``.
"""

from __future__ import annotations

import json
import signal
import threading
import urllib.request
from typing import Any

from support.pgcluster import PgCluster
from support.pgquery import query, sessions_like
from support.process import wait_for
from support.workers import worker_pids

MIN_SIZE = 2


def db_settings(dsn: str, **pool: Any) -> dict[str, Any]:
    return {"database": {"default": {"dsn": dsn, "min_size": MIN_SIZE, "max_size": 4, **pool}}}


def worker_sessions(dsn: str, pids: set[int]) -> dict[int, int]:
    """Server sessions of each of ``pids`` (by the default application_name)."""
    counts = sessions_like(dsn, "covetd worker %")
    return {pid: counts.get(f"covetd worker {pid}", 0) for pid in pids}


def get(url: str, timeout: float = 10) -> tuple[int, Any]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, json.loads(response.read())


def test_sessions_follow_the_workers_through_reload_and_stop(covetd, dsn) -> None:
    config = {"server": {"workers": 2, "preload": True, "graceful_timeout": 5}}
    server = covetd("db_covet:app", {**config, **db_settings(dsn)})
    master = server.proc.pid
    first = wait_for(lambda: len(w := worker_pids(master)) == 2 and w, what="2 workers")
    expected = dict.fromkeys(first, MIN_SIZE)
    wait_for(lambda: worker_sessions(dsn, first) == expected, what=f"{expected}")
    assert worker_sessions(dsn, {master}) == {master: 0}, "the master opened a pool"

    server.signal(signal.SIGHUP)
    second = wait_for(
        lambda: len(w := worker_pids(master)) == 2 and not (w & first) and w,
        20,
        what="a new generation of 2 workers",
    )
    wait_for(
        lambda: (
            worker_sessions(dsn, first | second)
            == {**dict.fromkeys(first, 0), **dict.fromkeys(second, MIN_SIZE)}
        ),
        what="the old workers' sessions gone, the new ones' open",
    )
    assert get(f"{server.url}/value")[1]["value"] == 1

    server.signal(signal.SIGTERM)
    assert server.wait(20) == 0
    wait_for(
        lambda: (
            worker_sessions(dsn, first | second | {master})
            == dict.fromkeys(first | second | {master}, 0)
        ),
        what="every session closed",
    )
    assert "database pool" not in server.log(), server.log()


def test_each_worker_names_its_sessions_after_itself(covetd, dsn) -> None:
    server = covetd("db_covet:app", {"server": {"workers": 2}, **db_settings(dsn)})
    pids = wait_for(lambda: len(w := worker_pids(server.proc.pid)) == 2 and w, what="workers")
    seen: dict[int, str] = {}
    deadline_requests = 200
    for _ in range(deadline_requests):  # new connections land on either worker
        status, body = get(f"{server.url}/app-name")
        assert status == 200
        seen[body["pid"]] = body["application_name"]
        if len(seen) == 2:
            break
    assert set(seen) <= pids
    for pid, name in seen.items():
        assert name == f"covetd worker {pid}"


def test_a_request_in_flight_at_stop_finishes_on_its_connection(covetd, dsn) -> None:
    """TERM: the pool is closed after the in-flight request, not under it."""
    server = covetd("db_covet:app", {"server": {"graceful_timeout": 10}, **db_settings(dsn)})
    (worker,) = wait_for(lambda: worker_pids(server.proc.pid), what="the worker")
    result: dict[str, Any] = {}

    def hold() -> None:
        try:
            result["response"] = get(f"{server.url}/hold?seconds=1.5")
        except Exception as exc:
            result["error"] = exc

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        wait_for(
            lambda: (
                query(
                    dsn,
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
                    " AND state = 'active' AND query LIKE '%pg_sleep%'",
                    f"covetd worker {worker}",
                )[0][0]
                == 1
            ),
            what="the held query to run on the server",
        )
        server.signal(signal.SIGTERM)
    finally:
        thread.join(20)
    assert "error" not in result, (result, server.log())
    status, body = result["response"]
    assert (status, body["held"]) == (200, 1.5)
    assert server.wait(20) == 0
    wait_for(lambda: worker_sessions(dsn, {worker}) == {worker: 0}, what="sessions closed")


def test_pools_say_goodbye_on_reload_and_stop(covetd) -> None:
    """Each connection is closed by covetd (Terminate sent), not dropped with its
    process: PostgreSQL (log_min_messages=debug1) logs "unexpected EOF on client
    connection" for every session whose client just went away."""
    with PgCluster(settings={"log_min_messages": "debug1"}) as pg:
        config = {"server": {"workers": 2, "graceful_timeout": 5}}
        server = covetd("db_covet:app", {**config, **db_settings(pg.dsn)})
        master = server.proc.pid
        first = wait_for(lambda: len(w := worker_pids(master)) == 2 and w, what="2 workers")
        wait_for(
            lambda: worker_sessions(pg.dsn, first) == dict.fromkeys(first, MIN_SIZE),
            what="each worker's sessions",
        )
        server.signal(signal.SIGHUP)
        second = wait_for(
            lambda: len(w := worker_pids(master)) == 2 and not (w & first) and w,
            20,
            what="a new generation",
        )
        wait_for(
            lambda: worker_sessions(pg.dsn, first) == dict.fromkeys(first, 0),
            what="the old generation's sessions closed",
        )
        server.signal(signal.SIGTERM)
        assert server.wait(20) == 0
        wait_for(
            lambda: worker_sessions(pg.dsn, second) == dict.fromkeys(second, 0),
            what="every session closed",
        )
        log = pg.log_path.read_text(errors="replace")
    assert log.count("disconnection: session time") == 0  # (log_disconnections is off)
    dropped = [line for line in log.splitlines() if "unexpected EOF on client connection" in line]
    assert dropped == [], "\n".join(dropped)
