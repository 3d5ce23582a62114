"""Covet apps whose startup fails: a startup hook, or the lifespan context manager."""

import contextlib
from collections.abc import AsyncIterator

from covetd import Covet

app = Covet()


@app.on_startup
async def connect() -> None:
    raise RuntimeError("cannot reach the database at db.internal:5432")


@app.get("/")
async def index() -> str:
    return "never served"


@contextlib.asynccontextmanager
async def failing_lifespan(app: Covet) -> AsyncIterator[None]:
    raise ConnectionError("the cache at cache.internal:6379 refused the connection")
    yield


lifespan_app = Covet(lifespan=failing_lifespan)
