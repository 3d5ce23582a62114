"""Apps behind the access log middleware (tests/middleware/test_mw_access_log.py).

``app`` (Covet) and ``starlette_app`` answer plain and streamed bodies of known sizes;
``Explode`` is a middleware that raises for ``/explode``, past any app, so the engine
answers 500 itself.
"""

import asyncio
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import PlainTextResponse as StarlettePlainText
from starlette.responses import Response as StarletteResponse
from starlette.responses import StreamingResponse as StarletteStreaming
from starlette.routing import Route

from covetd import Covet, Request, Response, StreamingResponse
from covetd.middleware import Middleware


def part(index: int) -> str:
    return f"part {index} " + "x" * index + "\n"


def parts_size(count: int) -> int:
    return sum(len(part(index).encode()) for index in range(count))


async def parts(count: int) -> AsyncIterator[str]:
    for index in range(count):
        yield part(index)


app = Covet()


@app.get("/hello")
async def hello() -> str:
    return "hello"


@app.get("/sleep")
async def sleep(request: Request) -> str:
    await asyncio.sleep(float(request.query_params["s"]))
    return "slept"


@app.get("/stream")
async def stream(request: Request) -> Response:
    return StreamingResponse(parts(int(request.query_params["n"])), media_type="text/plain")


@app.get("/cookie/{name}")
async def cookie(name: str) -> Response:
    response = Response(f"hi {name}", headers={"X-Custom": "custom-value"}, media_type="text/plain")
    response.set_cookie("session", "server-secret")
    return response


class Explode(Middleware):
    async def __call__(self, request: Request) -> Response:
        if request.path == "/explode":
            raise RuntimeError("exploded on purpose")
        return await self.app(request)


async def s_hello(request: StarletteRequest) -> StarletteResponse:
    return StarlettePlainText("hello from starlette")


async def s_stream(request: StarletteRequest) -> StarletteResponse:
    return StarletteStreaming(parts(int(request.query_params["n"])), media_type="text/plain")


starlette_app = Starlette(routes=[Route("/hello", s_hello), Route("/stream", s_stream)])
