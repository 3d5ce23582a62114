"""A Covet app with lifespan hooks and a streaming route, served by uvicorn in tests."""

import asyncio
from collections.abc import AsyncIterator

from eventlog import record

from covetd import Covet, Request, StreamingResponse

app = Covet()


@app.on_startup
async def startup() -> None:
    await asyncio.sleep(0)
    app.state.started = True
    record("startup")


@app.on_shutdown
def shutdown() -> None:
    record("shutdown")


@app.get("/started")
async def started() -> dict[str, bool]:
    return {"started": getattr(app.state, "started", False)}


@app.get("/stream")
async def stream(request: Request) -> StreamingResponse:
    count = int(request.query_params.get("n", "3"))

    async def parts() -> AsyncIterator[str]:
        for i in range(count):
            yield f"line {i}\n"

    return StreamingResponse(parts(), media_type="text/plain")


@app.get("/items/{id:int}")
async def item(request: Request, id: int) -> dict[str, object]:
    return {"id": id, "q": request.query_params.get("q")}


@app.post("/form")
async def form(request: Request) -> dict[str, object]:
    return {"fields": (await request.form()).multi_items()}


@app.get("/boom")
async def boom() -> None:
    raise RuntimeError("uvicorn secret")
