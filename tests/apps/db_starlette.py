"""A Starlette app on covetd-managed pools (lifespan state), for tests/integration/db/."""

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from covetd.db import DatabaseUnavailable, unavailable_handler


async def state_db(request: Request) -> Response:
    value = await request.state.db.fetchval("SELECT 40 + 2")
    return JSONResponse({"value": value, "pid": os.getpid()})


async def scope_db(request: Request) -> Response:
    pool = request.scope["state"]["db"]
    async with pool.transaction() as conn:
        name = await conn.fetchval("SHOW application_name")
    return JSONResponse({"application_name": name})


async def databases(request: Request) -> Response:
    names = sorted(request.state.databases)
    return JSONResponse(
        {"pools": names, "same": request.state.databases["default"] is request.state.db}
    )


async def hold(request: Request) -> Response:
    await request.state.db.execute("SELECT pg_sleep($1)", float(request.query_params["seconds"]))
    return JSONResponse({"held": True})


app = Starlette(
    routes=[
        Route("/state-db", state_db),
        Route("/scope-db", scope_db),
        Route("/databases", databases),
        Route("/hold", hold),
    ],
    exception_handlers={DatabaseUnavailable: unavailable_handler},
)
