"""request_id: generated, accepted (only when trusted and sane) or replaced; seen by the
app (state, context variable, request header), the logs and the client."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from support.mw_servers import ServerPool

from covetd import PlainTextResponse, Request, Response
from covetd.config.errors import ConfigError
from covetd.middleware.options import parse_options
from covetd.middleware.request_id import RequestIdMiddleware, current_request_id

APPS = ["mw_basic:app", "mw_starlette:app"]
GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(scope="module")
def servers() -> Iterator[ServerPool]:
    with ServerPool() as pool:
        yield pool


def with_ids(**options: Any) -> dict[str, Any]:
    return {"middleware": [{"request_id": options}]}


def call(url: str, headers: Any = (), path: str = "/info") -> tuple[str | None, dict[str, Any]]:
    """The echoed id and what the app saw."""
    response = httpx.get(url + path, headers=list(headers))
    assert response.status_code == 200, response.text
    return response.headers.get("x-request-id"), response.json()["request_id"]


@pytest.mark.parametrize("app", APPS)
def test_an_id_is_generated_and_seen_everywhere(servers: ServerPool, app: str) -> None:
    echoed, seen = call(servers(app, with_ids()).url)
    assert echoed is not None and GENERATED.fullmatch(echoed)
    assert seen["context"] == echoed
    assert seen["header"] == [echoed]
    if app == "mw_basic:app":
        assert seen["state"] == echoed


def test_every_request_gets_its_own(servers: ServerPool) -> None:
    url = servers("mw_basic:app", with_ids()).url
    ids = {call(url)[0] for _ in range(5)}
    assert len(ids) == 5


def test_concurrent_requests_keep_their_own_context(servers: ServerPool) -> None:
    url = servers("mw_basic:app", with_ids()).url

    def one(index: int) -> tuple[str | None, dict[str, Any]]:
        return call(url, path=f"/info?s=0.0{index % 5}")

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(16)))
    assert len({echoed for echoed, _ in results}) == 16
    for echoed, seen in results:
        assert seen["context"] == seen["state"] == echoed


@pytest.mark.parametrize("app", APPS)
def test_an_incoming_id_is_replaced_unless_trusted(servers: ServerPool, app: str) -> None:
    echoed, seen = call(servers(app, with_ids()).url, [("x-request-id", "chosen-by-client")])
    assert echoed is not None and GENERATED.fullmatch(echoed)
    assert seen["header"] == [echoed]  # the app does not see the client's value either


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize("value", ["abc-123", "a" * 200, "Root=1-5f84;Parent=53995c3f", "~!#$%/="])
def test_a_sane_incoming_id_is_kept_when_trusted(servers: ServerPool, app: str, value: str) -> None:
    echoed, seen = call(servers(app, with_ids(trust_incoming=True)).url, [("x-request-id", value)])
    assert echoed == value
    assert seen["context"] == value
    assert seen["header"] == [value]


@pytest.mark.parametrize(
    "headers",
    [
        [("x-request-id", "a" * 201)],
        [("x-request-id", "has space")],
        [("x-request-id", "tab\there")],
        [("x-request-id", b"caf\xe9")],
        [("x-request-id", "")],
        [("x-request-id", "one"), ("x-request-id", "two")],
    ],
    ids=["too-long", "space", "tab", "latin-1", "empty", "twice"],
)
def test_an_insane_incoming_id_is_replaced(servers: ServerPool, headers: Any) -> None:
    echoed, seen = call(servers("mw_basic:app", with_ids(trust_incoming=True)).url, headers)
    assert echoed is not None and GENERATED.fullmatch(echoed)
    assert seen["header"] == [echoed]


def test_max_length(servers: ServerPool) -> None:
    url = servers("mw_basic:app", with_ids(trust_incoming=True, max_length=8)).url
    assert call(url, [("x-request-id", "12345678")])[0] == "12345678"
    assert GENERATED.fullmatch(call(url, [("x-request-id", "123456789")])[0] or "")


def test_the_header_name_is_an_option(servers: ServerPool) -> None:
    url = servers("mw_basic:app", with_ids(header="Trace-Id", trust_incoming=True)).url
    response = httpx.get(url + "/info", headers={"trace-id": "t-1", "x-request-id": "not-this-one"})
    assert response.headers["trace-id"] == "t-1"
    seen = response.json()["request_id"]
    assert seen["trace"] == ["t-1"]
    assert seen["context"] == "t-1"
    assert seen["header"] == ["not-this-one"]  # another header: left alone


@pytest.mark.parametrize("app", APPS)
def test_echo_false_keeps_it_from_the_client_only(servers: ServerPool, app: str) -> None:
    response = httpx.get(servers(app, with_ids(echo=False)).url + "/info")
    assert "x-request-id" not in response.headers
    assert GENERATED.fullmatch(response.json()["request_id"]["context"])


@pytest.mark.parametrize("app", APPS)
def test_an_id_the_app_set_is_not_overwritten(servers: ServerPool, app: str) -> None:
    response = httpx.get(servers(app, with_ids()).url + "/own-headers")
    assert response.headers.get_list("x-request-id") == ["chosen-by-app"]


def test_log_records_carry_the_id(servers: ServerPool) -> None:
    response = httpx.get(servers("mw_basic:app", with_ids()).url + "/log")
    assert response.text == f"{response.headers['x-request-id']} handled"


def test_the_context_variable_is_reset_after_the_request() -> None:
    seen: list[str | None] = []

    async def handler(request: Request) -> Response:
        seen.append(current_request_id.get())
        return PlainTextResponse("ok")

    async def scenario() -> Response:
        middleware = RequestIdMiddleware(
            handler, parse_options(RequestIdMiddleware.Options, {}, "")
        )
        response = await middleware(Request.build("GET", b"/"))
        seen.append(current_request_id.get())
        return response

    response = asyncio.run(scenario())
    assert seen[0] == response.headers["x-request-id"]
    assert seen[1] is None


@pytest.mark.parametrize(
    ("options", "key", "message"),
    [
        ({"header": "X Request"}, "header", "expected a header name"),
        ({"trust_incoming": "yes"}, "trust_incoming", "expected true or false"),
        ({"max_length": 0}, "max_length", "expected a positive integer"),
        ({"echo": None}, "echo", "expected true or false"),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_options(RequestIdMiddleware.Options, options, "request_id", "c.yaml:9")
    assert str(caught.value).startswith(f"c.yaml:9: middleware.request_id.{key}: ")
    assert message in str(caught.value)
