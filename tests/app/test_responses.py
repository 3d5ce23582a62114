"""Responses: what handlers return, the response classes, headers, cookies, safety."""

from __future__ import annotations

import asyncio
import math
import re
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from support.fake_request import make_request

from covetd import (
    Covet,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from covetd.app.dispatch import to_response


def headers_of(response: Response) -> dict[str, str]:
    """Single-valued headers as a dict (fails on accidental duplicates)."""
    pairs = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in response.raw_headers]
    names = [name for name, _ in pairs if name != "set-cookie"]
    assert len(names) == len(set(names)), f"duplicate headers in {pairs}"
    return dict(pairs)


def set_cookies(response: Response) -> list[str]:
    return [v.decode("latin-1") for n, v in response.raw_headers if n == b"set-cookie"]


def assert_wire_safe(response: Response) -> None:
    for name, value in response.raw_headers:
        assert re.fullmatch(rb"[!#$%&'*+\-.^_`|~0-9a-z]+", name), name
        assert not re.search(rb"[\r\n\x00]", value), value


async def drain(response: StreamingResponse) -> list[Any]:
    return [chunk async for chunk in response.body_iterator]


def handle(app: Covet, method: str = "GET", target: str = "/") -> Response:
    return asyncio.run(app.handle(make_request(method, target)))


# -- what a handler may return -----------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "status", "content_type", "body"),
    [
        ({"a": 1, "b": [True, None]}, 200, "application/json", b'{"a":1,"b":[true,null]}'),
        ([1, "two"], 200, "application/json", b'[1,"two"]'),
        ("héllo", 200, "text/plain; charset=utf-8", "héllo".encode()),
        (b"\x00\x01raw", 200, "application/octet-stream", b"\x00\x01raw"),
        ((1, 2), 200, "application/json", b"[1,2]"),
    ],
)
def test_handler_return_values_become_responses(
    result: Any, status: int, content_type: str, body: bytes
) -> None:
    app = Covet()

    @app.get("/")
    async def index() -> Any:
        return result

    response = handle(app)
    assert response.status_code == status
    assert response.body == body
    headers = headers_of(response)
    assert headers["content-type"] == content_type
    assert headers["content-length"] == str(len(body))


def test_handler_returning_none_is_204_without_body_or_length() -> None:
    app = Covet()

    @app.post("/")
    async def index() -> None:
        return None

    response = handle(app, "POST")
    assert response.status_code == 204
    assert response.body == b""
    assert "content-length" not in headers_of(response)


def test_handler_returning_a_response_is_sent_as_is() -> None:
    app = Covet()
    sent = PlainTextResponse("made", 201, {"X-Made": "yes"})

    @app.get("/")
    async def index() -> Response:
        return sent

    assert handle(app) is sent


def test_dict_subclass_is_json() -> None:
    class Payload(dict[str, int]):
        pass

    response = to_response(Payload(a=1))
    assert isinstance(response, JSONResponse)
    assert response.body == b'{"a":1}'


def test_handler_returning_something_else_is_a_500() -> None:
    app = Covet()

    @app.get("/")
    async def index() -> object:
        return object()

    response = handle(app)
    assert response.status_code == 500
    with pytest.raises(TypeError, match="return a Response, dict, list, str or bytes"):
        to_response(object())


# -- response classes ----------------------------------------------------------------------


def test_plain_response_has_no_content_type_unless_given() -> None:
    response = Response(b"data")
    assert headers_of(response) == {"content-length": "4"}
    assert Response("x", media_type="image/png").raw_headers[0] == (b"content-type", b"image/png")


def test_text_media_types_get_a_charset() -> None:
    assert headers_of(Response("a,b", media_type="text/csv"))["content-type"] == (
        "text/csv; charset=utf-8"
    )
    assert headers_of(Response("x", media_type="text/plain; charset=latin-1"))["content-type"] == (
        "text/plain; charset=latin-1"
    )


