"""The TechEmpower Framework Benchmarks test types on covetd, by their published rules.

    psql postgresql://postgres@127.0.0.1:5432/test -f examples/techempower.sql
    covetd -c config/techempower.yaml

- ``/json``       ``{"message": "Hello, World!"}``, serialised per request
- ``/plaintext``  ``Hello, World!`` as text/plain
- ``/db``         one random ``World`` row (id 1..10000) as ``{"id", "randomNumber"}``
- ``/queries?queries=N``  N random rows, one query each (N: 1..500; missing, not an
  integer or below 1 -> 1; above 500 -> 500)
- ``/fortunes``   every ``Fortune`` row plus one added at request time, sorted by
  message, as an HTML table (escaped), text/html; charset=utf-8
- ``/updates?queries=N``  N random rows, each read by its own query, given a new
  random number, written back in one batched UPDATE; answers the updated rows

The pool is covetd's (``database.default`` in the config). Every statement has a
fixed text, so asyncpg prepares it once per connection and reuses it (statement
cache); ``/db`` and ``/fortunes`` use the pool's one-statement helpers, which skip
the session reset that lending a connection out needs.
"""

from __future__ import annotations

from html import escape
from operator import itemgetter
from random import randint, sample
from typing import Any

from covetd import Covet, HTMLResponse, Request
from covetd.db import Pool

READ_ROW = 'SELECT "randomnumber" FROM "world" WHERE "id" = $1'
# One statement for any N (a fixed text, prepared once): TFB allows batched updates.
WRITE_ROWS = (
    'UPDATE "world" SET "randomnumber" = "new"."number"'
    ' FROM unnest($1::int[], $2::int[]) AS "new"("id", "number")'
    ' WHERE "world"."id" = "new"."id"'
)
FORTUNES = 'SELECT "id", "message" FROM "fortune"'
ADDITIONAL_FORTUNE = (0, "Additional fortune added at request time.")
FORTUNES_HEAD = (
    "<!DOCTYPE html><html><head><title>Fortunes</title></head><body>"
    "<table><tr><th>id</th><th>message</th></tr>"
)
FORTUNES_TAIL = "</table></body></html>"
ROWS = 10000

app = Covet()
db: Pool


@app.on_startup
def take_the_pool() -> None:
    global db
    db = app.db


def query_count(request: Request) -> int:
    """The ``queries`` parameter by the rules: 1..500, anything else clamped or 1."""
    try:
        count = int(request.query_params.get("queries") or "1")
    except ValueError:
        return 1
    return 1 if count < 1 else 500 if count > 500 else count


@app.get("/json")
async def json() -> dict[str, str]:
    return {"message": "Hello, World!"}


@app.get("/plaintext")
async def plaintext() -> str:
    return "Hello, World!"


@app.get("/db")
async def single_query() -> dict[str, int]:
    world_id = randint(1, ROWS)
    return {"id": world_id, "randomNumber": await db.fetchval(READ_ROW, world_id)}


@app.get("/queries")
async def queries(request: Request) -> list[dict[str, int]]:
    ids = [randint(1, ROWS) for _ in range(query_count(request))]
    async with db.acquire() as conn:
        fetch = conn.fetchval
        return [{"id": i, "randomNumber": await fetch(READ_ROW, i)} for i in ids]


@app.get("/fortunes")
async def fortunes() -> HTMLResponse:
    rows: list[Any] = await db.fetch(FORTUNES)
    rows.append(ADDITIONAL_FORTUNE)
    rows.sort(key=itemgetter(1))
    cells = "".join([f"<tr><td>{id_}</td><td>{escape(message)}</td></tr>" for id_, message in rows])
    return HTMLResponse(FORTUNES_HEAD + cells + FORTUNES_TAIL)


@app.get("/updates")
async def updates(request: Request) -> list[dict[str, int]]:
    # Distinct ids in ascending order: the batch locks rows in one order in every
    # request (no deadlocks between concurrent updates) and no row is written twice.
    ids = sorted(sample(range(1, ROWS + 1), query_count(request)))
    numbers = []
    async with db.acquire() as conn:
        for world_id in ids:
            current = await conn.fetchval(READ_ROW, world_id)
            number = randint(1, ROWS)
            while number == current:  # a new number, never the same one
                number = randint(1, ROWS)
            numbers.append(number)
        await conn.execute(WRITE_ROWS, ids, numbers)
    return [{"id": world_id, "randomNumber": n} for world_id, n in zip(ids, numbers, strict=True)]
