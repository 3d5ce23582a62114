"""Covet's ASGI face (``covetd/app/asgi.py``), driven in-process with canned messages."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from covetd import Covet, Request, StreamingResponse, WebSocket

Message = dict[str, Any]


def http_scope(method: str = "GET", path: str = "/", **extra: Any) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"example.com")],
        "client": ("10.0.0.1", 1234),
        "server": ("example.com", 80),
    }
    scope.update(extra)
    return scope


def run_asgi(app: Covet, scope: dict[str, Any], incoming: list[Message]) -> list[Message]:
    sent: list[Message] = []
    queue = list(incoming)

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        await asyncio.Event().wait()  # nothing more will come
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def test_get_is_one_start_and_one_body() -> None:
    app = Covet()

    @app.get("/hello/{name}")
    async def hello(request: Request, name: str) -> dict[str, str]:
        return {"name": name, "host": request.headers["host"], "client": request.client.host}

    start, body = run_asgi(app, http_scope(path="/hello/ada"), [{"type": "http.request"}])
    assert start["type"] == "http.response.start"
    assert start["status"] == 200
    assert (b"content-type", b"application/json") in start["headers"]
    assert body == {
        "type": "http.response.body",
        "body": b'{"name":"ada","host":"example.com","client":"10.0.0.1"}',
    }


def test_body_in_several_messages() -> None:
    app = Covet()

    @app.post("/echo")
    async def echo(request: Request) -> bytes:
        return await request.body()

    incoming = [
        {"type": "http.request", "body": b"one ", "more_body": True},
        {"type": "http.request", "body": b"", "more_body": True},
        {"type": "http.request", "body": b"two", "more_body": False},
    ]
    _, body = run_asgi(app, http_scope("POST", "/echo"), incoming)
    assert body["body"] == b"one two"


def test_streaming_response_is_several_body_messages() -> None:
    app = Covet()

    @app.get("/")
    async def index() -> StreamingResponse:
        async def parts() -> AsyncIterator[str]:
            yield "a"
            yield "b"

        return StreamingResponse(parts())

    start, *bodies = run_asgi(app, http_scope(), [{"type": "http.request"}])
    assert start["status"] == 200
    assert [(m["body"], m.get("more_body", False)) for m in bodies] == [
        (b"a", True),
        (b"b", True),
        (b"", False),
    ]


def test_path_without_raw_path() -> None:
    app = Covet()

    @app.get("/caf\u00e9")
    async def cafe() -> str:
        return "coffee"

    scope = http_scope(path="/caf\u00e9")
    del scope["raw_path"]
    _, body = run_asgi(app, scope, [{"type": "http.request"}])
    assert body["body"] == b"coffee"


def test_errors_become_responses() -> None:
    app = Covet()
    start, body = run_asgi(app, http_scope(path="/missing"), [{"type": "http.request"}])
    assert start["status"] == 404
    assert body["body"] == b'{"detail":"Not Found"}'


def test_lifespan_startup_and_shutdown() -> None:
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Covet) -> AsyncIterator[dict[str, str]]:
        events.append("enter")
        yield {"db": "pool"}
        events.append("exit")

    app = Covet(lifespan=lifespan)
    app.on_startup(lambda: events.append("startup hook"))
    app.on_shutdown(lambda: events.append("shutdown hook"))
    sent = run_asgi(
        app,
        {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
        [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}],
    )
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert events == ["startup hook", "enter", "exit", "shutdown hook"]
    assert app.state.db == "pool"


def test_lifespan_startup_failure_reports_the_apps_message() -> None:
    app = Covet()

    @app.on_startup
    def fail() -> None:
        raise RuntimeError("no database")

    sent = run_asgi(
        app, {"type": "lifespan", "asgi": {"version": "3.0"}}, [{"type": "lifespan.startup"}]
    )
    assert len(sent) == 1
    assert sent[0]["type"] == "lifespan.startup.failed"
    assert "no database" in sent[0]["message"]


def test_a_websocket_to_no_route_is_refused() -> None:
    # Without the denial extension the refusal is a close before accept (the server
    # turns it into a 403); with it, the app's own 404 goes out as HTTP.
    scope = {"type": "websocket", "path": "/ws", "headers": []}
    sent = run_asgi(Covet(), scope, [{"type": "websocket.connect"}])
    assert sent == [{"type": "websocket.close", "code": 1008}]
    denial = {**scope, "extensions": {"websocket.http.response": {}}}
    sent = run_asgi(Covet(), denial, [{"type": "websocket.connect"}])
    assert [m["type"] for m in sent] == [
        "websocket.http.response.start",
        "websocket.http.response.body",
    ]
    assert sent[0]["status"] == 404


def test_a_covet_websocket_route_over_asgi_events() -> None:
    app = Covet()

    @app.websocket("/ws")
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        async for message in ws:
            await ws.send_text(f"echo {message}")

    events = [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": "hi"},
        {"type": "websocket.disconnect", "code": 1000},
    ]
    sent = run_asgi(app, {"type": "websocket", "path": "/ws", "headers": []}, events)
    assert sent[0]["type"] == "websocket.accept"
    assert sent[1] == {"type": "websocket.send", "text": "echo hi"}