def test_json_response() -> None:
    response = JSONResponse({"name": "café", "n": 1.5}, 201, {"X-Id": "7"})
    assert response.status_code == 201
    assert response.body == '{"name":"café","n":1.5}'.encode()
    assert headers_of(response) == {
        "x-id": "7",
        "content-type": "application/json",
        "content-length": str(len(response.body)),
    }


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_json_refuses_nan_and_infinity(value: float) -> None:
    with pytest.raises(ValueError):
        JSONResponse({"x": value})


def test_json_refuses_what_it_cannot_serialise() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        JSONResponse({"when": object()})


def test_handler_returning_nan_is_a_500() -> None:
    app = Covet()

    @app.get("/")
    async def index() -> dict[str, float]:
        return {"x": math.nan}

    response = handle(app)
    assert response.status_code == 500
    assert b"nan" not in response.body.lower()


def test_html_response() -> None:
    response = HTMLResponse("<h1>é</h1>")
    assert response.body == "<h1>é</h1>".encode()
    assert headers_of(response)["content-type"] == "text/html; charset=utf-8"


def test_plain_text_response() -> None:
    response = PlainTextResponse("ok", 202)
    assert response.status_code == 202
    assert headers_of(response) == {
        "content-type": "text/plain; charset=utf-8",
        "content-length": "2",
    }


def test_content_type_header_wins_over_media_type() -> None:
    response = PlainTextResponse("x", headers={"Content-Type": "text/x-custom"})
    assert headers_of(response)["content-type"] == "text/x-custom"


def test_content_of_an_unsupported_type_raises() -> None:
    with pytest.raises(TypeError):
        Response(123)


def test_bytearray_and_memoryview_content() -> None:
    assert Response(bytearray(b"ab")).body == b"ab"
    assert Response(memoryview(b"cd")).body == b"cd"


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses_carry_no_body_and_no_length(status: int) -> None:
    for response in (
        Response(b"ignored", status),
        JSONResponse({"ignored": True}, status),
        PlainTextResponse("ignored", status, headers={"ETag": '"v1"'}),
    ):
        assert response.body == b""
        assert "content-length" not in headers_of(response)


def test_redirect_defaults_to_307_with_an_empty_body() -> None:
    response = RedirectResponse("/login?next=/home")
    assert response.status_code == 307
    assert response.body == b""
    assert headers_of(response) == {"content-length": "0", "location": "/login?next=/home"}


@pytest.mark.parametrize("status", [301, 302, 303, 308])
def test_redirect_status_can_be_chosen(status: int) -> None:
    assert RedirectResponse("/x", status).status_code == status


def test_redirect_quotes_the_url() -> None:
    response = RedirectResponse("https://example.com/café a?q=a b&x=1#frag")
    assert headers_of(response)["location"] == (
        "https://example.com/caf%C3%A9%20a?q=a%20b&x=1#frag"
    )


def test_redirect_keeps_existing_escapes() -> None:
    response = RedirectResponse("/a%20b")
    assert headers_of(response)["location"] == "/a%20b"


@pytest.mark.parametrize(
    "url", ["/next\r\nSet-Cookie: evil=1", "/next\nX: y", "/next\rX: y", "/a\x00b"]
)
def test_redirect_never_puts_raw_control_characters_in_location(url: str) -> None:
    try:
        response = RedirectResponse(url)
    except ValueError:
        return  # refusing is fine too
    assert_wire_safe(response)
    assert "evil" not in set_cookies(response)
    assert [n for n, _ in response.raw_headers].count(b"set-cookie") == 0


def test_redirect_with_extra_headers() -> None:
    response = RedirectResponse("/x", headers={"Cache-Control": "no-store"})
    assert headers_of(response)["cache-control"] == "no-store"
    assert headers_of(response)["location"] == "/x"


# -- streaming -----------------------------------------------------------------------------


