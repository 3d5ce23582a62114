"""The peer of examples/techempower.py for loadtests/bench_techempower.py: the same
queries in Starlette + asyncpg, served by uvicorn, written the way Starlette users
(and TechEmpower's own Starlette entry) write it: an asyncpg pool made in the
lifespan, ``async with pool.acquire()`` around the queries.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        uvicorn --app-dir loadtests techempower_starlette:app --loop uvloop --http httptools
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from html import escape
from operator import itemgetter
from random import randint
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse
from starlette.routing import Route

DSN = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
POOL_MIN = int(os.environ.get("POOL_MIN_SIZE", "4"))
POOL_MAX = int(os.environ.get("POOL_MAX_SIZE", "16"))

READ_ROW = 'SELECT "randomnumber" FROM "world" WHERE "id" = $1'
FORTUNES = 'SELECT "id", "message" FROM "fortune"'
ADDITIONAL_FORTUNE = (0, "Additional fortune added at request time.")
FORTUNES_HEAD = (
    "<!DOCTYPE html><html><head><title>Fortunes</title></head><body>"
    "<table><tr><th>id</th><th>message</th></tr>"
)
FORTUNES_TAIL = "</table></body></html>"

# POOL_RESET=0: give connections back without asyncpg's reset round trip (what
# covetd's pool helpers do), to compare servers without that difference.
POOL_RESET = os.environ.get("POOL_RESET", "1") != "0"

pool: Any = None


async def _no_reset(connection: Any) -> None:
    pass


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    global pool
    reset = None if POOL_RESET else _no_reset
    pool = await asyncpg.create_pool(DSN, min_size=POOL_MIN, max_size=POOL_MAX, reset=reset)
    yield
    await pool.close()


async def json(request: Request) -> JSONResponse:
    return JSONResponse({"message": "Hello, World!"})


async def plaintext(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Hello, World!")


async def single_query(request: Request) -> JSONResponse:
    world_id = randint(1, 10000)
    async with pool.acquire() as conn:
        number = await conn.fetchval(READ_ROW, world_id)
    return JSONResponse({"id": world_id, "randomNumber": number})


async def fortunes(request: Request) -> HTMLResponse:
    async with pool.acquire() as conn:
        rows = await conn.fetch(FORTUNES)
    rows.append(ADDITIONAL_FORTUNE)
    rows.sort(key=itemgetter(1))
    cells = "".join([f"<tr><td>{id_}</td><td>{escape(message)}</td></tr>" for id_, message in rows])
    return HTMLResponse(FORTUNES_HEAD + cells + FORTUNES_TAIL)


app = Starlette(
    routes=[
        Route("/json", json),
        Route("/plaintext", plaintext),
        Route("/db", single_query),
        Route("/fortunes", fortunes),
    ],
    lifespan=lifespan,
)
