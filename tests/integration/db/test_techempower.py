"""examples/techempower.py against the TechEmpower Framework Benchmarks rules (issue 6):
the six test types, the ``queries`` parameter's edge cases, the exact fortunes page
(escaping, the UTF-8 fortune, the added fortune, the order), updates persisted.

The tables come from examples/techempower.sql (idempotent), loaded into the test
database before covetd starts.
"""

from __future__ import annotations

import html.parser
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import uvloop
from support.process import REPO, Covetd
from support.rawhttp import RawConnection, RawResponse

SQL = REPO / "examples" / "techempower.sql"

# The page, written out by hand (not built by the code under test).
FORTUNES_PAGE = (
    "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
    "<tr><th>id</th><th>message</th></tr>"
    "<tr><td>11</td><td>&lt;script&gt;alert(&quot;This should not be displayed in a browser "
    "alert box.&quot;);&lt;/script&gt;</td></tr>"
    "<tr><td>4</td><td>A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1</td></tr>"
    "<tr><td>5</td><td>A computer program does what you tell it to do, not what you want it "
    "to do.</td></tr>"
    "<tr><td>2</td><td>A computer scientist is someone who fixes things that aren&#x27;t "
    "broken.</td></tr>"
    "<tr><td>8</td><td>A list is only as strong as its weakest link. — Donald Knuth</td></tr>"
    "<tr><td>0</td><td>Additional fortune added at request time.</td></tr>"
    "<tr><td>3</td><td>After enough decimal places, nobody gives a damn.</td></tr>"
    "<tr><td>7</td><td>Any program that runs right is obsolete.</td></tr>"
    "<tr><td>10</td><td>Computers make very fast, very accurate mistakes.</td></tr>"
    "<tr><td>6</td><td>Emacs is a nice operating system, but I prefer UNIX. — Tom "
    "Christaensen</td></tr>"
    "<tr><td>9</td><td>Feature: A bug with seniority.</td></tr>"
    "<tr><td>1</td><td>fortune: No such file or directory</td></tr>"
    "<tr><td>12</td><td>フレームワークのベンチマーク</td></tr>"
    "</table></body></html>"
)


def on_db(dsn: str, work: Callable[[asyncpg.Connection], Any]) -> Any:
    async def run() -> Any:
        conn = await asyncpg.connect(dsn)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return uvloop.run(run())


def run_script(dsn: str) -> None:
    on_db(dsn, lambda conn: conn.execute(SQL.read_text()))


def rows(dsn: str, query: str) -> list[Any]:
    return list(on_db(dsn, lambda conn: conn.fetch(query)))


def world(dsn: str) -> dict[int, int]:
    return dict(rows(dsn, 'SELECT "id", "randomnumber" FROM "world"'))


@pytest.fixture(scope="module")
def server(module_covetd: Callable[..., Covetd], dsn: str) -> Covetd:
    run_script(dsn)
    config = {"database": {"default": {"dsn": dsn, "min_size": 2, "max_size": 4}}}
    return module_covetd("examples.techempower:app", config, app_dir=Path(REPO))


def get(server: Covetd, path: str) -> RawResponse:
    with RawConnection("127.0.0.1", server.port, 10) as conn:
        conn.send(f"GET {path} HTTP/1.1\r\nHost: tfb\r\n\r\n".encode())
        return conn.read_response()


def get_json(server: Covetd, path: str) -> Any:
    response = get(server, path)
    assert response.status == 200, response.body
    assert response.header("content-type") == "application/json"
    return json.loads(response.body)


def test_the_sql_script_is_idempotent_and_fills_the_tables(server: Covetd, dsn: str) -> None:
    before = world(dsn)
    run_script(dsn)  # a second run fails on nothing and changes nothing
    assert world(dsn) == before
    assert sorted(before) == list(range(1, 10001))
    assert all(1 <= number <= 10000 for number in before.values())
    assert rows(dsn, 'SELECT count(*) FROM "fortune"')[0][0] == 12


def test_json(server: Covetd) -> None:
    response = get(server, "/json")
    assert (response.status, response.body) == (200, b'{"message":"Hello, World!"}')
    assert response.header("content-type") == "application/json"
    assert response.header("server") and response.header("date")


def test_plaintext(server: Covetd) -> None:
    response = get(server, "/plaintext")
    assert (response.status, response.body) == (200, b"Hello, World!")
    assert response.header("content-type") == "text/plain; charset=utf-8"


def test_db_answers_one_random_row_as_stored(server: Covetd, dsn: str) -> None:
    answers = [get_json(server, "/db") for _ in range(20)]
    stored = world(dsn)
    for answer in answers:
        assert set(answer) == {"id", "randomNumber"}
        assert 1 <= answer["id"] <= 10000
        assert answer["randomNumber"] == stored[answer["id"]]
    assert len({answer["id"] for answer in answers}) > 1  # random, not one fixed row


@pytest.mark.parametrize(
    ("query", "count"),
    [
        ("", 1),
        ("?queries=", 1),
        ("?queries=0", 1),
        ("?queries=-1", 1),
        ("?queries=foo", 1),
        ("?queries=2.5", 1),
        ("?queries=1", 1),
        ("?queries=20", 20),
        ("?queries=500", 500),
        ("?queries=501", 500),
        ("?queries=100000", 500),
    ],
)
def test_queries_count_rules(server: Covetd, dsn: str, query: str, count: int) -> None:
    answer = get_json(server, f"/queries{query}")
    assert isinstance(answer, list) and len(answer) == count
    stored = world(dsn)
    for row in answer:
        assert set(row) == {"id", "randomNumber"}
        assert row["randomNumber"] == stored[row["id"]]


class _Table(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_fortunes_page_exactly(server: Covetd, dsn: str) -> None:
    response = get(server, "/fortunes")
    assert response.status == 200
    assert response.header("content-type") == "text/html; charset=utf-8"
    assert response.body.decode("utf-8") == FORTUNES_PAGE
    table = _Table()
    table.feed(response.body.decode("utf-8"))
    header, *cells = table.rows
    assert header == ["id", "message"]
    stored = dict(rows(dsn, 'SELECT "id", "message" FROM "fortune"'))
    expected = {**stored, 0: "Additional fortune added at request time."}
    assert {int(i): message for i, message in cells} == expected  # unescaped = stored
    assert [message for _, message in cells] == sorted(expected.values())


@pytest.mark.parametrize(("query", "count"), [("", 1), ("?queries=foo", 1), ("?queries=0", 1)])
def test_updates_count_rules(server: Covetd, query: str, count: int) -> None:
    assert len(get_json(server, f"/updates{query}")) == count


@pytest.mark.parametrize("count", [20, 501])
def test_updates_persist_new_numbers(server: Covetd, dsn: str, count: int) -> None:
    before = world(dsn)
    answer = get_json(server, f"/updates?queries={count}")
    after = world(dsn)
    assert len(answer) == min(count, 500)
    ids = [row["id"] for row in answer]
    assert len(set(ids)) == len(ids)
    for row in answer:
        assert 1 <= row["randomNumber"] <= 10000
        assert after[row["id"]] == row["randomNumber"]  # persisted
        assert before[row["id"]] != row["randomNumber"]  # a new number
    changed = {i for i in after if after[i] != before[i]}
    assert changed == set(ids)  # and nothing else was touched