def test_streaming_from_an_async_iterator() -> None:
    async def parts() -> AsyncIterator[str | bytes]:
        yield "one "
        yield b"two"

    response = StreamingResponse(parts(), media_type="text/plain")
    assert response.streaming
    assert headers_of(response) == {"content-type": "text/plain; charset=utf-8"}
    assert asyncio.run(drain(response)) == ["one ", b"two"]


def test_streaming_from_a_sync_iterator_runs_it_off_the_event_loop() -> None:
    threads: list[threading.Thread] = []

    def parts() -> Iterator[bytes]:
        for part in (b"a", b"b", b"c"):
            threads.append(threading.current_thread())
            yield part

    response = StreamingResponse(parts())
    assert asyncio.run(drain(response)) == [b"a", b"b", b"c"]
    assert threads
    assert all(thread is not threading.main_thread() for thread in threads)


def test_streaming_from_a_list() -> None:
    response = StreamingResponse([b"x", "y"])
    assert asyncio.run(drain(response)) == [b"x", "y"]


def test_streaming_response_has_no_content_length_unless_given() -> None:
    assert "content-length" not in headers_of(StreamingResponse([b"x"]))
    sized = StreamingResponse([b"abc"], headers={"Content-Length": "3"})
    assert headers_of(sized)["content-length"] == "3"


# -- headers -----------------------------------------------------------------------------------


def test_constructor_headers_are_lowercased_and_kept_in_order() -> None:
    response = Response("x", headers={"X-First": "1", "x-second": "2"})
    assert response.raw_headers[:2] == [(b"x-first", b"1"), (b"x-second", b"2")]


def test_mutable_headers() -> None:
    response = PlainTextResponse("x")
    headers = response.headers
    headers["X-Trace"] = "abc"
    headers["x-trace"] = "def"
    assert headers.getlist("x-trace") == ["def"]
    headers.append("Vary", "Accept")
    headers.append("Vary", "Cookie")
    assert response.headers.getlist("vary") == ["Accept", "Cookie"]
    assert headers.setdefault("Vary", "ignored") == "Accept"
    assert headers.setdefault("X-New", "fresh") == "fresh"
    headers.update({"X-Trace": "ghi", "X-Other": "1"})
    assert response.headers["x-trace"] == "ghi"
    del headers["vary"]
    assert "vary" not in response.headers
    with pytest.raises(KeyError):
        del headers["vary"]
    assert (b"x-other", b"1") in response.raw_headers


BAD_VALUES = ["a\r\nInjected: yes", "a\nInjected: yes", "a\rb", "a\x00b"]


@pytest.mark.parametrize("value", BAD_VALUES)
def test_constructor_header_value_with_cr_lf_or_nul_raises(value: str) -> None:
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        Response("x", headers={"X-Evil": value})
    with pytest.raises(ValueError):
        JSONResponse({}, headers={"X-Evil": value})
    with pytest.raises(ValueError):
        StreamingResponse([b"x"], headers={"X-Evil": value})


@pytest.mark.parametrize("value", BAD_VALUES)
def test_setting_a_header_value_with_cr_lf_or_nul_raises(value: str) -> None:
    response = Response("x")
    before = list(response.raw_headers)
    with pytest.raises(ValueError):
        response.headers["X-Evil"] = value
    with pytest.raises(ValueError):
        response.headers.append("X-Evil", value)
    with pytest.raises(ValueError):
        response.headers.setdefault("X-Evil", value)
    with pytest.raises(ValueError):
        response.headers.update({"X-Evil": value})
    assert response.raw_headers == before


def test_header_value_as_bytes_is_checked_too() -> None:
    with pytest.raises(ValueError):
        Response("x", headers={"X-Evil": b"a\r\nb"})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    "name",
    ["", "X Foo", "X:Foo", "X-Foo\r\n", "X-Foo\n", "\nX-Foo", "X\nFoo", "X-Foo\x00", "é", "(x)"],
)
def test_invalid_header_names_raise(name: str) -> None:
    with pytest.raises(ValueError):
        Response("x", headers={name: "v"})
    with pytest.raises(ValueError):
        Response("x").headers[name] = "v"


