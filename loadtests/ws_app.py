"""The Covet app of the WebSocket benchmark (``loadtests/bench_websocket.py``).

``/echo`` sends every message back. ``/bcast/member`` joins the room ``bench``, says
``ok`` (so the client knows it is a member) and reads until the client goes;
``/bcast/publish`` broadcasts every message it receives to the room (``app.hub``).
Its ASGI twin is ``loadtests/ws_asgi.py``.
"""

from covetd import Covet, WebSocket

app = Covet()


@app.websocket("/echo")
async def echo(ws: WebSocket) -> None:
    await ws.accept()
    async for message in ws:
        if isinstance(message, str):
            await ws.send_text(message)
        else:
            await ws.send_bytes(message)


@app.websocket("/bcast/member")
async def member(ws: WebSocket) -> None:
    await ws.accept()
    await ws.join("bench")
    await ws.send_text("ok")
    async for _ in ws:
        pass


@app.websocket("/bcast/publish")
async def publish(ws: WebSocket) -> None:
    await ws.accept()
    async for message in ws:
        await app.hub.broadcast("bench", message)
