"""Issue 3: systemd's notify protocol and socket activation, without systemd.

A datagram socket stands in for systemd (``support.sdnotify``): covetd's master must
send READY=1 only once every worker is ready, RELOADING=1 (with MONOTONIC_USEC) then
READY=1 around a HUP, STOPPING=1 on TERM, STATUS= lines, and WATCHDOG=1 at half of
WATCHDOG_USEC. ``systemd-socket-activate`` passes covetd a listening socket the way
a ``.socket`` unit does (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES).
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.process import wait_for
from support.proctree import assert_gone, children, wait_for_children
from support.rawhttp import RawConnection
from support.sdnotify import NotifyListener
from support.slots import get
from support.wrapped import WrappedCovetd

APP = "master_failures:app"
STARTUP_DELAY = 0.5  # each worker's app startup, so readiness takes a visible moment


@pytest.fixture
def listener() -> Iterator[NotifyListener]:
    directory = Path(tempfile.mkdtemp(prefix="sdn-"))  # short: AF_UNIX paths are limited
    with NotifyListener(directory) as notify:
        yield notify
    shutil.rmtree(directory)


def _env(listener: NotifyListener, state_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "NOTIFY_SOCKET": listener.path,
        "COVETD_TEST_STATE_DIR": str(state_dir),
        "COVETD_TEST_STARTUP_DELAY": str(STARTUP_DELAY),
        **extra,
    }


def _started_apps(state_dir: Path) -> int:
    return len(list(state_dir.glob("startup-*")))


def test_ready_reloading_ready_stopping(covetd, listener, tmp_path) -> None:
    server = covetd(APP, {"server": {"workers": 2}}, wait=False, env=_env(listener, tmp_path))
    master = server.proc.pid

    ready = listener.wait_for_state("READY", timeout=15)
    assert _started_apps(tmp_path) == 2, "READY=1 before every worker's app started"
    assert server.log().count(" ready (generation 1") == 2, server.log()
    assert ready.fields.get("STATUS") == "2 of 2 workers ready, generation 1", ready.fields
    assert ready.fields.get("MAINPID") == str(master)
    assert any(
        m.fields.get("STATUS") == "1 of 2 workers ready, generation 1" for m in listener.messages
    ), "no STATUS while the workers were coming up"
    workers = wait_for_children(master, 2)
    assert get(server.port).status == 200

    hup_at = time.clock_gettime(time.CLOCK_MONOTONIC)
    server.signal(signal.SIGHUP)
    reloading = listener.wait_for_state("RELOADING", timeout=5)
    received_at = time.clock_gettime(time.CLOCK_MONOTONIC)
    usec = int(reloading.fields["MONOTONIC_USEC"])
    assert hup_at * 1e6 <= usec <= received_at * 1e6, (hup_at, usec, received_at)
    ready_again = listener.wait_for_state("READY", timeout=15)
    assert _started_apps(tmp_path) == 4, "READY=1 before the new generation started"
    assert "generation 2" in ready_again.fields.get("STATUS", ""), ready_again.fields
    assert_gone(workers)  # the old generation retired
    new_workers = children(master)

    server.signal(signal.SIGTERM)
    listener.wait_for_state("STOPPING", timeout=5)
    assert server.wait(15) == 0, server.log()
    listener.drain()
    assert listener.states() == ["READY", "RELOADING", "READY", "STOPPING"]
    assert {m.pid for m in listener.messages} == {master}, "only the master may notify"
    assert_gone(new_workers)


def test_refused_reload_still_completes_the_reload_handshake(covetd, listener, tmp_path) -> None:
    """A HUP with a broken config file: the old config keeps serving, and systemd
    (``Type=notify-reload`` waits for RELOADING=1, then READY=1) hears that the
    reload is over, with the reason in STATUS, instead of waiting for a timeout."""
    server = covetd(APP, {"server": {"workers": 1}}, wait=False, env=_env(listener, tmp_path))
    listener.wait_for_state("READY", timeout=15)
    server.config_path.write_text("app: [unclosed\n")
    server.signal(signal.SIGHUP)
    refused = listener.wait_for(
        lambda m: "reload refused" in m.fields.get("STATUS", ""), 5, "STATUS with the reason"
    )
    assert get(server.port).status == 200
    listener.wait_for_state("READY", timeout=3)
    assert listener.states() == ["READY", "RELOADING", "READY"], [
        m.fields for m in listener.messages
    ]
    assert refused.pid == server.proc.pid


def test_watchdog_pings_at_half_the_interval(covetd, listener, tmp_path) -> None:
    watchdog_usec = 400_000
    server = covetd(
        APP,
        {"server": {"workers": 2}},
        wait=False,
        env=_env(listener, tmp_path, WATCHDOG_USEC=str(watchdog_usec)),
    )
    listener.wait_for_state("READY", timeout=15)
    pings = []
    for _ in range(6):
        pings.append(listener.wait_for(lambda m: m.fields.get("WATCHDOG") == "1", 2, "WATCHDOG"))
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(pings)]
    print("watchdog gaps: " + ", ".join(f"{gap:.3f}s" for gap in gaps))
    assert max(gaps) < watchdog_usec / 1e6, "a ping came later than WatchdogSec"
    assert min(gaps) > watchdog_usec / 1e6 / 4, "pinging far more often than asked"
    assert {m.pid for m in pings} == {server.proc.pid}
    assert server.stop() == 0


# -- socket activation ------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_socket_activation_serves_on_the_passed_socket(tmp_path) -> None:
    tool = shutil.which("systemd-socket-activate")
    if tool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-socket-activate is needed (apt-get install systemd)")
        pytest.skip("systemd-socket-activate is not installed")
    port = _free_port()  # the tool binds it itself; taken in between = a clear bind error
    server = WrappedCovetd(
        APP,
        {"server": {"workers": 2, "bind": [f"unix:{tmp_path}/not-used.sock"]}},
        bind=False,
        prefix=[tool, f"--listen=127.0.0.1:{port}", "--fdname=web", "-E", "PYTHONUNBUFFERED=1"],
    )
    server.port = port
    try:
        server.start(wait=False)
        wait_for(
            lambda: (
                f"Listening on 127.0.0.1:{port}" in server.log() or server.proc.poll() is not None
            ),
            10.0,
            what="systemd-socket-activate to listen",
        )
        # The first connection makes the tool exec covetd; it must be served too.
        with RawConnection("127.0.0.1", port, timeout=15.0) as first:
            first.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            assert first.read_response().status == 200, server.log()
            for _ in range(3):
                first.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                assert first.read_response().body == b"hello"
        master = server.proc.pid  # the tool execs covetd in its own process
        workers = wait_for_children(master, 2)
        assert get(port).status == 200
        log = server.log()
        assert "on systemd:web" in log, log
        assert not (tmp_path / "not-used.sock").exists(), "bound server.bind despite LISTEN_FDS"
        server.signal(signal.SIGTERM)
        assert server.wait(15) == 0, server.log()
        assert_gone(workers)
    except subprocess.TimeoutExpired:
        pytest.fail(f"covetd did not stop:\n{server.log()}")
    finally:
        server.stop()
