"""The Covet app behind tests/integration/websocket/: one WebSocket route per behaviour.

What a test cannot see from the client (how a handler's ``close_code`` ended up, how
far a sender got while the client stalled) is recorded in this worker's memory under a
key the test chooses (``?key=``) and read back over HTTP (``/observed/{key}``,
``/flood-state/{key}``), so tests sharing one server do not see each other's state.
The servers run one worker, so every request reaches the process that recorded it.
"""

import asyncio
import os
import time
from typing import Any

from covetd import (
    Covet,
    HTTPException,
    PlainTextResponse,
    Request,
    Response,
    WebSocket,
    WebSocketDisconnect,
)

app = Covet()

SUBPROTOCOLS = ("chat.v2", "chat.v1")  # the server's preference order
observed: dict[str, dict[str, Any]] = {}
floods: dict[str, dict[str, Any]] = {}


@app.get("/")
async def index() -> str:
    return "plain HTTP"


@app.get("/observed/{key}")
async def read_observed(key: str) -> dict[str, Any]:
    return observed.get(key, {})


@app.get("/flood-state/{key}")
async def flood_state(key: str) -> dict[str, Any]:
    state = floods.get(key)
    if state is None:
        return {"sent": 0, "finished": False, "idle": 0.0, "error": None}
    return {**state, "idle": time.monotonic() - state["last_sent"]}


@app.get("/pid")
async def pid() -> dict[str, int]:
    return {"pid": os.getpid()}


# -- echo ---------------------------------------------------------------------------------


@app.websocket("/echo")
async def echo(ws: WebSocket) -> None:
    """Text back as text, bytes back as bytes, until the client closes."""
    await ws.accept()
    while True:
        message = await ws.receive()
        if isinstance(message, str):
            await ws.send_text(message)
        else:
            await ws.send_bytes(message)


@app.websocket("/iter")
async def iterate(ws: WebSocket) -> None:
    """``async for``: each message back with its index; a summary once the loop ends."""
    await ws.accept()
    count = 0
    async for message in ws:
        kind = "text" if isinstance(message, str) else "bytes"
        await ws.send_json({"index": count, "kind": kind, "size": len(message)})
        count += 1
    observed[ws.query_params.get("key", "iter")] = {"count": count, "close_code": ws.close_code}


@app.websocket("/typed")
async def typed(ws: WebSocket) -> None:
    """``receive_text``, ``receive_bytes``, ``receive_json`` in turn, each answered by its
    ``send_*`` twin."""
    await ws.accept()
    text = await ws.receive_text()
    await ws.send_text(text.upper())
    data = await ws.receive_bytes()
    await ws.send_bytes(data[::-1])
    document = await ws.receive_json()
    await ws.send_json({"got": document, "type": type(document).__name__})
    await ws.receive()  # until the client closes


# -- the handshake ------------------------------------------------------------------------


@app.websocket("/subprotocol")
async def subprotocol(ws: WebSocket) -> None:
    """Picks the first of the server's subprotocols the client offered (none: none)."""
    chosen = next((p for p in SUBPROTOCOLS if p in ws.subprotocols), None)
    await ws.accept(subprotocol=chosen)
    await ws.send_json({"offered": ws.subprotocols, "chosen": chosen})
    await ws.receive()


@app.websocket("/subprotocol/unoffered")
async def unoffered_subprotocol(ws: WebSocket) -> None:
    """accept() with a subprotocol the client did not offer: ValueError before accepting."""
    await ws.accept(subprotocol="never-offered")


@app.websocket("/accept-headers")
async def accept_headers(ws: WebSocket) -> None:
    await ws.accept(headers={"x-covet-test": "accepted", "set-cookie": "seen=1; Path=/"})
    await ws.send_text("hello")
    await ws.receive()


@app.websocket("/info/{room}/{number:int}")
async def info(ws: WebSocket, room: str, number: int) -> None:
    """What the handler sees of its upgrade request, as one JSON message."""
    await ws.accept()
    client = ws.client
    await ws.send_json(
        {
            "origin": ws.origin,
            "path": ws.path,
            "query": dict(ws.query_params),
            "path_params": ws.path_params,
            "room": room,
            "number": number,
            "number_type": type(number).__name__,
            "header": ws.headers.get("x-custom"),
            "cookies": ws.cookies,
            "client_host": client.host if client else None,
            "url_scheme": ws.url.scheme,
            "subprotocols": ws.subprotocols,
        }
    )
    await ws.receive()


@app.websocket("/client")
async def client_address(ws: WebSocket) -> None:
    """The client address the handler sees (proxy_headers may rewrite it)."""
    await ws.accept()
    client = ws.client
    await ws.send_json({"host": client.host if client else None, "scheme": ws.request.scheme})
    await ws.receive()


@app.websocket("/user")
async def user(ws: WebSocket) -> None:
    """Who the auth middleware says the client is."""
    await ws.accept()
    await ws.send_json({"subject": ws.request.user.subject})
    await ws.receive()


# -- closing ------------------------------------------------------------------------------


@app.websocket("/close/{code:int}")
async def close_with(ws: WebSocket, code: int) -> None:
    """The server closes at once with ``code`` and ``?reason=``."""
    await ws.accept()
    await ws.close(code, ws.query_params.get("reason", ""))
    observed[ws.query_params.get("key", "close")] = {"close_code": ws.close_code}


