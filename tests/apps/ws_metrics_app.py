"""A WebSocket echo for the metrics tests."""

from covetd import Covet, WebSocket

app = Covet()


@app.websocket("/echo")
async def echo(ws: WebSocket) -> None:
    await ws.accept()
    async for message in ws:
        await ws.send_text(message if isinstance(message, str) else message.hex())
