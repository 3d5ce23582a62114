"""Apps behind the compression middleware (tests/middleware/test_mw_compression.py).

``app`` (Covet) and ``starlette_app`` answer the same kinds of bodies. ``/gated/{key}``
streams ``n`` chunks and, before each chunk after the first, waits until
``/release/{key}`` is requested: a test decodes chunk i before chunk i+1 exists, which
proves each chunk was flushed on its own. Waits have a deadline, so a broken server
fails the test instead of hanging a worker.
"""

import asyncio
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import FileResponse
from starlette.responses import PlainTextResponse as StarlettePlainText
from starlette.responses import Response as StarletteResponse
from starlette.responses import StreamingResponse as StarletteStreaming
from starlette.routing import Route

from covetd import Covet, PlainTextResponse, Request, Response, StreamingResponse

GATE_DEADLINE = 10.0
SENTENCE = "The quick brown fox jumps over the lazy dog; covetd compresses it. "
FILE = Path(__file__)  # a text file Starlette serves, with Range support


def text(size: int) -> str:
    """``size`` characters (ASCII) of compressible text."""
    return (SENTENCE * (size // len(SENTENCE) + 1))[:size]


def chunk(index: int) -> str:
    return f"chunk {index}: " + SENTENCE * 8 + "\n"


GATES: dict[str, asyncio.Queue[None]] = {}


def gate(key: str) -> asyncio.Queue[None]:
    return GATES.setdefault(key, asyncio.Queue())


async def gated_chunks(key: str, count: int) -> AsyncIterator[str]:
    for index in range(count):
        if index:
            await asyncio.wait_for(gate(key).get(), GATE_DEADLINE)
        yield chunk(index)


async def chunks(count: int) -> AsyncIterator[str]:
    for index in range(count):
        yield chunk(index)


# -- Covet ------------------------------------------------------------------------------

app = Covet()


@app.get("/text")
async def plain(request: Request) -> Response:
    return PlainTextResponse(text(int(request.query_params.get("size", "2000"))))


@app.get("/typed")
async def typed(request: Request) -> Response:
    size = int(request.query_params.get("size", "2000"))
    return Response(text(size), media_type=request.query_params["type"])


@app.get("/headers")
async def with_headers(request: Request) -> Response:
    """A text body carrying the query's ``name=value`` pairs as response headers."""
    headers = {name: value for name, value in request.query_params.multi_items()}
    return Response(text(2000), headers=headers, media_type="text/plain")


@app.get("/encoded")
async def encoded() -> Response:
    body = zlib.compress(text(2000).encode(), 9, 31)
    return Response(body, headers={"Content-Encoding": "gzip"}, media_type="text/plain")


@app.get("/partial")
async def partial() -> Response:
    body = text(3000)[1000:2000]
    headers = {"Content-Range": "bytes 1000-1999/3000"}
    return Response(body, status_code=206, headers=headers, media_type="text/plain")


@app.get("/no-content")
async def no_content() -> Response:
    return Response(status_code=204)


SHARED = PlainTextResponse(text(2000))


@app.get("/shared")
async def shared() -> Response:
    """The same Response object every time, as an app may keep constant answers."""
    return SHARED


@app.get("/stream")
async def stream(request: Request) -> Response:
    return StreamingResponse(
        chunks(int(request.query_params.get("n", "3"))), media_type="text/plain"
    )


@app.get("/stream-sized")
async def stream_sized(request: Request) -> Response:
    body = text(int(request.query_params["size"])).encode()

    async def halves() -> AsyncIterator[bytes]:
        yield body[: len(body) // 2]
        yield body[len(body) // 2 :]

    headers = {"Content-Length": str(len(body))}
    return StreamingResponse(halves(), headers=headers, media_type="text/plain")


@app.get("/gated/{key}")
async def gated(request: Request, key: str) -> Response:
    count = int(request.query_params.get("n", "3"))
    return StreamingResponse(gated_chunks(key, count), media_type="text/plain")


@app.get("/release/{key}")
async def release(key: str) -> str:
    gate(key).put_nowait(None)
    return "released"


# -- Starlette --------------------------------------------------------------------------


async def s_text(request: StarletteRequest) -> StarletteResponse:
    return StarlettePlainText(text(int(request.query_params.get("size", "2000"))))


async def s_stream(request: StarletteRequest) -> StarletteResponse:
    count = int(request.query_params.get("n", "3"))
    return StarletteStreaming(chunks(count), media_type="text/plain")


async def s_gated(request: StarletteRequest) -> StarletteResponse:
    count = int(request.query_params.get("n", "3"))
    return StarletteStreaming(
        gated_chunks(request.path_params["key"], count), media_type="text/plain"
    )


async def s_release(request: StarletteRequest) -> StarletteResponse:
    gate(request.path_params["key"]).put_nowait(None)
    return StarlettePlainText("released")


async def s_file(request: StarletteRequest) -> StarletteResponse:
    return FileResponse(FILE, media_type="text/plain")


starlette_app = Starlette(
    routes=[
        Route("/text", s_text),
        Route("/stream", s_stream),
        Route("/gated/{key}", s_gated),
        Route("/release/{key}", s_release),
        Route("/file", s_file),
    ]
)
