"""A Covet app for the engine's integration tests.

Every endpoint makes what the engine did observable from another connection:
side-effect counters (did a request run at all?), handler states (did the handler see
the disconnect?), and production counters of streaming responses (did the producer
stop, or stay bounded, while the client stalled?). Handlers that wait poll with a
deadline so that a broken engine fails a test instead of hanging a worker.
"""

import asyncio
import time
from collections import Counter
from typing import Any

from covetd import Covet, Request, Response, StreamingResponse

app = Covet()

COUNTS: Counter[str] = Counter()
STATES: dict[str, Any] = {}
HANDLER_DEADLINE = 10.0


@app.get("/")
async def index() -> str:
    return "hello"


# -- side effects ---------------------------------------------------------------------


@app.route("/count/{key}", methods=["GET", "POST"])
async def count(key: str) -> str:
    """Counts the requests that reached a handler (the body, if any, is not read)."""
    COUNTS[key] += 1
    return str(COUNTS[key])


@app.get("/counts/{key}")
async def counts(key: str) -> dict[str, int]:
    return {"count": COUNTS[key]}


@app.get("/state/{key}")
async def state(key: str) -> dict[str, Any]:
    return {"state": STATES.get(key)}


# -- bodies and heads -----------------------------------------------------------------


@app.route("/echo", methods=["POST", "PUT", "GET"])
async def echo(request: Request) -> bytes:
    return await request.body()


@app.route("/inspect", methods=["GET", "POST"])
async def inspect(request: Request) -> dict[str, Any]:
    """What the handler sees; the body is read before the headers are looked at."""
    body = await request.body()
    return {
        "method": request.method,
        "path": request.path,
        "raw_path": request.raw_path.decode("latin-1"),
        "query_string": request.query_string.decode("latin-1"),
        "http_version": request.http_version,
        "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in request.raw_headers],
        "url": str(request.url),
        "body": body.decode("latin-1"),
    }


@app.get("/close-me")
async def close_me() -> Response:
    """The app asks for the connection to close after this response."""
    return Response(b"bye", headers={"Connection": "close"}, media_type="text/plain")


@app.post("/ignore-body")
async def ignore_body() -> str:
    return "ignored"


@app.get("/seq/{i:int}")
async def seq(request: Request, i: int) -> str:
    """Answers its own index, after an optional pause (``?s=seconds``)."""
    pause = float(request.query_params.get("s", "0"))
    if pause:
        await asyncio.sleep(pause)
    return f"seq {i}"


@app.get("/sleep")
async def sleep(request: Request) -> str:
    await asyncio.sleep(float(request.query_params.get("s", "0.5")))
    return "slept"


# -- streaming ------------------------------------------------------------------------


@app.get("/stream")
async def stream(request: Request) -> StreamingResponse:
    count = int(request.query_params.get("n", "3"))

    async def parts():
        for i in range(count):
            yield f"part {i}\n"

    return StreamingResponse(parts(), media_type="text/plain")


@app.get("/stream-sized")
async def stream_sized() -> StreamingResponse:
    """A streaming response whose length the app knows (so it is not chunked)."""

    async def parts():
        yield b"0123456789"
        yield b"abcdefghij"

    return StreamingResponse(parts(), media_type="text/plain", headers={"Content-Length": "20"})


@app.get("/ticker/{key}")
async def ticker(key: str) -> StreamingResponse:
    """Streams a line every 10 ms until the engine stops pulling (or the deadline)."""
    STATES[key] = "streaming"

    async def ticks():
        deadline = time.monotonic() + HANDLER_DEADLINE
        try:
            while time.monotonic() < deadline:
                COUNTS[key] += 1
                yield f"tick {COUNTS[key]}\n"
                await asyncio.sleep(0.01)
            STATES[key] = "deadline"
        finally:
            if STATES[key] == "streaming":
                STATES[key] = "stopped"
            STATES[key + ":final"] = COUNTS[key]

    return StreamingResponse(ticks(), media_type="text/plain")


@app.get("/flood/{key}")
async def flood(request: Request, key: str) -> StreamingResponse:
    """``chunks`` pieces of ``size`` bytes, each filled with its index mod 256, as fast
    as the engine pulls them; ``/flood-state/{key}`` tells how far it got."""
    chunks = int(request.query_params.get("chunks", "512"))
    size = int(request.query_params.get("size", "65536"))
    progress = STATES[key] = {"produced": 0, "last": time.monotonic(), "finished": False}

    async def pieces():
        for i in range(chunks):
            progress["produced"] = i + 1
            progress["last"] = time.monotonic()
            yield bytes([i % 256]) * size
        progress["finished"] = True

    return StreamingResponse(pieces(), media_type="application/octet-stream")


@app.get("/flood-state/{key}")
async def flood_state(key: str) -> dict[str, Any]:
    progress = STATES.get(key) or {"produced": 0, "last": time.monotonic(), "finished": False}
    return {
        "produced": progress["produced"],
        "idle": time.monotonic() - progress["last"],
        "finished": progress["finished"],
    }


# -- disconnects ----------------------------------------------------------------------


@app.get("/hold/{key}")
async def hold(request: Request, key: str) -> str:
    """Waits until ``request.is_disconnected()`` turns true, and records that."""
    STATES[key] = "waiting"
    deadline = time.monotonic() + HANDLER_DEADLINE
    while time.monotonic() < deadline:
        if await request.is_disconnected():
            STATES[key] = "disconnected"
            return "gone"
        await asyncio.sleep(0.01)
    STATES[key] = "never noticed"
    return "still here"


@app.post("/hold-body/{key}")
async def hold_body(request: Request, key: str) -> str:
    """Reads the body; records how reading it ended."""
    STATES[key] = "reading"
    try:
        body = await request.body()
    except Exception as exc:
        STATES[key] = type(exc).__name__
        raise
    STATES[key] = f"complete {len(body)}"
    return "read"


@app.post("/gate/{key}")
async def gate(request: Request, key: str) -> str:
    """Reads nothing until ``/open/{key}``; then reads the whole body and answers its
    size, or with ``?read=0`` answers "ignored" without reading any of it."""
    STATES[key] = "gated"
    deadline = time.monotonic() + HANDLER_DEADLINE
    while STATES[key] != "open" and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    if request.query_params.get("read") == "0":
        return "ignored"
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return str(size)


@app.get("/open/{key}")
async def open_gate(key: str) -> str:
    STATES[key] = "open"
    return "open"


# -- failures -------------------------------------------------------------------------


@app.get("/boom")
async def boom() -> str:
    raise RuntimeError("secret internal detail")


@app.get("/boom-stream")
async def boom_stream() -> StreamingResponse:
    async def parts():
        yield "first part\n"
        raise RuntimeError("secret streaming detail")

    return StreamingResponse(parts(), media_type="text/plain")


# -- cancellation ---------------------------------------------------------------------


@app.get("/timeout/{seconds:float}")
async def expiring(seconds: float) -> str:
    """``asyncio.timeout`` around a wait that outlives it: the handler must get its
    TimeoutError (the cancellation aimed at its task reaches it, and only it)."""
    try:
        async with asyncio.timeout(seconds):
            await asyncio.sleep(HANDLER_DEADLINE)
    except TimeoutError:
        return "timed out"
    return "slept"
