"""A raw ASGI 3 application (no framework) for tests/integration/websocket/: the
``websocket.*`` events driven by hand, one path per behaviour.

How a connection ended (the ``websocket.disconnect`` the app received) is recorded in
this worker's memory under ``?key=`` and read back with ``GET /observed/{key}``.
"""

import json
from typing import Any
from urllib.parse import parse_qs

Scope = dict[str, Any]
observed: dict[str, Any] = {}


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
    elif scope["type"] == "http":
        await http(scope, send)
    else:
        assert scope["type"] == "websocket"
        handler = ROUTES.get(scope["path"])
        if handler is None:
            await send({"type": "websocket.close", "code": 1000})  # -> 403
            return
        connect = await receive()
        assert connect["type"] == "websocket.connect", connect
        await handler(scope, receive, send)


async def lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def http(scope: Scope, send: Any) -> None:
    path = scope["path"]
    if path.startswith("/observed/"):
        body = json.dumps(observed.get(path.removeprefix("/observed/"))).encode()
    else:
        body = b"raw ASGI over HTTP"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def query(scope: Scope) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}


async def accept(send: Any, subprotocol: str | None = None, headers: Any = ()) -> None:
    message: dict[str, Any] = {"type": "websocket.accept", "headers": list(headers)}
    if subprotocol is not None:
        message["subprotocol"] = subprotocol
    await send(message)


async def echo(scope: Scope, receive: Any, send: Any) -> None:
    await accept(send)
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            observed[query(scope).get("key", "echo")] = {"code": message["code"]}
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def scope_info(scope: Scope, receive: Any, send: Any) -> None:
    """Accepts with the first offered subprotocol; sends what the scope held."""
    offered = scope["subprotocols"]
    await accept(send, offered[0] if offered else None, [(b"x-asgi-accept", b"yes")])
    info = {
        "type": scope["type"],
        "asgi": scope["asgi"],
        "http_version": scope["http_version"],
        "scheme": scope["scheme"],
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode("latin-1"),
        "query_string": scope["query_string"].decode("latin-1"),
        "root_path": scope["root_path"],
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
        "subprotocols": offered,
        "client": list(scope["client"]) if scope["client"] else None,
        "server": list(scope["server"]) if scope["server"] else None,
        "extensions": sorted(scope.get("extensions") or {}),
    }
    await send({"type": "websocket.send", "text": json.dumps(info)})
    await receive()


async def close_before_accept(scope: Scope, receive: Any, send: Any) -> None:
    await send({"type": "websocket.close", "code": 1008})


async def deny(scope: Scope, receive: Any, send: Any) -> None:
    """The ``websocket.http.response`` extension: our own status, headers and body."""
    assert "websocket.http.response" in scope["extensions"]
    headers = [(b"content-type", b"application/json"), (b"x-denied-by", b"raw-asgi")]
    await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": b'{"error":', "more_body": True})
    await send({"type": "websocket.http.response.body", "body": b'"who are you"}'})


async def crash_before_accept(scope: Scope, receive: Any, send: Any) -> None:
    raise RuntimeError("asgi-ws-crash-before-accept")


async def crash_after_accept(scope: Scope, receive: Any, send: Any) -> None:
    await accept(send)
    await receive()
    raise RuntimeError("asgi-ws-crash-after-accept")


async def return_without_answer(scope: Scope, receive: Any, send: Any) -> None:
    return None


async def close_with(scope: Scope, receive: Any, send: Any) -> None:
    await accept(send)
    await send({"type": "websocket.close", "code": 4001, "reason": "asgi says bye"})


ROUTES = {
    "/echo": echo,
    "/scope": scope_info,
    "/scope/deeper": scope_info,
    "/close-before-accept": close_before_accept,
    "/deny": deny,
    "/crash/before-accept": crash_before_accept,
    "/crash/after-accept": crash_after_accept,
    "/no-answer": return_without_answer,
    "/close": close_with,
}
