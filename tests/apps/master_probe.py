"""A Covet app for the master's integration tests (reload, recycling, scaling, upgrade).

Every response names the worker that produced it in an ``x-worker-pid`` header (what
``support.load.Load`` counts), so a test sees which processes serve, and when that
changes. ``/alloc`` grows the worker's resident memory and keeps it (for ``max_rss``);
``/sleep`` holds a request in flight.
"""

import asyncio
import os

from covetd import Covet, Request, Response

app = Covet()

HELD: list[bytes] = []  # memory /alloc keeps alive for the life of the worker
MIB = 1024 * 1024
MAX_SLEEP = 10.0


def answer(body: str) -> Response:
    return Response(body, headers={"x-worker-pid": str(os.getpid())}, media_type="text/plain")


@app.get("/")
async def index() -> Response:
    return answer("ok")


@app.get("/pid")
async def pid() -> Response:
    return answer(str(os.getpid()))


@app.get("/sleep")
async def sleep(request: Request) -> Response:
    await asyncio.sleep(min(MAX_SLEEP, float(request.query_params.get("s", "0.2"))))
    return answer("slept")


@app.get("/alloc")
async def alloc(request: Request) -> Response:
    """Allocate ``mb`` MiB, written to (so it is resident), and hold it."""
    HELD.append(b"\x01" * (int(request.query_params.get("mb", "1")) * MIB))
    return answer(str(os.getpid()))
