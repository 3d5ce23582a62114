"""The Covet framework seen over HTTP, through a real covetd process."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from support.events import events_env, wait_for_event
from support.process import Covetd
from support.rawhttp import RawConnection, RawResponse


@pytest.fixture(scope="module")
def events_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("framework-events")


@pytest.fixture(scope="module")
def server(events_dir: Path) -> Iterator[Covetd]:
    with Covetd("framework_app:app", env=events_env(events_dir)) as running:
        yield running


@pytest.fixture
def client(server: Covetd) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=5.0) as http:
        yield http


def raw_exchange(server: Covetd, request: bytes) -> tuple[bytes, RawResponse]:
    """The response head exactly as sent, and the parsed response."""
    with RawConnection(server.host, server.port) as conn:
        conn.send(request)
        head = conn.read_until(b"\r\n\r\n")
        conn.buffer = head + conn.buffer  # parse it again, with the body
        return head, conn.read_response()


# -- routing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/items/42", {"route": "by_id", "value": "42", "type": "int"}),
        ("/items/gizmo", {"route": "by_name", "value": "gizmo", "type": "str"}),
        ("/floats/2.5", {"value": "2.5", "type": "float"}),
        (
            "/uuids/12345678-1234-5678-1234-567812345678",
            {"value": "12345678-1234-5678-1234-567812345678", "type": "UUID"},
        ),
        ("/flags/yes", {"value": "True", "type": "bool"}),
        ("/flags/off", {"value": "False", "type": "bool"}),
        ("/files/a/b/c.txt", {"value": "a/b/c.txt", "type": "str"}),
        ("/static/css/site.css", {"value": "css/site.css", "type": "str"}),
    ],
)
def test_typed_parameters(client: httpx.Client, path: str, expected: dict) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.json() == expected


def test_static_route_beats_parameter_and_backtracks(client: httpx.Client) -> None:
    assert client.get("/users/me/profile").text == "my profile"
    assert client.get("/users/me/settings").text == "settings of me"
    assert client.get("/users/42/settings").text == "settings of 42"


def test_not_found(client: httpx.Client) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}
    assert "allow" not in response.headers
    assert client.get("/floats/not-a-number").status_code == 404


def test_method_not_allowed_lists_every_method(client: httpx.Client) -> None:
    response = client.post("/resource")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, HEAD, PUT"
    assert response.json() == {"detail": "Method Not Allowed"}
    assert client.put("/resource").text == "PUT resource"
    assert client.delete("/resource").status_code == 204


def test_method_not_allowed_on_a_parameterised_path(client: httpx.Client) -> None:
    response = client.patch("/items/3")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


def test_route_group_under_a_prefix(client: httpx.Client) -> None:
    assert client.get("/v1/api/ping").json() == {"pong": "yes"}
    assert client.get("/v1/api/users/7").json() == {"id": 7, "url": "/v1/api/users/7"}
    assert client.get("/api/ping").status_code == 404


# -- HEAD --------------------------------------------------------------------------------


def test_head_is_answered_by_get_without_a_body(server: Covetd) -> None:
    with RawConnection(server.host, server.port) as conn:
        conn.send(b"HEAD /sized HTTP/1.1\r\nHost: t\r\n\r\n")
        head = conn.read_response(head_request=True)
        conn.send(b"GET /sized HTTP/1.1\r\nHost: t\r\n\r\n")  # same connection: framing held
        get = conn.read_response()
    assert head.status == 200
    assert head.header("content-length") == "12"
    assert head.header("x-route") == "get"
    assert head.body == b""
    assert get.body == b"twelve bytes"


def test_explicit_head_route_overrides_the_get_route(server: Covetd) -> None:
    with RawConnection(server.host, server.port) as conn:
        conn.send(b"HEAD /custom-head HTTP/1.1\r\nHost: t\r\n\r\n")
        head = conn.read_response(head_request=True)
        conn.send(b"GET /custom-head HTTP/1.1\r\nHost: t\r\n\r\n")
        get = conn.read_response()
    assert head.header("x-route") == "explicit-head"
    assert head.header("content-length") == "99"
    assert get.body == b"the body of GET"


def test_head_of_a_streaming_response_sends_no_chunks(server: Covetd) -> None:
    with RawConnection(server.host, server.port) as conn:
        conn.send(b"HEAD /stream/async HTTP/1.1\r\nHost: t\r\n\r\n")
        head = conn.read_response(head_request=True)
        conn.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        after = conn.read_response()
    assert head.status == 200
    assert head.body == b""
    assert after.body == b"framework"


# -- requests ------------------------------------------------------------------------------


def test_request_attributes_over_http(client: httpx.Client, server: Covetd) -> None:
    response = client.get(
        "/inspect?tag=a&tag=b&empty=&q=caf%C3%A9",
        headers=[("X-Multi", "one"), ("x-multi", "two"), ("Cookie", 'a=1; b="two words"')],
    )
    data = response.json()
    assert data["method"] == "GET"
    assert data["path"] == "/inspect"
    assert data["query_string"] == "tag=a&tag=b&empty=&q=caf%C3%A9"
    assert data["query"] == [["tag", "a"], ["tag", "b"], ["empty", ""], ["q", "café"]]
    assert data["multi"] == ["one", "two"]
    assert data["host"] == f"127.0.0.1:{server.port}"
    assert data["cookies"] == {"a": "1", "b": "two words"}
    assert data["client_host"] == "127.0.0.1"
    assert data["url"] == f"http://127.0.0.1:{server.port}/inspect?tag=a&tag=b&empty=&q=caf%C3%A9"


def test_path_is_percent_decoded_raw_path_is_not(client: httpx.Client) -> None:
    data = client.get("/inspect/caf%C3%A9/a%20b").json()
    assert data == {
        "path": "/inspect/café/a b",
        "raw_path": "/inspect/caf%C3%A9/a%20b",
        "rest": "café/a b",
    }


def test_too_many_query_fields_is_a_400(client: httpx.Client) -> None:
    query = "&".join(f"k{i}=v" for i in range(1001))
    response = client.get(f"/inspect?{query}")
    assert response.status_code == 400


def test_json_echo(client: httpx.Client) -> None:
    payload = {"name": "café", "items": [1, 2.5, None, True], "nested": {"a": []}}
    response = client.post("/json", json=payload)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"received": payload}


def test_invalid_json_is_a_400(client: httpx.Client) -> None:
    response = client.post(
        "/json", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "request body is not valid JSON"}


def test_form_post(client: httpx.Client) -> None:
    response = client.post("/form", data={"name": "café au lait", "tag": ["x", "y"], "blank": ""})
    assert response.json() == {
        "fields": [["name", "café au lait"], ["tag", "x"], ["tag", "y"], ["blank", ""]]
    }


def test_multipart_form_is_415(client: httpx.Client) -> None:
    response = client.post("/form", files={"upload": ("a.txt", b"content")})
    assert response.status_code == 415


def test_body_then_stream_gives_the_same_bytes(client: httpx.Client) -> None:
    response = client.post("/body", content=b"hello body")
    assert response.json() == {"length": 10, "same": True, "text": "hello body"}


def test_chunked_upload_is_streamed(client: httpx.Client) -> None:
    def pieces() -> Iterator[bytes]:
        for _ in range(64):
            yield b"x" * 1024

    response = client.post("/stream-in", content=pieces())
    assert response.json() == {"total": 64 * 1024}


# -- responses ---------------------------------------------------------------------------


def test_cookies_round_trip(client: httpx.Client) -> None:
    response = client.get("/cookies/set")
    cookies = response.headers.get_list("set-cookie")
    assert len(cookies) == 2
    session = next(c for c in cookies if c.startswith("session="))
    assert "HttpOnly" in session
    assert "Max-Age=3600" in session
    theme = next(c for c in cookies if c.startswith("theme="))
    assert "Secure" in theme
    assert "SameSite=Strict" in theme
    # httpx keeps the cookies; the Secure one is not sent back over plain HTTP.
    assert client.get("/cookies/echo").json() == {"session": "abc123"}
    client.get("/cookies/delete")
    assert client.get("/cookies/echo").json() == {}


def test_streaming_responses_are_chunked_on_the_wire(server: Covetd) -> None:
    with RawConnection(server.host, server.port) as conn:
        conn.send(b"GET /stream/async?n=4 HTTP/1.1\r\nHost: t\r\n\r\n")
        streamed = conn.read_response()
        conn.send(b"GET /stream/sync HTTP/1.1\r\nHost: t\r\n\r\n")
        from_thread = conn.read_response()
    assert streamed.header("transfer-encoding") == "chunked"
    assert streamed.header("content-length") is None
    assert streamed.body == b"".join(f"async {i}\n".encode() for i in range(4))
    assert from_thread.header("transfer-encoding") == "chunked"
    assert from_thread.body == b"sync 0 False\nsync 1 False\nsync 2 False\n"


def test_streaming_to_an_http10_client_is_close_delimited(server: Covetd) -> None:
    with RawConnection(server.host, server.port) as conn:
        conn.send(b"GET /stream/async?n=2 HTTP/1.0\r\n\r\n")
        response = conn.read_response()
        assert conn.is_closed()
    assert response.header("transfer-encoding") is None
    assert response.body == b"async 0\nasync 1\n"


def test_endless_stream_stops_when_the_client_leaves(server: Covetd, events_dir: Path) -> None:
    with RawConnection(server.host, server.port) as conn:
        conn.send(b"GET /stream/forever HTTP/1.1\r\nHost: t\r\n\r\n")
        conn.read_until(b"tick\n")
        wait_for_event(events_dir, "streaming")
    wait_for_event(events_dir, "generator-closed", timeout=5)


def test_simple_return_types(client: httpx.Client) -> None:
    text = client.get("/")
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    assert text.headers["content-length"] == "9"
    raw = client.get("/bytes")
    assert raw.headers["content-type"] == "application/octet-stream"
    assert raw.content == b"\x00\x01\x02"
    html = client.get("/html")
    assert html.headers["content-type"] == "text/html; charset=utf-8"
    assert html.text == "<p>héllo</p>"


def test_none_is_204_without_length_on_the_wire(server: Covetd) -> None:
    with RawConnection(server.host, server.port) as conn:
        conn.send(b"GET /nothing HTTP/1.1\r\nHost: t\r\n\r\n")
        response = conn.read_response()
        conn.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        after = conn.read_response()
    assert response.status == 204
    assert response.header("content-length") is None
    assert response.header("transfer-encoding") is None
    assert after.body == b"framework"


def test_redirect(client: httpx.Client) -> None:
    response = client.get("/redirect", params={"to": "/v1/api/ping"})
    assert response.status_code == 307
    assert response.headers["location"] == "/v1/api/ping"
    followed = client.get("/redirect", params={"to": "/v1/api/ping"}, follow_redirects=True)
    assert followed.json() == {"pong": "yes"}


def test_redirect_target_with_crlf_does_not_split_the_response(server: Covetd) -> None:
    target = quote("/x\r\nSet-Cookie: evil=1", safe="")
    head, response = raw_exchange(
        server, f"GET /redirect?to={target} HTTP/1.1\r\nHost: t\r\n\r\n".encode()
    )
    assert response.status == 307
    assert b"\r\nset-cookie" not in head.lower()
    assert response.header("set-cookie") is None
    assert "\n" not in (response.header("location") or "")


@pytest.mark.parametrize("value", ["a\r\nInjected: yes", "a\nInjected: yes", "a\x00b"])
def test_header_value_with_crlf_is_a_500_and_never_sent(server: Covetd, value: str) -> None:
    head, response = raw_exchange(
        server, f"GET /bad-header?v={quote(value)} HTTP/1.1\r\nHost: t\r\n\r\n".encode()
    )
    assert response.status == 500
    assert b"injected" not in head.lower()
    assert response.header("x-evil") is None


@pytest.mark.parametrize("name", ["X-Foo\n", "X Foo", "X-Foo\r\n"])
def test_invalid_header_name_is_a_500_and_never_sent(server: Covetd, name: str) -> None:
    head, response = raw_exchange(
        server, f"GET /bad-header-name?n={quote(name)} HTTP/1.1\r\nHost: t\r\n\r\n".encode()
    )
    assert response.status == 500
    assert b"x-foo" not in head.lower()
    assert b"\n:" not in head


# -- errors and threads ----------------------------------------------------------------------


def test_http_exception_over_http(client: httpx.Client) -> None:
    response = client.get("/teapot")
    assert response.status_code == 418
    assert response.json() == {"detail": "short and stout"}
    assert response.headers["x-tea"] == "earl grey"


def test_custom_exception_handler_over_http(client: httpx.Client) -> None:
    response = client.get("/unavailable")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json() == {"unavailable": "maintenance"}


def test_unexpected_exception_is_a_500_without_details(
    client: httpx.Client, server: Covetd
) -> None:
    response = client.get("/boom")
    assert response.status_code == 500
    assert "secret" not in response.text
    assert "Traceback" not in response.text
    assert client.get("/").status_code == 200  # the connection and the server live on
    assert "secret internal detail" in server.log()  # ... and the error log has it


def test_sync_handler_runs_off_the_event_loop_thread(client: httpx.Client) -> None:
    assert client.get("/thread").json() == {"main": False}
    assert client.get("/async-thread").json() == {"main": True}


def test_uuid_route_rejects_a_near_miss(client: httpx.Client) -> None:
    assert client.get(f"/uuids/{uuid.uuid4().hex}").status_code == 404
