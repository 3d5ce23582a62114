"""A Covet app whose lifespan is observable: every hook records an event.

``COVETD_TEST_STARTUP_DELAY`` (seconds) makes startup slow, so a test can send a request
while the worker is still starting.
"""

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

from eventlog import record

from covetd import Covet


@contextlib.asynccontextmanager
async def lifespan(app: Covet) -> AsyncIterator[dict[str, Any]]:
    record("lifespan-enter")
    yield {"resource": "pool"}
    record("lifespan-exit")


app = Covet(lifespan=lifespan)


@app.on_startup
def sync_startup() -> None:
    record("startup-sync")


@app.on_startup
async def slow_startup() -> None:
    await asyncio.sleep(float(os.environ.get("COVETD_TEST_STARTUP_DELAY", "0")))
    app.state.ready = True
    record("startup-async")


@app.on_shutdown
async def async_shutdown() -> None:
    record("shutdown-async")


@app.on_shutdown
def sync_shutdown() -> None:
    record("shutdown-sync")


@app.get("/")
async def index() -> dict[str, Any]:
    record("request")
    return {"ready": getattr(app.state, "ready", False), "resource": app.state.resource}


@app.get("/slow")
async def slow() -> str:
    record("slow-started")
    await asyncio.sleep(0.5)
    record("slow-done")
    return "slow done"
