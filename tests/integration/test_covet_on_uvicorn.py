"""Covet is an ASGI app: the same application served by a real uvicorn process."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from support.events import events_env, read_events
from support.process import TEST_APPS
from support.rawhttp import RawConnection
from support.uvicorn_process import Uvicorn


@pytest.fixture(scope="module")
def hello() -> Iterator[Uvicorn]:
    with Uvicorn("examples.hello:app") as server:
        yield server


def test_hello_index(hello: Uvicorn) -> None:
    response = httpx.get(hello.url + "/", timeout=5)
    assert response.status_code == 200
    assert response.text == "Hello from covetd!\n"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


def test_hello_path_param(hello: Uvicorn) -> None:
    response = httpx.get(hello.url + "/hello/Ada%20Lovelace", timeout=5)
    assert response.json() == {"message": "Hello, Ada Lovelace!"}


def test_hello_post_echo(hello: Uvicorn) -> None:
    payload = {"n": [1, 2, 3], "text": "café"}
    response = httpx.post(hello.url + "/echo", json=payload, timeout=5)
    assert response.json() == {"received": payload}


def test_hello_errors(hello: Uvicorn) -> None:
    assert httpx.get(hello.url + "/nowhere", timeout=5).status_code == 404
    response = httpx.delete(hello.url + "/echo", timeout=5)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    invalid = httpx.post(hello.url + "/echo", content=b"{", timeout=5)
    assert invalid.status_code == 400


def test_startup_shutdown_streaming_and_more_through_uvicorn(tmp_path: Path) -> None:
    server = Uvicorn("covet_on_uvicorn:app", app_dir=TEST_APPS, env=events_env(tmp_path))
    try:
        server.start()
        assert read_events(tmp_path) == ["startup"]
        assert httpx.get(server.url + "/started", timeout=5).json() == {"started": True}
        assert httpx.get(server.url + "/items/12?q=x", timeout=5).json() == {"id": 12, "q": "x"}
        form = httpx.post(server.url + "/form", data={"a": "1", "b": ["2", "3"]}, timeout=5)
        assert form.json() == {"fields": [["a", "1"], ["b", "2"], ["b", "3"]]}
        boom = httpx.get(server.url + "/boom", timeout=5)
        assert boom.status_code == 500
        assert "secret" not in boom.text
        with RawConnection(server.host, server.port) as conn:
            conn.send(b"GET /stream?n=4 HTTP/1.1\r\nHost: t\r\n\r\n")
            streamed = conn.read_response()
        assert streamed.header("transfer-encoding") == "chunked"
        assert streamed.body == b"line 0\nline 1\nline 2\nline 3\n"
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal once it has shut down cleanly: -SIGTERM, or 0.
        assert server.proc.wait(10) in (0, -signal.SIGTERM)
        assert read_events(tmp_path) == ["startup", "shutdown"]
        assert "Application shutdown complete" in server.log()
    finally:
        server.stop()


def test_startup_failure_stops_uvicorn_with_the_apps_message() -> None:
    server = Uvicorn("failing_startup_app:app", app_dir=TEST_APPS)
    try:
        server.start(wait=False)
        assert server.proc is not None
        code = server.proc.wait(5)
        log = server.log()
    finally:
        server.stop()
    assert code != 0
    assert "cannot reach the database at db.internal:5432" in log


@pytest.fixture(scope="module")
def chat() -> Iterator[Uvicorn]:
    with Uvicorn("examples.chat:app", args=["--ws", "websockets"]) as server:
        yield server


def test_a_covet_websocket_route_under_uvicorn(chat: Uvicorn) -> None:
    async def talk() -> tuple[str, bytes, str]:
        url = f"ws://127.0.0.1:{chat.port}"
        async with websockets.connect(url + "/echo") as ws:
            await ws.send("hello")
            text = await ws.recv()
            await ws.send(b"\x00\x01")
            data = await ws.recv()
        async with websockets.connect(url + "/ws/lobby?name=ada") as member:
            joined = await member.recv()  # its own join, broadcast through the room
        assert isinstance(text, str) and isinstance(data, bytes) and isinstance(joined, str)
        return text, data, joined

    text, data, joined = asyncio.run(asyncio.wait_for(talk(), 20))
    assert (text, data) == ("hello", b"\x00\x01")
    assert json.loads(joined) == {"event": "joined", "name": "ada"}


def test_an_unknown_websocket_path_is_refused_under_uvicorn(chat: Uvicorn) -> None:
    async def refused() -> int:
        try:
            async with websockets.connect(f"ws://127.0.0.1:{chat.port}/nowhere"):
                return 0
        except websockets.InvalidStatus as exc:
            return exc.response.status_code

    assert asyncio.run(asyncio.wait_for(refused(), 20)) in (403, 404)
