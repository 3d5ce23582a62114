"""The error log as JSON lines (issue 7, "Logs"): a handler's exception is one valid
JSON object with level, ts, pid (the worker's) and message, plus ``request_id`` when
the request_id middleware runs."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from support.process import Covetd, wait_for
from support.proctree import children
from support.rawhttp import RawConnection

REQUEST_ID = "metrics-log-4f1c2e"
TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def boom(covetd: Callable[..., Covetd]) -> tuple[Covetd, dict[str, Any], list[str]]:
    """Serve ``/boom`` once (with our X-Request-ID); the exception's log entry, and
    every line of the log."""
    server = covetd(
        "metrics_app:app",
        {
            "logging": {"format": "json", "level": "info"},
            "middleware": [{"request_id": {"trust_incoming": True}}],
        },
    )
    with RawConnection(server.host, server.port) as conn:
        conn.send(f"GET /boom HTTP/1.1\r\nHost: t\r\nX-Request-ID: {REQUEST_ID}\r\n\r\n".encode())
        response = conn.read_response()
    assert response.status == 500
    assert response.header("x-request-id") == REQUEST_ID  # the middleware did run
    log = wait_for(
        lambda: "metrics app exploded" in (text := server.log()) and text,
        what="the exception in the error log",
    )
    lines = [line for line in log.splitlines() if line.strip()]
    (entry,) = [json.loads(line) for line in lines if "metrics app exploded" in line]
    return server, entry, lines


def test_a_handler_exception_is_one_json_line(covetd: Callable[..., Covetd]) -> None:
    server, entry, lines = boom(covetd)
    for line in lines:  # every line of the log is one JSON object
        assert isinstance(json.loads(line), dict), line
    assert entry["level"] == "error"
    assert TS.fullmatch(entry["ts"]), entry["ts"]
    assert server.proc is not None
    assert entry["pid"] in children(server.proc.pid), "not the worker's pid"
    assert "GET /boom HTTP/1.1" in entry["message"]
    assert "RuntimeError: metrics app exploded" in entry["exc"]


def test_a_handler_exception_logs_its_request_id(covetd: Callable[..., Covetd]) -> None:
    _, entry, _ = boom(covetd)
    assert entry.get("request_id") == REQUEST_ID, entry
