"""What a client sees when the database cannot serve (issue 6): an exhausted pool
answers 503 with Retry-After after acquire_timeout, never hangs; a lazy pool boots
without its database and answers 503 at once; an eager pool whose database is down
fails the worker's boot, and covetd says which pool."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from typing import Any

import pytest
from support.pgquery import query, unique_name
from support.process import wait_for
from support.rawhttp import RawConnection, RawResponse


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fetch(port: int, path: str, timeout: float = 10) -> RawResponse:
    with RawConnection("127.0.0.1", port, timeout) as conn:
        conn.send(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        return conn.read_response()


def timed(port: int, path: str) -> tuple[RawResponse, float]:
    started = time.monotonic()
    response = fetch(port, path)
    return response, time.monotonic() - started


def test_an_exhausted_pool_answers_503_with_retry_after(covetd, dsn) -> None:
    name = unique_name()
    pool = {
        "dsn": dsn,
        "min_size": 1,
        "max_size": 1,
        "acquire_timeout": 0.5,
        "server_settings": {"application_name": name},
    }
    server = covetd("db_covet:app", {"database": {"default": pool}})
    held: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: held.update(r=fetch(server.port, "/hold?seconds=2")))
    thread.start()
    try:
        wait_for(
            lambda: (
                query(
                    dsn,
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
                    " AND state = 'active' AND query LIKE '%pg_sleep%'",
                    name,
                )[0][0]
                == 1
            ),
            what="the only connection to be busy",
        )
        response, elapsed = timed(server.port, "/value")
    finally:
        thread.join(15)
    assert response.status == 503
    assert response.header("retry-after") == "1"
    assert response.header("content-type") == "application/json"
    assert json.loads(response.body) == {"detail": "database 'default' is unavailable (exhausted)"}
    assert 0.4 < elapsed < 1.9, elapsed
    assert held["r"].status == 200  # the holder finished on its connection
    assert fetch(server.port, "/value").status == 200
    assert json.loads(fetch(server.port, "/health").body)["pools"] == {"default": True}
    assert "is down" not in server.log()


def test_a_lazy_pool_boots_with_its_database_down(covetd) -> None:
    dsn = f"postgresql://postgres@127.0.0.1:{closed_port()}/x"
    server = covetd("db_covet:app", {"database": {"default": {"dsn": dsn, "connect": "lazy"}}})
    assert fetch(server.port, "/pid").status == 200  # serving: the pool did not block boot
    response, elapsed = timed(server.port, "/value")
    assert (response.status, response.header("retry-after")) == (503, "1")
    assert json.loads(response.body)["detail"] == "database 'default' is unavailable (unreachable)"
    assert elapsed < 1
    again, elapsed = timed(server.port, "/value")  # known down: fails without trying
    assert again.status == 503 and elapsed < 0.5
    assert json.loads(fetch(server.port, "/health").body)["pools"] == {"default": False}
    wait_for(lambda: "database pool 'default' is down" in server.log(), what="the down line")


@pytest.mark.parametrize("workers", [1, 2])
def test_an_eager_pool_with_its_database_down_fails_the_boot(covetd, workers) -> None:
    port = closed_port()
    dsn = f"postgresql://app:s3cret@127.0.0.1:{port}/shop"
    database = {"default": {"dsn": dsn, "min_size": 0}, "orders": {"dsn": dsn, "connect": "lazy"}}
    server = covetd(
        "db_covet:app", {"server": {"workers": workers}, "database": database}, wait=False
    )
    try:
        code = server.wait(15)
    except subprocess.TimeoutExpired:
        pytest.fail(f"covetd still runs with its database down:\n{server.log()}")
    log = server.log()
    assert code != 0, log
    assert (
        f"database pool 'default' cannot connect to postgresql://app:***@127.0.0.1:{port}/shop: "
        "ConnectionRefusedError" in log
    ), log
    assert "s3cret" not in log
    assert "Traceback" not in log


def test_named_pools_side_by_side(covetd, dsn) -> None:
    database = {
        "default": {"dsn": dsn, "server_settings": {"application_name": "covetd-primary"}},
        "replica": {
            "dsn": dsn,
            "connect": "lazy",
            "server_settings": {"application_name": "covetd-replica"},
        },
    }
    server = covetd("db_covet:app", {"database": database})
    response = fetch(server.port, "/replica")
    assert response.status == 200
    assert json.loads(response.body) == {"application_name": "covetd-replica"}
    health = json.loads(fetch(server.port, "/health").body)["pools"]
    assert health == {"default": True, "replica": True}
