"""Every invalid corpus request, sent to a real covetd over a raw socket.

Each is followed, in the same write, by a valid request to a side-effect endpoint. The
server must answer the status of the corpus's ``NNN.json`` with ``connection: close``,
close the connection, and never run (nor answer) the request that followed. Corpus
requests aimed at ``/count/iNNN`` must not have run either.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from pathlib import Path

import pytest
from support.probe import assert_closed_without_more, counter, read_response, request
from support.rawhttp import RawConnection

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "http"
INVALID = sorted((CORPUS / "invalid").glob("*.http"))


@pytest.fixture(scope="module")
def server(module_covetd):
    return module_covetd("engine_probe:app")


@pytest.mark.parametrize("path", INVALID, ids=lambda p: f"invalid/{p.stem}")
def test_invalid_corpus_request_on_the_wire(server, path: Path) -> None:
    want = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    following = f"after-{path.stem}"
    with RawConnection(server.host, server.port) as conn:
        conn.send(path.read_bytes() + request(f"/count/{following}"))
        head = conn.read_until(b"\r\n")
        status = want["status"]
        assert head == f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n".encode(), want["why"]
        conn.buffer = head + conn.buffer
        response = read_response(conn)
        assert response.header("connection") == "close", response.headers
        assert_closed_without_more(conn)
    assert counter(server, following) == 0, "the request after the invalid one ran"
    assert counter(server, f"i{path.stem}") == 0, "the invalid request ran"
