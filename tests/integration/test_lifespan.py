"""Covet lifespan in a real covetd process: hooks around serving, and failed startups."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest
from support.events import events_env, read_events, wait_for_event
from support.process import Covetd
from support.rawhttp import RawConnection


def test_startup_runs_before_the_first_request_is_served(covetd, tmp_path: Path) -> None:
    server = covetd(
        "lifespan_app:app",
        env={**events_env(tmp_path), "COVETD_TEST_STARTUP_DELAY": "0.5"},
        wait=False,
    )
    # Sent at once: the listening socket exists before covetd starts, so the request
    # waits in the accept queue while the (slow) startup runs.
    response = httpx.get(server.url + "/", timeout=15.0)
    assert response.json() == {"ready": True, "resource": "pool"}
    events = read_events(tmp_path)
    assert events == ["startup-sync", "startup-async", "lifespan-enter", "request"]


def test_shutdown_hooks_run_on_sigterm(covetd, tmp_path: Path) -> None:
    server = covetd("lifespan_app:app", env=events_env(tmp_path))
    assert httpx.get(server.url + "/", timeout=5.0).status_code == 200
    assert "lifespan-exit" not in read_events(tmp_path)
    server.signal(signal.SIGTERM)
    assert server.wait(10) == 0
    events = read_events(tmp_path)
    assert events[events.index("request") :] == [
        "request",
        "lifespan-exit",
        "shutdown-async",
        "shutdown-sync",
    ]


def test_shutdown_waits_for_the_request_in_flight(covetd, tmp_path: Path) -> None:
    server = covetd("lifespan_app:app", env=events_env(tmp_path))
    with RawConnection(server.host, server.port, timeout=10) as conn:
        conn.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        wait_for_event(tmp_path, "slow-started")
        server.signal(signal.SIGTERM)
        response = conn.read_response()
    assert (response.status, response.body) == (200, b"slow done")
    assert server.wait(10) == 0
    events = read_events(tmp_path)
    assert events.index("slow-done") < events.index("lifespan-exit")
    assert events.index("slow-done") < events.index("shutdown-async")


@pytest.mark.parametrize(
    ("app", "message"),
    [
        ("failing_startup_app:app", "cannot reach the database at db.internal:5432"),
        (
            "failing_startup_app:lifespan_app",
            "the cache at cache.internal:6379 refused the connection",
        ),
    ],
)
def test_failed_startup_exits_non_zero_with_the_apps_message(app: str, message: str) -> None:
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
    assert "Traceback" not in log


def test_failed_startup_shows_the_traceback_in_debug() -> None:
    server = Covetd("failing_startup_app:app", args=["--log-level", "debug"])
    try:
        server.start(wait=False)
        code = server.wait(5)
        log = server.log()
    finally:
        server.stop()
    assert code != 0
    assert "cannot reach the database" in log
    assert "Traceback" in log
    assert "in connect" in log  # the app's own frame
