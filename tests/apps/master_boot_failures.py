"""Apps that import fine but fail while starting up, each with a recognisable reason."""

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from covetd import Covet

startup_hook_app = Covet()


@startup_hook_app.on_startup
async def connect() -> None:
    raise RuntimeError("MASTER-BOOT-SENTINEL: cannot reach db.internal:5432")


@contextlib.asynccontextmanager
async def failing_lifespan(app: Covet) -> AsyncIterator[None]:
    raise ConnectionError("MASTER-BOOT-SENTINEL: cache.internal:6379 refused")
    yield


lifespan_app = Covet(lifespan=failing_lifespan)


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A raw ASGI app whose lifespan reports ``lifespan.startup.failed``."""
    if scope["type"] == "lifespan":
        await receive()
        await send(
            {"type": "lifespan.startup.failed", "message": "MASTER-BOOT-SENTINEL: no migrations"}
        )
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"never served"})
