"""A Covet app exercising the engine: echo, streaming, slow handlers, errors."""

import asyncio

from covetd import Covet, Request, StreamingResponse

app = Covet()


@app.get("/")
async def index() -> str:
    return "hello"


@app.post("/echo")
async def echo(request: Request) -> bytes:
    return await request.body()


@app.post("/ignore-body")
async def ignore_body() -> str:
    return "ignored"


@app.get("/stream")
async def stream(request: Request) -> StreamingResponse:
    count = int(request.query_params.get("n", "3"))

    async def parts():
        for i in range(count):
            yield f"part {i}\n"

    return StreamingResponse(parts(), media_type="text/plain")


@app.get("/sleep")
async def sleep(request: Request) -> str:
    await asyncio.sleep(float(request.query_params.get("s", "0.5")))
    return "slept"


@app.get("/boom")
async def boom() -> str:
    raise RuntimeError("secret internal detail")
