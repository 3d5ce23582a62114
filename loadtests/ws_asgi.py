"""The raw ASGI app of the WebSocket benchmark: the same endpoints as ``ws_app.py``.

Served by uvicorn (``--ws websockets`` / ``wsproto``) and by covetd's ASGI bridge.
The broadcast is what ASGI apps commonly do (FastAPI's "ConnectionManager"): a set
of the members' ``send`` callables, awaited one after the other.
"""

from typing import Any

Scope = dict[str, Any]
MEMBERS: set[Any] = set()


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    path = scope["path"]
    if path == "/echo":
        await echo(receive, send)
    elif path == "/bcast/member":
        await member(receive, send)
    elif path == "/bcast/publish":
        await publish(receive)


async def echo(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def member(receive: Any, send: Any) -> None:
    MEMBERS.add(send)
    try:
        await send({"type": "websocket.send", "text": "ok"})
        while (await receive())["type"] != "websocket.disconnect":
            pass
    finally:
        MEMBERS.discard(send)


async def publish(receive: Any) -> None:
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        for send in list(MEMBERS):
            try:
                await send({"type": "websocket.send", "text": message["text"]})
            except Exception:  # a member that went away: the others still get it
                MEMBERS.discard(send)
