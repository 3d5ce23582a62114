"""A Starlette application with WebSocket routes for tests/integration/websocket/."""

from typing import Any

from starlette.applications import Starlette
from starlette.endpoints import WebSocketEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

closed: dict[str, Any] = {}


async def index(request: Request) -> Response:
    return PlainTextResponse("starlette over HTTP")


async def observed(request: Request) -> Response:
    return PlainTextResponse(str(closed.get(request.path_params["key"])))


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    key = websocket.query_params.get("key", "echo")
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                closed[key] = message["code"]
                return
            if message.get("text") is not None:
                await websocket.send_text("echo: " + message["text"])
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect as disconnect:
        closed[key] = disconnect.code


class Counter(WebSocketEndpoint):
    """A class-based endpoint: JSON in, JSON out."""

    encoding = "json"

    async def on_connect(self, websocket: WebSocket) -> None:
        self.count = 0
        offered = websocket.scope["subprotocols"]
        await websocket.accept(subprotocol="counter" if "counter" in offered else None)

    async def on_receive(self, websocket: WebSocket, data: Any) -> None:
        self.count += 1
        await websocket.send_json({"count": self.count, "echo": data})


async def scope_info(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json(
        {
            "path": websocket.url.path,
            "scheme": websocket.url.scheme,
            "query": dict(websocket.query_params),
            "room": websocket.path_params["room"],
            "origin": websocket.headers.get("origin"),
            "client": websocket.client.host if websocket.client else None,
        }
    )
    await websocket.receive()


async def reject(websocket: WebSocket) -> None:
    await websocket.close(code=1008)


async def deny(websocket: WebSocket) -> None:
    response = PlainTextResponse("teapots only\n", 418, headers={"x-denied": "starlette"})
    await websocket.send_denial_response(response)


async def crash(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.receive_text()
    raise RuntimeError("starlette-ws-crash-after-accept")


app = Starlette(
    routes=[
        Route("/", index),
        Route("/observed/{key}", observed),
        WebSocketRoute("/echo", echo),
        WebSocketRoute("/counter", Counter),
        WebSocketRoute("/rooms/{room}", scope_info),
        WebSocketRoute("/reject", reject),
        WebSocketRoute("/deny", deny),
        WebSocketRoute("/crash", crash),
    ]
)
