"""A Starlette application for tests/integration/test_asgi.py (and a failing one)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from eventlog import record
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    record("startup")
    yield {"greeting": "hello from starlette lifespan"}
    record("shutdown")


async def index(request: Request) -> Response:
    return PlainTextResponse("starlette says hi")


async def item(request: Request) -> Response:
    return JSONResponse({"id": request.path_params["id"], "q": request.query_params.get("q")})


async def echo(request: Request) -> Response:
    pieces = []
    async for chunk in request.stream():
        if chunk:
            pieces.append(chunk.decode())
            record(f"piece:{chunk.decode()}")
    return JSONResponse({"body": "".join(pieces), "pieces": pieces})


async def state(request: Request) -> Response:
    return JSONResponse({"greeting": request.state.greeting})


async def stream(request: Request) -> Response:
    async def parts() -> AsyncIterator[str]:
        for i in range(3):
            yield f"chunk {i}\n"

    return StreamingResponse(parts(), media_type="text/plain")


async def stream_forever(request: Request) -> Response:
    async def ticks() -> AsyncIterator[bytes]:
        record("streaming")
        try:
            while True:
                yield b"tick\n"
                await asyncio.sleep(0.01)
        finally:
            record("generator-closed")

    return StreamingResponse(ticks(), media_type="text/plain")


async def wait_disconnect(request: Request) -> Response:
    async def body() -> AsyncIterator[bytes]:
        yield b"waiting\n"
        record("waiting")
        while not await request.is_disconnected():
            await asyncio.sleep(0.01)
        record("disconnected")

    return StreamingResponse(body())


async def bad_header(request: Request) -> Response:
    return PlainTextResponse("should not be sent", headers={"X-Evil": "a\r\nInjected: yes"})


async def boom(request: Request) -> Response:
    raise RuntimeError("starlette secret")


app = Starlette(
    routes=[
        Route("/", index),
        Route("/items/{id:int}", item),
        Route("/echo", echo, methods=["POST"]),
        Route("/state", state),
        Route("/stream", stream),
        Route("/stream-forever", stream_forever),
        Route("/wait-disconnect", wait_disconnect),
        Route("/bad-header", bad_header),
        Route("/boom", boom),
    ],
    lifespan=lifespan,
)


@contextlib.asynccontextmanager
async def failing_lifespan(app: Starlette) -> AsyncIterator[None]:
    raise RuntimeError("starlette startup failed: settings.DATABASE_URL is not set")
    yield


failing_app = Starlette(routes=[Route("/", index)], lifespan=failing_lifespan)
