"""A Covet app on covetd-managed pools, for tests/integration/db/."""

import os

from covetd import Covet, Request

app = Covet()


@app.get("/pid")
async def pid() -> dict[str, int]:
    return {"pid": os.getpid()}


@app.get("/value")
async def value(request: Request) -> dict[str, int]:
    return {"value": await request.app.db.fetchval("SELECT 1"), "pid": os.getpid()}


@app.get("/app-name")
async def app_name(request: Request) -> dict[str, object]:
    name = await request.app.db.fetchval("SELECT current_setting('application_name')")
    return {"application_name": name, "pid": os.getpid()}


@app.get("/hold")
async def hold(request: Request) -> dict[str, object]:
    """Keep a connection busy for ``seconds`` (the query runs on the server)."""
    seconds = float(request.query_params.get("seconds", "1"))
    await request.app.db.execute("SELECT pg_sleep($1)", seconds)
    return {"held": seconds, "pid": os.getpid()}


@app.get("/replica")
async def replica(request: Request) -> dict[str, object]:
    pool = request.app.databases["replica"]
    async with pool.acquire() as conn:
        name = await conn.fetchval("SELECT current_setting('application_name')")
    return {"application_name": name}


@app.get("/health")
async def health(request: Request) -> dict[str, object]:
    return {"pools": request.app.databases.health(), "pid": os.getpid()}