@app.websocket("/observe")
async def observe(ws: WebSocket) -> None:
    """Receives until the client closes; records how the connection ended."""
    await ws.accept()
    key = ws.query_params.get("key", "observe")
    received = 0
    try:
        while True:
            await ws.receive()
            received += 1
            observed[key] = {"received": received, "open": True}
    except WebSocketDisconnect as disconnect:
        observed[key] = {
            "received": received,
            "open": False,
            "close_code": ws.close_code,
            "disconnect_code": disconnect.code,
            "disconnect_reason": disconnect.reason,
        }


# -- refusing (before accept) -------------------------------------------------------------


@app.websocket("/refuse/response")
async def refuse_with_response(ws: WebSocket) -> Response:
    return PlainTextResponse("no WebSocket for you\n", 451, headers={"x-refused": "yes"})


@app.websocket("/refuse/http-exception")
async def refuse_with_http_exception(ws: WebSocket) -> None:
    raise HTTPException(401, "token needed", headers={"www-authenticate": "Bearer"})


@app.websocket("/refuse/silently")
async def refuse_silently(ws: WebSocket) -> None:
    return None


@app.websocket("/refuse/close")
async def refuse_with_close(ws: WebSocket) -> None:
    """``close()`` before ``accept``: documented as a refusal with HTTP 403."""
    await ws.close()


@app.websocket("/refuse/origin")
async def refuse_foreign_origin(ws: WebSocket) -> Response | None:
    """The usual cross-site WebSocket hijacking guard."""
    if ws.origin != "https://good.example":
        return PlainTextResponse("origin not allowed\n", 403)
    await ws.accept()
    await ws.send_text("welcome")
    await ws.receive()
    return None


@app.websocket("/crash/before-accept")
async def crash_before_accept(ws: WebSocket) -> None:
    raise RuntimeError("ws-crash-before-accept")


@app.websocket("/crash/after-accept")
async def crash_after_accept(ws: WebSocket) -> None:
    await ws.accept()
    await ws.receive()
    raise RuntimeError("ws-crash-after-accept")


# -- volume -------------------------------------------------------------------------------


@app.websocket("/flood")
async def flood(ws: WebSocket) -> None:
    """Sends ``?count=`` messages of ``?size=`` bytes as fast as ``send`` lets it."""
    await ws.accept()
    key = ws.query_params.get("key", "flood")
    count = int(ws.query_params.get("count", "1000"))
    size = int(ws.query_params.get("size", "65536"))
    state = floods[key] = {"sent": 0, "finished": False, "error": None}
    state["last_sent"] = time.monotonic()
    try:
        for i in range(count):
            await ws.send_bytes(bytes([i % 256]) * size)
            state["sent"] = i + 1
            state["last_sent"] = time.monotonic()
        state["finished"] = True
        await ws.receive()
    except WebSocketDisconnect as disconnect:
        state["error"] = f"disconnect {disconnect.code}"


@app.websocket("/big")
async def big(ws: WebSocket) -> None:
    """Answers each text message ``N`` with one message of ``N`` compressible bytes."""
    await ws.accept()
    async for message in ws:
        size = int(message)
        await ws.send_text(("covetd " * (size // 7 + 1))[:size])


@app.websocket("/hold")
async def hold(ws: WebSocket) -> None:
    """Stays open and silent until the client or the server ends it."""
    await ws.accept()
    key = ws.query_params.get("key", "hold")
    observed[key] = {"open": True}
    try:
        while True:
            await ws.receive()
    except WebSocketDisconnect:
        observed[key] = {"open": False, "close_code": ws.close_code}


@app.websocket("/sleep-then-echo")
async def sleep_then_echo(ws: WebSocket) -> None:
    """Accepts, then answers the first message after ``?s=`` seconds (a slow handler)."""
    await ws.accept()
    message = await ws.receive()
    await asyncio.sleep(float(ws.query_params.get("s", "0.5")))
    await ws.send_text(str(message))
    await ws.receive()


@app.get("/whoami")
async def whoami(request: Request) -> dict[str, Any]:
    return {"subject": request.user.subject}


@app.websocket("/slow-accept")
async def slow_accept(ws: WebSocket) -> None:
    """Accepts after ``?s=`` seconds (an app checking credentials), then echoes."""
    observed[ws.query_params.get("key", "slow-accept")] = {"accepting": True}
    await asyncio.sleep(float(ws.query_params.get("s", "1")))
    await ws.accept()
    async for message in ws:
        await ws.send_text(str(message))


releases: dict[str, asyncio.Event] = {}


@app.get("/release/{key}")
async def release(key: str) -> dict[str, bool]:
    releases.setdefault(key, asyncio.Event()).set()
    return {"released": True}


@app.websocket("/deaf")
async def deaf(ws: WebSocket) -> None:
    """Reads nothing until ``GET /release/{key}``, then counts what arrives: the
    client's sends must be held back meanwhile (the server stops reading)."""
    await ws.accept()
    key = ws.query_params.get("key", "deaf")
    observed[key] = {"received": 0, "bytes": 0, "released": False}
    await releases.setdefault(key, asyncio.Event()).wait()
    state = observed[key] = {"received": 0, "bytes": 0, "released": True}
    async for message in ws:
        state["received"] += 1
        state["bytes"] += len(message)
        if message == b"last":
            await ws.send_json(state)


@app.websocket("/whose")
async def whose(ws: WebSocket) -> None:
    """Says which worker holds the connection, then echoes."""
    await ws.accept()
    await ws.send_json({"pid": os.getpid()})
    async for message in ws:
        await ws.send_text(str(message))
