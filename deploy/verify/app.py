"""The app ``deploy/verify/live.sh`` serves behind nginx: ``examples/chat.py`` (its
``/echo`` WebSocket and rooms) plus endpoints that say what covetd saw of the request
after the ``proxy_headers`` middleware, and a slow stream to check buffering.

    covetd -c deploy/nginx/covetd.yaml deploy.verify.app:app
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from covetd import Request, StreamingResponse, WebSocket
from examples.chat import app

__all__ = ["app"]


def _seen(request: Request) -> dict[str, object]:
    client = request.client
    return {
        "client": client.host if client is not None else None,
        "scheme": request.scheme,
        "host": request.headers.get("host"),
        "url": str(request.url),
    }


@app.get("/whoami")
async def whoami(request: Request) -> dict[str, object]:
    """The client, scheme and Host covetd believes (proxy_headers applied)."""
    return _seen(request)


@app.post("/upload")
async def upload(request: Request) -> dict[str, object]:
    """Reads the whole body: nginx's client_max_body_size and covetd's
    http.max_body_size should agree on what is too large."""
    return {"received": len(await request.body())}


@app.get("/stream")
async def stream(request: Request) -> StreamingResponse:
    """Three chunks 0.5 s apart; ``X-Accel-Buffering: no`` asks nginx not to buffer."""

    async def chunks() -> AsyncIterator[bytes]:
        for index in range(3):
            yield f"chunk {index}\n".encode()
            await asyncio.sleep(0.5)

    return StreamingResponse(chunks(), media_type="text/plain", headers={"x-accel-buffering": "no"})


@app.websocket("/whoami/ws")
async def whoami_ws(ws: WebSocket) -> None:
    """Sends what covetd saw of the upgrade request, then closes (1000)."""
    await ws.accept()
    seen = _seen(ws.request)
    await ws.send_json(seen)
    await ws.close()
