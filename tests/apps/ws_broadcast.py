"""A Covet app for the broadcast tests: rooms whose every step is observable.

``/room/{room}`` joins the room and says who answered (``welcome``: the worker's pid
and the room's count on that worker), then obeys JSON commands from its client:

- ``{"op": "publish", "tag": T, "count": N, "size": S, "pace": P}``: broadcast N
  numbered messages (``{"tag": T, "seq": i, "pid": ..., "pad": ...}``) to the room,
  then an end marker (``{"tag": T, "end": N}``); after every ``pace`` messages
  (default 1) it yields to the loop, like a room fed by its clients, for ``pause``
  seconds (default 0);
- ``{"op": "count"}``: the room's member count on this worker;
- ``{"op": "leave"}`` / ``{"op": "join"}``: leave or rejoin the room;
- ``{"op": "spawn", ...}``: like ``publish``, but from a background task started by
  the handler (the handler answers ``spawned`` at once and goes on reading);
- ``{"op": "big", "size": S}``: broadcast one message of S characters; the answer is
  ``published`` or ``error`` with the backend's message.

Every answer to a command is ``{"event": ..., "pid": ...}`` on the connection itself;
broadcasts carry ``tag``. ``POST /background/{room}?tag=T&count=N`` starts a
background task that broadcasts from outside any handler (answers 202 at once).
``GET /count/{room}``: the count on the worker that answers.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from covetd import Covet, JSONResponse, Request, WebSocket

app = Covet()

PID = os.getpid()
TASKS: set[asyncio.Task[None]] = set()


async def publish(
    room: str, tag: str, count: int, size: int = 0, pace: int = 1, pause: float = 0.0
) -> None:
    pad = "x" * size
    for seq in range(count):
        message = {"tag": tag, "seq": seq, "pid": PID}
        if pad:
            message["pad"] = pad
        await app.hub.broadcast(room, json.dumps(message))
        if pace and (seq + 1) % pace == 0:
            await asyncio.sleep(pause)  # a real room is fed by messages: it yields
    await app.hub.broadcast(room, json.dumps({"tag": tag, "end": count, "pid": PID}))


def in_background(room: str, command: dict[str, Any]) -> None:
    task = asyncio.get_running_loop().create_task(
        publish(room, command["tag"], command["count"], command.get("size", 0))
    )
    TASKS.add(task)
    task.add_done_callback(TASKS.discard)


@app.websocket("/room/{room}")
async def member(ws: WebSocket, room: str) -> None:
    await ws.accept()
    await ws.join(room)
    await ws.send_json({"event": "welcome", "pid": PID, "count": app.hub.count(room)})
    async for text in ws:
        command = json.loads(text)
        answer = await obey(ws, room, command)
        await ws.send_json({**answer, "pid": PID, "op": command["op"]})


async def obey(ws: WebSocket, room: str, command: dict[str, Any]) -> dict[str, Any]:
    op = command["op"]
    if op == "publish":
        await publish(
            room,
            command["tag"],
            command["count"],
            command.get("size", 0),
            command.get("pace", 1),
            command.get("pause", 0.0),
        )
        return {"event": "published"}
    if op == "spawn":
        in_background(room, command)
        return {"event": "spawned"}
    if op == "count":
        return {"event": "count", "count": app.hub.count(room)}
    if op == "leave":
        await ws.leave(room)
        return {"event": "left", "count": app.hub.count(room)}
    if op == "join":
        await ws.join(room)
        return {"event": "joined", "count": app.hub.count(room)}
    if op == "big":
        try:
            await app.hub.broadcast(room, "y" * command["size"])
        except ValueError as exc:
            return {"event": "error", "error": str(exc)}
        return {"event": "published"}
    return {"event": "unknown"}


@app.post("/background/{room}")
async def background(request: Request, room: str) -> JSONResponse:
    tag = request.query_params.get("tag") or "background"
    count = int(request.query_params.get("count") or "1")
    in_background(room, {"tag": tag, "count": count})
    return JSONResponse({"pid": PID, "started": tag}, 202)


@app.get("/count/{room}")
async def count(room: str) -> dict[str, Any]:
    return {"pid": PID, "count": app.hub.count(room)}
