"""``date`` (RFC 9110 §6.6.1, IMF-fixdate) and ``server`` on every response, including
the engine's own error answers; ``http.server_header`` sets or (null) removes Server."""

from __future__ import annotations

import re
import time
from email.utils import parsedate_to_datetime

from support.probe import fetch, request
from support.process import wait_for

IMF_FIXDATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r" \d{4} \d\d:\d\d:\d\d GMT"
)


def date_of(server) -> str:
    date = fetch(server, request("/")).header("date")
    assert date is not None
    return date


def test_date_is_present_correct_and_in_imf_fixdate(covetd) -> None:
    server = covetd("engine_probe:app")
    date = date_of(server)
    assert IMF_FIXDATE.fullmatch(date), date
    assert abs(parsedate_to_datetime(date).timestamp() - time.time()) < 5


def test_date_moves_with_the_clock(covetd) -> None:
    server = covetd("engine_probe:app")
    first = date_of(server)
    later = wait_for(lambda: (d := date_of(server)) != first and d, 5.0, 0.1, "a new Date")
    assert parsedate_to_datetime(later) > parsedate_to_datetime(first)


def test_error_answers_carry_date_and_server(covetd) -> None:
    server = covetd("engine_probe:app")
    response = fetch(server, b"GET / HTTP/1.1\r\n\r\n")  # no Host: the engine answers 400
    assert response.status == 400
    assert IMF_FIXDATE.fullmatch(response.header("date") or ""), response.headers
    assert response.header("server") == "covetd"


def test_default_server_header(covetd) -> None:
    server = covetd("engine_probe:app")
    response = fetch(server, request("/"))
    assert [v for n, v in response.headers if n == "server"] == ["covetd"]


def test_server_header_is_configurable(covetd) -> None:
    server = covetd("engine_probe:app", {"http": {"server_header": "probe/1.0 (test)"}})
    response = fetch(server, request("/"))
    assert [v for n, v in response.headers if n == "server"] == ["probe/1.0 (test)"]


def test_null_server_header_removes_it(covetd) -> None:
    server = covetd("engine_probe:app", {"http": {"server_header": None}})
    for data in (request("/"), b"GET / HTTP/1.1\r\n\r\n"):
        response = fetch(server, data)
        assert response.header("server") is None, response.headers
        assert response.header("date") is not None