def test_header_value_outside_latin1_raises() -> None:
    with pytest.raises(ValueError):
        Response("x", headers={"X-Currency": "€"})


def test_header_values_are_trimmed() -> None:
    assert headers_of(Response("x", headers={"X-A": "  padded\t"}))["x-a"] == "padded"


# -- cookies -----------------------------------------------------------------------------------


def test_set_cookie_defaults() -> None:
    response = Response()
    response.set_cookie("session", "abc")
    assert set_cookies(response) == ["session=abc; Path=/; SameSite=Lax"]


def test_set_cookie_with_every_attribute() -> None:
    response = Response()
    response.set_cookie(
        "session",
        "abc",
        max_age=3600,
        expires="Wed, 21 Oct 2037 07:28:00 GMT",
        path="/app",
        domain="example.com",
        secure=True,
        httponly=True,
        samesite="none",
        partitioned=True,
    )
    (cookie,) = set_cookies(response)
    parts = [part.strip() for part in cookie.split(";")]
    assert parts[0] == "session=abc"
    assert set(parts[1:]) == {
        "Max-Age=3600",
        "expires=Wed, 21 Oct 2037 07:28:00 GMT",
        "Path=/app",
        "Domain=example.com",
        "Secure",
        "HttpOnly",
        "SameSite=None",
        "Partitioned",
    }


def test_set_cookie_expires_as_seconds_from_now() -> None:
    response = Response()
    response.set_cookie("a", "1", expires=60)
    (cookie,) = set_cookies(response)
    assert re.search(r"expires=\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT", cookie)


def test_set_cookie_without_samesite_or_path() -> None:
    response = Response()
    response.set_cookie("a", "1", samesite=None, path=None)
    assert set_cookies(response) == ["a=1"]


def test_set_cookie_strict_samesite() -> None:
    response = Response()
    response.set_cookie("a", "1", samesite="strict")
    assert "SameSite=Strict" in set_cookies(response)[0]


def test_set_cookie_rejects_an_unknown_samesite() -> None:
    with pytest.raises(ValueError, match="samesite"):
        Response().set_cookie("a", "1", samesite="loose")  # type: ignore[arg-type]


def test_several_cookies_are_several_headers() -> None:
    response = JSONResponse({})
    response.set_cookie("a", "1")
    response.set_cookie("b", "2")
    assert [c.split(";")[0] for c in set_cookies(response)] == ["a=1", "b=2"]


def test_cookie_value_with_special_characters_is_quoted_not_raw() -> None:
    response = Response()
    response.set_cookie("a", "x y;z\r\nSet-Cookie: evil=1")
    assert_wire_safe(response)
    (cookie,) = set_cookies(response)
    assert cookie.startswith('a="')


@pytest.mark.parametrize(
    "attribute",
    [
        {"path": "/\r\nSet-Cookie: evil=1"},
        {"path": "/\n"},
        {"domain": "example.com\r\nX: y"},
        {"domain": "a\x00b"},
        {"expires": "Wed\r\nX: y"},
    ],
)
def test_set_cookie_attributes_with_cr_lf_or_nul_raise(attribute: dict[str, Any]) -> None:
    response = Response()
    with pytest.raises(ValueError):
        response.set_cookie("a", "1", **attribute)
    assert set_cookies(response) == []


def test_delete_cookie() -> None:
    response = Response()
    response.delete_cookie("session", path="/app", domain="example.com")
    (cookie,) = set_cookies(response)
    parts = [part.strip() for part in cookie.split(";")]
    assert parts[0] in ('session=""', "session=")
    assert "Max-Age=0" in parts
    assert "Path=/app" in parts
    assert "Domain=example.com" in parts
    assert any(part.startswith("expires=") for part in parts)


def test_repr() -> None:
    assert repr(JSONResponse({}, 201)) == "<JSONResponse 201>"
