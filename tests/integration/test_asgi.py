"""The ASGI bridge: covetd serving a raw ASGI app and a Starlette app."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.events import events_env, read_events, wait_for_event
from support.process import Covetd
from support.rawhttp import RawConnection

RAW = "asgi_raw:app"
STARLETTE = "asgi_starlette:app"


@pytest.fixture(scope="module")
def raw_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Covetd, Path]]:
    directory = tmp_path_factory.mktemp("raw-events")
    with Covetd(RAW, {"server": {"graceful_timeout": 2}}, env=events_env(directory)) as server:
        yield server, directory


@pytest.fixture(scope="module")
def starlette_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Covetd, Path]]:
    directory = tmp_path_factory.mktemp("starlette-events")
    with Covetd(
        STARLETTE, {"server": {"graceful_timeout": 2}}, env=events_env(directory)
    ) as server:
        yield server, directory


@pytest.fixture
def raw(raw_server: tuple[Covetd, Path]) -> Covetd:
    return raw_server[0]


@pytest.fixture
def star(starlette_server: tuple[Covetd, Path]) -> Covetd:
    return starlette_server[0]


def get(server: Covetd, path: str, method: str = "GET") -> tuple[bytes, RawConnection]:
    """Send a request on a fresh connection; returns the raw head and the connection."""
    conn = RawConnection(server.host, server.port)
    conn.send(f"{method} {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    head = conn.read_until(b"\r\n\r\n")
    conn.buffer = head + conn.buffer
    return head, conn


# -- plain requests ------------------------------------------------------------------------


def test_raw_get(raw: Covetd) -> None:
    response = httpx.get(raw.url + "/", timeout=5)
    assert response.status_code == 200
    assert response.text == "raw asgi says hi"
    assert response.headers["x-method"] == "GET"
    assert response.headers["content-length"] == str(len("raw asgi says hi"))


def test_raw_scope(raw: Covetd) -> None:
    response = httpx.get(
        raw.url + "/scope?x=1&y=caf%C3%A9", headers={"X-Custom": "Value"}, timeout=5
    )
    info = response.json()
    assert info["asgi"]["version"] == "3.0"
    assert info["http_version"] == "1.1"
    assert info["method"] == "GET"
    assert info["scheme"] == "http"
    assert info["path"] == "/scope"
    assert info["raw_path"] == "/scope"
    assert info["query_string"] == "x=1&y=caf%C3%A9"
    assert info["root_path"] == ""
    assert ["x-custom", "Value"] in info["headers"]
    assert all(name == name.lower() for name, _ in info["headers"])
    assert info["client"][0] == "127.0.0.1"
    assert info["server"] == ["127.0.0.1", raw.port]


def test_raw_scope_path_is_decoded(raw: Covetd) -> None:
    with RawConnection(raw.host, raw.port) as conn:
        conn.send(b"GET /sc%6Fpe HTTP/1.1\r\nHost: t\r\n\r\n")
        info = json.loads(conn.read_response().body)
    assert info["path"] == "/scope"
    assert info["raw_path"] == "/sc%6Fpe"


def test_starlette_get_with_path_and_query(star: Covetd) -> None:
    assert httpx.get(star.url + "/", timeout=5).text == "starlette says hi"
    response = httpx.get(star.url + "/items/5?q=term", timeout=5)
    assert response.json() == {"id": 5, "q": "term"}
    assert httpx.get(star.url + "/nowhere", timeout=5).status_code == 404


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
@pytest.mark.parametrize("which", ["raw", "starlette"])
def test_post_body_arrives_in_several_pieces(
    raw_server: tuple[Covetd, Path],
    starlette_server: tuple[Covetd, Path],
    framing: str,
    which: str,
) -> None:
    server, directory = raw_server if which == "raw" else starlette_server
    tag = f"{which}-{framing}"
    pieces = [f"{tag}-one;", f"{tag}-two;", f"{tag}-three;"]
    with RawConnection(server.host, server.port) as conn:
        if framing == "chunked":
            conn.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        else:
            length = sum(len(p) for p in pieces)
            conn.send(
                f"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {length}\r\n\r\n".encode()
            )
        for piece in pieces:
            data = piece.encode()
            conn.send(b"%x\r\n%s\r\n" % (len(data), data) if framing == "chunked" else data)
            # The app logs each piece it receives: the next one is sent only then.
            wait_for_event(directory, f"piece:{piece}")
        if framing == "chunked":
            conn.send(b"0\r\n\r\n")
        response = conn.read_response()
    assert response.status == 200
    payload = json.loads(response.body)
    assert payload["body"] == "".join(pieces)
    if which == "raw":
        # Each piece was its own message; with a Content-Length the last piece ends the
        # body, with chunked coding the terminating chunk does (an empty last message).
        more = [m["more_body"] for m in payload["messages"]]
        assert all(m["type"] == "http.request" for m in payload["messages"])
        expected = [True, True, False] if framing == "content-length" else [True, True, True, False]
        assert more == expected
    else:
        assert payload["pieces"] == pieces


# -- responses -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app_server", "path", "body"),
    [
        ("raw", "/stream", b"part 0\npart 1\npart 2\n"),
        ("star", "/stream", b"chunk 0\nchunk 1\nchunk 2\n"),
    ],
)
def test_streaming_response_is_chunked_on_the_wire(
    request: pytest.FixtureRequest, app_server: str, path: str, body: bytes
) -> None:
    server: Covetd = request.getfixturevalue(app_server)
    _, conn = get(server, path)
    with conn:
        response = conn.read_response()
        conn.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")  # and the connection is reusable
        assert conn.read_response().status == 200
    assert response.header("transfer-encoding") == "chunked"
    assert response.header("content-length") is None
    assert response.body == body


def test_streaming_with_the_apps_own_length_is_not_chunked(raw: Covetd) -> None:
    _, conn = get(raw, "/stream-with-length")
    with conn:
        response = conn.read_response()
    assert response.header("content-length") == "6"
    assert response.header("transfer-encoding") is None
    assert response.body == b"abcdef"


def test_content_length_added_to_a_single_body_message(raw: Covetd) -> None:
    _, conn = get(raw, "/one-body")
    with conn:
        response = conn.read_response()
    assert response.status == 201
    assert response.header("content-length") == str(len(b"exactly one message"))
    assert response.header("transfer-encoding") is None
    assert response.header("x-one") == "1"
    assert response.body == b"exactly one message"


def test_204_from_an_app_has_no_length(raw: Covetd) -> None:
    _, conn = get(raw, "/no-content")
    with conn:
        response = conn.read_response()
        conn.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert conn.read_response().status == 200
    assert response.status == 204
    assert response.header("content-length") is None


@pytest.mark.parametrize(("app_server", "path"), [("raw", "/head"), ("star", "/")])
def test_head_sends_the_length_but_no_body(
    request: pytest.FixtureRequest, app_server: str, path: str
) -> None:
    server: Covetd = request.getfixturevalue(app_server)
    with RawConnection(server.host, server.port) as conn:
        conn.send(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        got = conn.read_response()
        conn.send(f"HEAD {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        head = conn.read_response(head_request=True)
        conn.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")  # no stray body bytes in between
        after = conn.read_response()
    assert head.status == 200
    assert head.header("content-length") == got.header("content-length") == str(len(got.body))
    assert head.body == b""
    assert after.status == 200


def test_head_of_a_streamed_response_sends_no_body(raw: Covetd) -> None:
    with RawConnection(raw.host, raw.port) as conn:
        conn.send(b"HEAD /stream HTTP/1.1\r\nHost: t\r\n\r\n")
        head = conn.read_response(head_request=True)
        conn.send(b"GET /one-body HTTP/1.1\r\nHost: t\r\n\r\n")
        after = conn.read_response()
    assert head.status == 200
    assert after.body == b"exactly one message"


# -- disconnects -------------------------------------------------------------------------------


def test_raw_app_receives_http_disconnect_after_the_client_leaves(
    raw_server: tuple[Covetd, Path],
) -> None:
    server, directory = raw_server
    _, conn = get(server, "/wait-disconnect")
    with conn:
        response_head = conn.read_until(b"waiting\n")
        wait_for_event(directory, "waiting")
        assert "received:http.disconnect" not in read_events(directory)
    wait_for_event(directory, "received:http.disconnect", timeout=5)
    assert b"200" in response_head


def test_raw_app_send_fails_after_the_client_leaves(raw_server: tuple[Covetd, Path]) -> None:
    """ASGI 2.4 (which covetd announces): ``send`` on a closed connection raises OSError,
    so an endless stream stops instead of producing into the void forever."""
    server, directory = raw_server
    _, conn = get(server, "/stream-forever")
    with conn:
        conn.read_until(b"tick\n")
        wait_for_event(directory, "streaming")
    events = wait_for_event(directory, "send-failed", timeout=5)
    (failure,) = [e for e in events if e.startswith("send-failed:")]
    assert failure.endswith(":True"), f"send raised a non-OSError: {failure}"


def test_starlette_endless_stream_stops_when_the_client_leaves(
    starlette_server: tuple[Covetd, Path],
) -> None:
    server, directory = starlette_server
    _, conn = get(server, "/stream-forever")
    with conn:
        conn.read_until(b"tick\n")
        wait_for_event(directory, "streaming")
    wait_for_event(directory, "generator-closed", timeout=5)


def test_starlette_sees_is_disconnected(starlette_server: tuple[Covetd, Path]) -> None:
    server, directory = starlette_server
    _, conn = get(server, "/wait-disconnect")
    with conn:
        conn.read_until(b"waiting\n")
        wait_for_event(directory, "waiting")
    wait_for_event(directory, "disconnected", timeout=5)


# -- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app_server", "path"),
    [
        ("raw", "/bad-header-value"),
        ("raw", "/bad-header-lf"),
        ("raw", "/bad-header-name"),
        ("star", "/bad-header"),
    ],
)
def test_header_with_cr_lf_from_the_app_is_refused(
    request: pytest.FixtureRequest, app_server: str, path: str
) -> None:
    server: Covetd = request.getfixturevalue(app_server)
    head, conn = get(server, path)
    with conn:
        response = conn.read_response()
    assert response.status == 500
    assert b"injected" not in head.lower()
    assert b"should not be sent" not in response.body


@pytest.mark.parametrize(
    ("app_server", "path", "secret"),
    [
        ("raw", "/raise", b"raw asgi secret"),
        ("star", "/boom", b"starlette secret"),
        ("raw", "/no-response", b""),
        ("raw", "/start-only", b""),
    ],
)
def test_app_failures_are_a_500(
    request: pytest.FixtureRequest, app_server: str, path: str, secret: bytes
) -> None:
    server: Covetd = request.getfixturevalue(app_server)
    _, conn = get(server, path)
    with conn:
        response = conn.read_response()
    assert response.status == 500
    assert b"Traceback" not in response.body
    if secret:
        assert secret not in response.body
    assert httpx.get(server.url + "/", timeout=5).status_code == 200


def test_app_raising_after_the_head_was_sent_closes_the_connection(raw: Covetd) -> None:
    head, conn = get(raw, "/raise-after-start")
    with conn:
        conn.read_until(b"\r\n\r\n")
        rest = conn.read_to_close()  # the server closes: the chunked body never ends
    assert head.startswith(b"HTTP/1.1 200")
    assert b"partial" in rest
    assert not rest.endswith(b"0\r\n\r\n")


# -- lifespan ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app", "path", "expected"),
    [
        (RAW, "/scope", "hello from lifespan"),
        (STARLETTE, "/state", "hello from starlette lifespan"),
    ],
)
def test_lifespan_startup_state_and_shutdown(
    covetd, tmp_path: Path, app: str, path: str, expected: str
) -> None:
    server = covetd(app, env=events_env(tmp_path))
    assert read_events(tmp_path) == ["startup"]
    data = httpx.get(server.url + path, timeout=5).json()
    state = data["state"]["greeting"] if "state" in data else data["greeting"]
    assert state == expected
    server.signal(signal.SIGTERM)
    assert server.wait(10) == 0
    assert read_events(tmp_path) == ["startup", "shutdown"]


@pytest.mark.parametrize(
    ("app", "message"),
    [
        ("asgi_raw:failing_lifespan_app", "raw-asgi startup failed: no credentials for the queue"),
        (
            "asgi_starlette:failing_app",
            "starlette startup failed: settings.DATABASE_URL is not set",
        ),
    ],
)
def test_lifespan_startup_failure_stops_the_worker(app: str, message: str) -> None:
    server = Covetd(app)
    started = time.monotonic()
    try:
        server.start(wait=False)
        code = server.wait(5)
        log = server.log()
    finally:
        server.stop()
    assert code != 0
    assert time.monotonic() - started < 5
    assert message in log


def test_app_without_lifespan_support_still_serves(covetd) -> None:
    server = covetd("asgi_raw:no_lifespan_app")
    assert httpx.get(server.url + "/", timeout=5).text == "served without lifespan"
    server.signal(signal.SIGTERM)
    assert server.wait(10) == 0
