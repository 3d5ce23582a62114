"""A Covet app for the metrics tests (``tests/integration/metrics/``).

Every response names its worker (``x-worker-pid``). ``/items/{id:int}`` also counts
into two app-defined counters: one made with prometheus-client directly, one through
``covetd.metrics`` (both in multiprocess mode, set up by the master). ``/boom`` raises.

``METRICS_APP_GATE`` names a directory a test controls by creating files in it:

- startup: the first worker to start (it creates ``token``) waits for ``one``, every
  other worker for ``all`` (workers that stay "starting" as long as a test wants);
- ``/hold`` creates ``held`` and answers once ``release`` exists (a request in flight).
"""

import asyncio
import os
from pathlib import Path

import prometheus_client

from covetd import Covet, Response
from covetd.metrics import Counter

app = Covet()

ITEMS_DIRECT = prometheus_client.Counter(
    "metricsapp_items_direct", "Items served (prometheus_client.Counter).", ["kind"]
)
ITEMS_COVETD = Counter("metricsapp_items_covetd", "Items served (covetd.metrics.Counter).")


def answer(body: str) -> Response:
    headers = {"x-worker-pid": str(os.getpid())}
    return Response(body, headers=headers, media_type="text/plain")


GATE = Path(os.environ.get("METRICS_APP_GATE", "/nonexistent"))
POLL = 0.01


async def wait_for_file(path: Path) -> None:
    while not path.exists():
        await asyncio.sleep(POLL)


@app.on_startup
async def wait_for_gate() -> None:
    if "METRICS_APP_GATE" not in os.environ:
        return
    try:
        os.close(os.open(GATE / "token", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        await wait_for_file(GATE / "all")
    else:
        await wait_for_file(GATE / "one")


@app.get("/hold")
async def hold() -> Response:
    (GATE / "held").touch()
    await wait_for_file(GATE / "release")
    return answer("released")


@app.get("/items/{id:int}")
async def item(id: int) -> Response:
    ITEMS_DIRECT.labels(kind="odd" if id % 2 else "even").inc()
    ITEMS_COVETD.inc()
    return answer(str(id))


@app.get("/hello")
async def hello() -> Response:
    return answer("hello")


@app.get("/boom")
async def boom() -> Response:
    raise RuntimeError("metrics app exploded")
