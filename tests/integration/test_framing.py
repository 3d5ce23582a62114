"""Framing rules on the wire: a request whose framing cannot be trusted is answered
400 with ``connection: close``, the connection is closed, and nothing sent after it
runs. "Runs" is observed through the probe app's side-effect counters
(``/count/{key}``), read back over another connection.
"""

from __future__ import annotations

import uuid

import pytest
from support.probe import (
    assert_error_and_close,
    counter,
    read_response,
    read_responses_until_close,
    request,
    wait_for_state,
)
from support.rawhttp import RawConnection


@pytest.fixture(scope="module")
def server(module_covetd):
    return module_covetd("engine_probe:app")


def key() -> str:
    return uuid.uuid4().hex[:12]


def after(k: str) -> bytes:
    """A valid request pipelined behind the bad one: it must never run."""
    return request(f"/count/{k}-after")


def send_and_expect_refusal(server, data: bytes, status: int = 400) -> None:
    with RawConnection(server.host, server.port) as conn:
        conn.send(data)
        response = assert_error_and_close(conn, status)
    assert b"Traceback" not in response.body


# Each head is sent with {path} = /count/<key>, followed by a pipelined GET.
HEAD_ERRORS = [
    ("missing-host", "GET {path} HTTP/1.1\r\nUser-Agent: x\r\n\r\n"),
    ("duplicate-host", "GET {path} HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
    ("duplicate-host-http10", "GET {path} HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n"),
    ("http09", "GET {path}\r\n\r\n"),
    (
        "cl-and-te",
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
    (
        "te-and-cl",
        "POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        "Content-Length: 5\r\n\r\n0\r\n\r\n",
    ),
    (
        "duplicate-cl",
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
    ),
    (
        "differing-cl",
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy",
    ),
    ("cl-with-sign", "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\nx"),
    ("cl-list", "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1,1\r\n\r\nx"),
    (
        "te-chunked-gzip",
        "POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
    ),
    (
        "te-gzip-chunked",
        "POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    ),
    ("te-identity", "POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n"),
    ("te-in-http10", "POST {path} HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("obs-fold", "GET {path} HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n"),
    ("bare-lf", "GET {path} HTTP/1.1\nHost: x\n\n"),
    ("nul-in-header", "GET {path} HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n"),
    ("space-before-colon", "GET {path} HTTP/1.1\r\nHost: x\r\nX-A : a\r\n\r\n"),
    ("invalid-host-value", "GET {path} HTTP/1.1\r\nHost: x/y\r\n\r\n"),
]


@pytest.mark.parametrize("template", [t for _, t in HEAD_ERRORS], ids=[i for i, _ in HEAD_ERRORS])
def test_head_framing_error(server, template: str) -> None:
    k = key()
    bad = template.format(path=f"/count/{k}").encode("latin-1")
    send_and_expect_refusal(server, bad + after(k))
    assert counter(server, k) == 0, "the refused request ran"
    assert counter(server, f"{k}-after") == 0, "a request after the refused one ran"


@pytest.mark.parametrize(
    ("template", "status"),
    [
        ("GET {path} HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        ("FOO {path} HTTP/1.1\r\nHost: x\r\n\r\n", 501),
        ("POST {path} HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nContent-Length: 0\r\n\r\n", 417),
    ],
    ids=["505-version", "501-method", "417-expectation"],
)
def test_other_head_refusals_close_too(server, template: str, status: int) -> None:
    k = key()
    send_and_expect_refusal(server, template.format(path=f"/count/{k}").encode() + after(k), status)
    assert counter(server, k) == counter(server, f"{k}-after") == 0


def test_the_counter_endpoint_does_count(server) -> None:
    # The control for the tests above: the same pipeline, well-formed, runs twice.
    k = key()
    with RawConnection(server.host, server.port) as conn:
        conn.send(request(f"/count/{k}") + after(k))
        assert [read_response(conn).status for _ in range(2)] == [200, 200]
    assert (counter(server, k), counter(server, f"{k}-after")) == (1, 1)


# -- smuggling classics: the hidden request must never run ----------------------------


def hidden(k: str) -> str:
    return f"GET /count/{k}-hidden HTTP/1.1\r\nHost: x\r\n\r\n"


def smuggling_payloads(k: str) -> dict[str, str]:
    inner = hidden(k)
    return {
        # Front end frames by Content-Length, back end by chunked: "0\r\n\r\n" ends the
        # body for the back end and the hidden request follows.
        "CL.TE": f"POST /count/{k} HTTP/1.1\r\nHost: x\r\nContent-Length: {5 + len(inner)}\r\n"
        f"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n{inner}",
        # Front end frames by chunked, back end by Content-Length: 4.
        "TE.CL": f"POST /count/{k} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        f"Content-Length: 4\r\n\r\n{len(inner):x}\r\n{inner}\r\n0\r\n\r\n",
        # Transfer-Encoding obfuscated over two fields: combined "gzip, chunked".
        "TE.TE-split": f"POST /count/{k} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n"
        f"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n{inner}",
        # A Content-Length body that only looks like a request (control: never parsed).
        "CL-body": f"POST /count/{k} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(inner)}\r\n"
        f"\r\n{inner}",
        # The body of a request that asks for an upgrade no one grants is still its body.
        "upgrade-body": f"POST /count/{k} HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\n"
        f"Connection: Upgrade\r\nContent-Length: {len(inner)}\r\n\r\n{inner}",
    }


SMUGGLING = {
    "CL.TE": [400],
    "TE.CL": [400],
    "TE.TE-split": [400],
    "CL-body": [200, 200],
    "upgrade-body": [200, 200],
}


@pytest.mark.parametrize(("name", "statuses"), SMUGGLING.items(), ids=list(SMUGGLING))
def test_smuggled_request_never_runs(server, name: str, statuses: list[int]) -> None:
    # The payload, then a last request that closes: a refused payload gets only its 400;
    # an accepted one gets its answer and the last request's, and nothing in between.
    k = key()
    last = request(f"/count/{k}-last", headers="Connection: close\r\n")
    with RawConnection(server.host, server.port) as conn:
        conn.send(smuggling_payloads(k)[name].encode() + last)
        responses = read_responses_until_close(conn)
    assert [r.status for r in responses] == statuses
    assert responses[-1].header("connection") == "close"
    assert counter(server, f"{k}-hidden") == 0, "the smuggled request ran"


# -- where the bad request sits -------------------------------------------------------


def test_bad_request_after_good_ones_is_answered_after_them(server) -> None:
    # protocol.py: "the error answer is queued behind the responses still owed, then the
    # connection closes". The earlier responses must not announce a close (RFC 9112
    # §9.6: nothing may follow a "close" response), the 400 must come, and the request
    # after it must not run.
    k = key()
    with RawConnection(server.host, server.port) as conn:
        conn.send(
            request("/seq/1?s=0.2")
            + request("/seq/2")
            + b"GET / HTTP/1.1\r\n\r\n"  # no Host
            + after(k)
        )
        first, second = read_response(conn), read_response(conn)
        assert (first.status, first.body, second.status, second.body) == (
            200,
            b"seq 1",
            200,
            b"seq 2",
        )
        assert second.header("connection") != "close", "the 400 was dropped"
        assert_error_and_close(conn, 400)
    assert counter(server, f"{k}-after") == 0


def test_bad_head_arriving_in_pieces(server) -> None:
    k = key()
    bad = f"POST /count/{k} HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"
    with RawConnection(server.host, server.port) as conn:
        pieces = [bad[i : i + 5].encode() for i in range(0, len(bad), 5)] + [b"abcd" + after(k)]
        for piece in pieces:
            try:
                conn.send(piece)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server answered and closed as soon as the head was bad
        assert_error_and_close(conn, 400)
    assert counter(server, k) == counter(server, f"{k}-after") == 0


@pytest.mark.parametrize(
    "bad_body",
    [b"zz\r\nab\r\n0\r\n\r\n", b"2\r\nabc\r\n0\r\n\r\n", b"10000000000000002\r\nab\r\n0\r\n\r\n"],
    ids=["size-not-hex", "data-too-long", "size-overflow"],
)
def test_bad_chunked_body_for_a_handler_that_reads_it(server, bad_body: bytes) -> None:
    k = key()
    with RawConnection(server.host, server.port) as conn:
        conn.send(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + bad_body
            + after(k)
        )
        assert_error_and_close(conn, 400)
    assert counter(server, f"{k}-after") == 0


def test_bad_chunk_after_the_handler_started_reading(server) -> None:
    k = key()
    with RawConnection(server.host, server.port) as conn:
        conn.send(
            f"POST /hold-body/{k} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            "5\r\nhello\r\n".encode()
        )
        wait_for_state(server, k, "reading")
        conn.send(b"5\r\nwor\r\n" + after(k))  # chunk data shorter than its size
        assert_error_and_close(conn, 400)
    wait_for_state(server, k, "HTTPException")
    assert counter(server, f"{k}-after") == 0


def test_engine_error_answer_is_the_status_phrase_only(server) -> None:
    with RawConnection(server.host, server.port) as conn:
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
        response = assert_error_and_close(conn, 400)
    assert response.body == b"Bad Request\n"
    assert response.header("content-type") == "text/plain; charset=utf-8"
    assert response.header("content-length") == str(len(response.body))
