"""An ASGI app (Starlette) on covetd-managed pools (issue 6): the pools arrive through
the lifespan state, so ``request.state.db`` and ``scope["state"]["db"]`` work in every
request; ``unavailable_handler`` turns ``DatabaseUnavailable`` into 503 + Retry-After."""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

from support.pgquery import query, unique_name
from support.process import wait_for
from support.rawhttp import RawConnection, RawResponse


def fetch(port: int, path: str) -> RawResponse:
    with RawConnection("127.0.0.1", port, 10) as conn:
        conn.send(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        return conn.read_response()


def test_starlette_reaches_the_pools_through_request_state_and_scope(covetd, dsn) -> None:
    name = unique_name()
    database = {
        "default": {"dsn": dsn, "server_settings": {"application_name": name}},
        "replica": {"dsn": dsn, "connect": "lazy"},
    }
    server = covetd("db_starlette:app", {"database": database})
    response = fetch(server.port, "/state-db")
    assert response.status == 200, response.body
    assert json.loads(response.body)["value"] == 42
    response = fetch(server.port, "/scope-db")
    assert (response.status, json.loads(response.body)) == (200, {"application_name": name})
    response = fetch(server.port, "/databases")
    assert json.loads(response.body) == {"pools": ["default", "replica"], "same": True}


def test_starlette_gets_503_with_retry_after_from_the_handler(covetd, dsn) -> None:
    name = unique_name()
    pool = {
        "dsn": dsn,
        "max_size": 1,
        "acquire_timeout": 0.3,
        "server_settings": {"application_name": name},
    }
    server = covetd("db_starlette:app", {"database": {"default": pool}})
    held: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: held.update(r=fetch(server.port, "/hold?seconds=1.5")))
    thread.start()
    try:
        wait_for(
            lambda: (
                query(
                    dsn,
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
                    " AND state = 'active'",
                    name,
                )[0][0]
                == 1
            ),
            what="the only connection to be busy",
        )
        response = fetch(server.port, "/state-db")
    finally:
        thread.join(15)
    assert response.status == 503
    assert response.header("retry-after") == "1"
    assert json.loads(response.body) == {"detail": "database 'default' is unavailable (exhausted)"}
    assert held["r"].status == 200


def test_a_lazy_pool_down_answers_503_through_starlette(covetd) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dsn = f"postgresql://postgres@127.0.0.1:{port}/x"
    server = covetd("db_starlette:app", {"database": {"default": {"dsn": dsn, "connect": "lazy"}}})
    response = fetch(server.port, "/state-db")
    assert (response.status, response.header("retry-after")) == (503, "1")
    assert "Traceback" not in server.log()
