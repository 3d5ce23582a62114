"""The Request a handler sees, built directly over a canned body channel."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

import pytest
from support.fake_request import FakeBody, make_request

from covetd import ClientDisconnect, FormData, Headers, HTTPException, QueryParams, State

T = TypeVar("T")


def run(awaitable: Awaitable[T]) -> T:
    async def main() -> T:
        return await awaitable

    return asyncio.run(main())


async def collect(request: Any) -> list[bytes]:
    return [chunk async for chunk in request.stream()]


# -- the head ----------------------------------------------------------------------------


def test_method_path_and_raw_path() -> None:
    request = make_request("PATCH", "/caf%C3%A9/a%20b/c")
    assert request.method == "PATCH"
    assert request.path == "/café/a b/c"
    assert request.raw_path == b"/caf%C3%A9/a%20b/c"


def test_path_without_escapes_is_the_raw_path() -> None:
    request = make_request("GET", "/plain/path")
    assert request.path == "/plain/path"
    assert request.query_string == b""
    assert request.query_params == {}


def test_query_string_and_query_params() -> None:
    request = make_request("GET", "/s?tag=a&tag=b&q=caf%C3%A9&plus=a+b&blank=&flag")
    assert request.query_string == b"tag=a&tag=b&q=caf%C3%A9&plus=a+b&blank=&flag"
    params = request.query_params
    assert isinstance(params, QueryParams)
    assert params.getlist("tag") == ["a", "b"]
    assert params["q"] == "café"
    assert params["plus"] == "a b"
    assert params["blank"] == ""
    assert params["flag"] == ""
    assert params.get("missing") is None
    assert params.getlist("missing") == []
    assert params.multi_items() == [
        ("tag", "a"),
        ("tag", "b"),
        ("q", "café"),
        ("plus", "a b"),
        ("blank", ""),
        ("flag", ""),
    ]
    assert list(params) == ["tag", "q", "plus", "blank", "flag"]
    assert len(params) == 5


def test_query_params_single_lookup_gives_the_last_value() -> None:
    assert make_request("GET", "/?a=1&a=2").query_params["a"] == "2"


def test_query_params_parsed_once() -> None:
    request = make_request("GET", "/?a=1")
    assert request.query_params is request.query_params


def test_query_params_parse_on_their_own() -> None:
    assert QueryParams.parse(b"x=1&y=").multi_items() == [("x", "1"), ("y", "")]
    assert QueryParams.parse("") == {}


def test_too_many_query_fields_is_a_400() -> None:
    fine = make_request("GET", "/?" + "&".join(f"k{i}=v" for i in range(1000)))
    assert len(fine.query_params) == 1000
    flood = make_request("GET", "/?" + "&".join(f"k{i}=v" for i in range(1001)))
    with pytest.raises(HTTPException) as caught:
        flood.query_params  # noqa: B018
    assert caught.value.status_code == 400


def test_headers_are_a_case_insensitive_multi_dict() -> None:
    request = make_request(
        "GET",
        "/",
        [("Host", "example.com"), ("X-Multi", "one"), ("x-multi", "two"), ("Accept", "*/*")],
    )
    headers = request.headers
    assert isinstance(headers, Headers)
    assert headers["host"] == "example.com"
    assert headers["HOST"] == "example.com"
    assert headers["X-Multi"] == "one"
    assert headers.getlist("X-MULTI") == ["one", "two"]
    assert "accept" in headers
    assert "Accept" in headers
    assert "missing" not in headers
    assert 42 not in headers
    assert headers.get("missing", "default") == "default"
    with pytest.raises(KeyError):
        headers["missing"]
    assert list(headers) == ["host", "x-multi", "accept"]
    assert len(headers) == 3
    assert headers.multi_items() == [
        ("host", "example.com"),
        ("x-multi", "one"),
        ("x-multi", "two"),
        ("accept", "*/*"),
    ]


def test_header_values_are_latin1_strings() -> None:
    request = make_request("GET", "/", [("X-Name", "caf\xe9")])
    assert request.headers["x-name"] == "café"


def test_cookies_several_headers_and_quoted_values() -> None:
    request = make_request(
        "GET",
        "/",
        [
            ("Cookie", 'session=abc123; theme="dark mode"; enc=a%20b;  spaced = v '),
            ("Cookie", "second=2"),
        ],
    )
    assert request.cookies == {
        "session": "abc123",
        "theme": "dark mode",
        "enc": "a b",
        "spaced": "v",
        "second": "2",
    }


def test_cookie_header_oddities_are_skipped() -> None:
    request = make_request("GET", "/", [("Cookie", "novalue; =orphan; ok=1;;")])
    assert request.cookies == {"ok": "1"}


def test_no_cookie_header_means_no_cookies() -> None:
    assert make_request("GET", "/").cookies == {}


def test_client_and_server_addresses() -> None:
    request = make_request("GET", "/", client=("10.1.2.3", 4567))
    assert request.client is not None
    assert request.client.host == "10.1.2.3"
    assert request.client.port == 4567
    assert tuple(request.client) == ("10.1.2.3", 4567)
    assert make_request("GET", "/", client=None).client is None


def test_path_params_default_to_empty_and_are_not_shared() -> None:
    first = make_request("GET", "/")
    second = make_request("GET", "/")
    assert first.path_params == {}
    first.path_params = {"id": 1}
    assert second.path_params == {}


def test_url_from_the_host_header() -> None:
    request = make_request("GET", "/a/b?x=1", [("Host", "example.com:8080")], scheme="https")
    url = request.url
    assert str(url) == "https://example.com:8080/a/b?x=1"
    assert url.scheme == "https"
    assert url.netloc == "example.com:8080"
    assert url.path == "/a/b"
    assert url.query == "x=1"


def test_url_falls_back_to_the_server_address() -> None:
    request = make_request("GET", "/p", server=("10.0.0.5", 9000))
    assert str(request.url) == "http://10.0.0.5:9000/p"


def test_url_path_is_the_decoded_path() -> None:
    request = make_request("GET", "/a%2Fb", [("Host", "h")])
    assert request.url.path == request.path == "/a/b"


def test_content_type_is_the_bare_media_type() -> None:
    request = make_request("POST", "/", [("Content-Type", "Application/JSON; charset=utf-8")])
    assert request.content_type == "application/json"
    assert make_request("POST", "/").content_type == ""


def test_state_is_per_request() -> None:
    first = make_request("GET", "/")
    first.state.user = "alice"
    assert isinstance(first.state, State)
    assert first.state.user == "alice"
    assert not hasattr(make_request("GET", "/").state, "user")


def test_request_line_for_logs() -> None:
    assert make_request("GET", "/a%20b?x=1").request_line == '"GET /a%20b?x=1 HTTP/1.1"'


# -- the body ----------------------------------------------------------------------------


def test_body_joins_the_chunks() -> None:
    request = make_request("POST", "/", body=[b"hello ", b"wor", b"ld"])
    assert run(request.body()) == b"hello world"


def test_body_is_cached() -> None:
    channel = FakeBody(b"once")
    request = make_request("POST", "/", channel=channel)
    assert run(request.body()) == b"once"
    reads = channel.reads
    assert run(request.body()) == b"once"
    assert channel.reads == reads


def test_empty_body() -> None:
    request = make_request("GET", "/")
    assert run(request.body()) == b""
    assert run(collect(request)) == []


def test_stream_yields_chunks_as_they_come() -> None:
    request = make_request("POST", "/", body=[b"a", b"bb", b"ccc"])
    assert run(collect(request)) == [b"a", b"bb", b"ccc"]


def test_stream_after_body_yields_the_cached_body() -> None:
    request = make_request("POST", "/", body=[b"a", b"b"])
    assert run(request.body()) == b"ab"
    assert run(collect(request)) == [b"ab"]
    assert run(collect(request)) == [b"ab"]


def test_streaming_twice_raises() -> None:
    request = make_request("POST", "/", body=[b"a"])
    assert run(collect(request)) == [b"a"]
    with pytest.raises(RuntimeError, match="already consumed"):
        run(collect(request))


def test_body_after_the_stream_was_consumed_raises() -> None:
    request = make_request("POST", "/", body=[b"a"])
    run(collect(request))
    with pytest.raises(RuntimeError):
        run(request.body())


def test_client_disconnect_while_reading_the_body() -> None:
    channel = FakeBody(b"partial", disconnect=True)
    request = make_request("POST", "/", channel=channel)
    with pytest.raises(ClientDisconnect):
        run(request.body())
    assert run(request.is_disconnected()) is True


def test_is_disconnected_is_false_while_connected() -> None:
    assert run(make_request("GET", "/").is_disconnected()) is False


def test_json() -> None:
    request = make_request("POST", "/", body=[b'{"name": "caf', b'\xc3\xa9", "n": [1, 2.5]}'])
    assert run(request.json()) == {"name": "café", "n": [1, 2.5]}
    assert run(request.json()) == {"name": "café", "n": [1, 2.5]}


@pytest.mark.parametrize("body", [b"", b"{", b"not json", b"\xff\xfe", b'{"a": 1} trailing'])
def test_invalid_json_is_a_400(body: bytes) -> None:
    request = make_request("POST", "/", body=[body])
    with pytest.raises(HTTPException) as caught:
        run(request.json())
    assert caught.value.status_code == 400


def test_json_null_is_a_value() -> None:
    assert run(make_request("POST", "/", body=[b"null"]).json()) is None


def test_urlencoded_form() -> None:
    request = make_request(
        "POST",
        "/",
        [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")],
        [b"name=caf%C3%A9+au+lait&tag=a&tag=b", b"&blank="],
    )
    form = run(request.form())
    assert isinstance(form, FormData)
    assert form["name"] == "café au lait"
    assert form.getlist("tag") == ["a", "b"]
    assert form["blank"] == ""
    assert run(request.form()) is form


def test_form_without_a_content_type_is_read_as_urlencoded() -> None:
    request = make_request("POST", "/", body=[b"a=1"])
    assert dict(run(request.form())) == {"a": "1"}


def test_multipart_form_is_415_for_now() -> None:
    request = make_request(
        "POST",
        "/",
        [("Content-Type", "multipart/form-data; boundary=xyz")],
        [b"--xyz--\r\n"],
    )
    with pytest.raises(HTTPException) as caught:
        run(request.form())
    assert caught.value.status_code == 415
    assert "multipart/form-data" in caught.value.detail


def test_too_many_form_fields_is_a_400() -> None:
    body = "&".join(f"f{i}=v" for i in range(1001)).encode()
    request = make_request(
        "POST", "/", [("Content-Type", "application/x-www-form-urlencoded")], [body]
    )
    with pytest.raises(HTTPException) as caught:
        run(request.form())
    assert caught.value.status_code == 400


def test_repr_names_method_and_path() -> None:
    assert repr(make_request("DELETE", "/x")) == "<Request DELETE '/x'>"
