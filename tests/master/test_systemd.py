"""sd_notify over real datagram sockets, the watchdog rules, and socket activation.

Socket activation puts descriptors at 3, 4, ...: those are the test process's own, so
every test that adopts real descriptors does it in a child process.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.process import REPO, wait_for

from covetd.master.systemd import (
    SD_LISTEN_FDS_START,
    SEND_TIMEOUT,
    Notifier,
    SocketActivationError,
    listen_fds,
    watchdog_interval,
)

SOCKET_ACTIVATE = "/usr/bin/systemd-socket-activate"


# --- sd_notify ----------------------------------------------------------------------------


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path: unix socket paths are limited to 107 bytes."""
    with tempfile.TemporaryDirectory(prefix="sd-") as name:
        yield Path(name)


@pytest.fixture
def listener(short_dir: Path) -> Iterator[tuple[socket.socket, str]]:
    """What systemd listens on: a unix datagram socket at a path, and that path."""
    path = str(short_dir / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        yield sock, path


@pytest.fixture
def notifier(listener: tuple[socket.socket, str]) -> Iterator[Notifier]:
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": listener[1]})
    yield notifier
    notifier.close()


class RecordingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def debug_log() -> Iterator[list[logging.LogRecord]]:
    """Records of ``covetd.error`` at every level (it may not propagate to the root)."""
    handler = RecordingHandler()
    logger = logging.getLogger("covetd.error")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler.records
    logger.removeHandler(handler)
    logger.setLevel(level)


def received(sock: socket.socket) -> list[bytes]:
    """Every datagram waiting on ``sock`` (at least one, within 5 s)."""
    sock.settimeout(5)
    datagrams = [sock.recv(4096)]
    sock.setblocking(False)
    while True:
        try:
            datagrams.append(sock.recv(4096))
        except BlockingIOError:
            return datagrams


def monotonic_usec() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


@pytest.mark.parametrize(
    ("send", "expected"),
    [
        (lambda n: n.ready(), b"READY=1"),
        (lambda n: n.ready("serving 4 workers"), b"READY=1\nSTATUS=serving 4 workers"),
        (lambda n: n.stopping(), b"STOPPING=1"),
        (lambda n: n.stopping("draining"), b"STOPPING=1\nSTATUS=draining"),
        (lambda n: n.status("2 of 4 workers up"), b"STATUS=2 of 4 workers up"),
        (lambda n: n.watchdog(), b"WATCHDOG=1"),
        (lambda n: n.notify("READY=1\nSTATUS=up"), b"READY=1\nSTATUS=up"),
        (lambda n: n.notify(MAINPID=4242, STATUS="x"), b"MAINPID=4242\nSTATUS=x"),
        (lambda n: n.notify("STATUS=a", ERRNO=5), b"STATUS=a\nERRNO=5"),
        (lambda n: n.status("line one\nline two"), b"STATUS=line one line two"),
        (lambda n: n.status("caf\u00e9 \udcff"), "STATUS=caf\u00e9 ?".encode()),
    ],
)
def test_each_call_sends_exactly_one_datagram(
    notifier: Notifier,
    listener: tuple[socket.socket, str],
    send: Callable[[Notifier], bool],
    expected: bytes,
) -> None:
    assert notifier.enabled
    assert send(notifier) is True
    assert received(listener[0]) == [expected]


def test_reloading_carries_the_monotonic_time_in_the_same_datagram(
    notifier: Notifier, listener: tuple[socket.socket, str]
) -> None:
    before = monotonic_usec()
    assert notifier.reloading()
    after = monotonic_usec()
    [datagram] = received(listener[0])
    reloading, stamp = datagram.decode().split("\n")
    assert reloading == "RELOADING=1"
    name, _, value = stamp.partition("=")
    assert name == "MONOTONIC_USEC"
    assert before <= int(value) <= after


def test_a_startup_sequence_arrives_in_order(
    notifier: Notifier, listener: tuple[socket.socket, str]
) -> None:
    notifier.status("starting")
    notifier.ready()
    notifier.watchdog()
    notifier.stopping()
    got: list[bytes] = []
    while len(got) < 4:
        got.extend(received(listener[0]))
    assert got == [b"STATUS=starting", b"READY=1", b"WATCHDOG=1", b"STOPPING=1"]


def test_abstract_socket() -> None:
    name = f"covetd-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        notifier = Notifier.from_environ({"NOTIFY_SOCKET": "@" + name})
        try:
            assert notifier.ready("up")
            assert received(sock) == [b"READY=1\nSTATUS=up"]
        finally:
            notifier.close()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_one_socket_is_reused(notifier: Notifier, listener: tuple[socket.socket, str]) -> None:
    notifier.watchdog()
    received(listener[0])
    before = open_fds()
    for _ in range(5):  # fewer than net.unix.max_dgram_qlen, whose default is 10
        notifier.watchdog()
    assert len(received(listener[0])) == 5
    assert open_fds() == before


def test_a_full_queue_costs_at_most_the_send_timeout(
    notifier: Notifier, listener: tuple[socket.socket, str]
) -> None:
    """systemd not reading: each notification gives up after SEND_TIMEOUT, never raises."""
    sent = 0
    while notifier.watchdog():  # fills the receiver's queue; the first refusal waits
        sent += 1
        assert sent < 100_000
    started = time.monotonic()
    assert notifier.status("still here") is False
    assert SEND_TIMEOUT * 0.5 <= time.monotonic() - started < SEND_TIMEOUT + 1
    assert len(received(listener[0])) == sent
    assert notifier.ready()
    assert received(listener[0]) == [b"READY=1"]


@pytest.mark.parametrize("environ", [{}, {"NOTIFY_SOCKET": ""}, {"NOTIFY_SOCKET": "relative"}])
def test_without_a_usable_socket_nothing_is_sent(environ: dict[str, str]) -> None:
    notifier = Notifier.from_environ(environ)
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.reloading() is False
    assert notifier.watchdog() is False
    notifier.close()


def test_nobody_listening_is_logged_at_debug_and_never_raises(
    short_dir: Path, debug_log: list[logging.LogRecord]
) -> None:
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": str(short_dir / "absent")})
    assert notifier.enabled
    assert notifier.ready() is False
    assert notifier.stopping() is False
    notifier.close()
    assert [record.levelno for record in debug_log] == [logging.DEBUG, logging.DEBUG]
    assert "absent" in debug_log[0].getMessage()


def test_systemd_going_away_and_coming_back(short_dir: Path) -> None:
    path = str(short_dir / "notify")
    notifier = Notifier(path)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as first:
            first.bind(path)
            assert notifier.ready()
            assert received(first) == [b"READY=1"]
        assert notifier.watchdog() is False  # socket file left, nobody reading: refused
        os.unlink(path)
        assert notifier.watchdog() is False
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as second:
            second.bind(path)
            assert notifier.watchdog()
            assert received(second) == [b"WATCHDOG=1"]
    finally:
        notifier.close()


def test_a_field_name_that_is_not_one_is_a_programming_error(notifier: Notifier) -> None:
    with pytest.raises(ValueError, match="not an sd_notify field name"):
        notifier.notify(ready=1)


# --- watchdog -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "pid", "interval"),
    [
        ({}, None, None),
        ({"WATCHDOG_USEC": "30000000"}, None, 15.0),
        ({"WATCHDOG_USEC": "1000"}, None, 0.0005),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4242"}, 4242, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4242"}, 4343, None),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "junk"}, 4242, None),
        ({"WATCHDOG_PID": "4242"}, 4242, None),
        ({"WATCHDOG_USEC": "0"}, None, None),
        ({"WATCHDOG_USEC": "-5"}, None, None),
        ({"WATCHDOG_USEC": "soon"}, None, None),
        ({"WATCHDOG_USEC": ""}, None, None),
        ({"WATCHDOG_USEC": "²"}, None, None),
    ],
)
def test_watchdog_interval(
    environ: dict[str, str], pid: int | None, interval: float | None
) -> None:
    assert watchdog_interval(environ, pid=pid) == interval


def test_watchdog_pid_defaults_to_ours() -> None:
    mine = {"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}
    assert watchdog_interval(mine) == 1.0
    assert watchdog_interval({**mine, "WATCHDOG_PID": str(os.getppid())}) is None


# --- socket activation: the environment rules (no descriptor is touched) ------------------

LISTEN_VARIABLES = {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"}


def activation(pid: int, fds: str = "2", names: str | None = "a:b") -> dict[str, str]:
    environ = {"LISTEN_PID": str(pid), "LISTEN_FDS": fds, "KEEP": "1"}
    if names is not None:
        environ["LISTEN_FDNAMES"] = names
    return environ


def test_not_activated() -> None:
    environ = {"KEEP": "1"}
    assert listen_fds(environ) == []
    assert environ == {"KEEP": "1"}


def test_meant_for_another_process_is_ignored_and_unset() -> None:
    environ = activation(os.getppid())
    assert listen_fds(environ) == []
    assert environ == {"KEEP": "1"}


def test_unset_false_leaves_the_variables() -> None:
    environ = activation(os.getppid())
    assert listen_fds(environ, unset=False) == []
    assert set(environ) == LISTEN_VARIABLES | {"KEEP"}


def test_zero_or_no_descriptors() -> None:
    assert listen_fds(activation(os.getpid(), fds="0", names=None)) == []
    environ = activation(os.getpid())
    del environ["LISTEN_FDS"]
    assert listen_fds(environ) == []
    assert environ == {"KEEP": "1"}


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"LISTEN_PID": "me", "LISTEN_FDS": "1"}, "LISTEN_PID='me' is not a process id"),
        ({"LISTEN_PID": "{pid}", "LISTEN_FDS": "many"}, "LISTEN_FDS='many' is not a"),
        ({"LISTEN_PID": "{pid}", "LISTEN_FDS": "-1"}, "LISTEN_FDS='-1' is not a"),
        (
            {"LISTEN_PID": "{pid}", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "http"},
            "LISTEN_FDNAMES='http' names 1 descriptors, LISTEN_FDS=2",
        ),
    ],
)
def test_malformed_variables_are_errors_and_still_unset(
    environ: dict[str, str], message: str
) -> None:
    environ = {key: value.format(pid=os.getpid()) for key, value in environ.items()}
    with pytest.raises(SocketActivationError) as info:
        listen_fds(environ)
    assert str(info.value).startswith(message)
    assert environ == {}


# --- socket activation on real descriptors, in a child process ----------------------------

# argv: the inherited descriptor numbers, then LISTEN_FDNAMES ("-" for none). Moves them
# to 3.. as systemd does, claims LISTEN_PID, adopts them and reports what it got.
ADOPT = textwrap.dedent(
    """
    import fcntl, json, os, socket, subprocess, sys
    from covetd.master.systemd import SocketActivationError, listen_fds

    inherited = [int(fd) for fd in sys.argv[1:-1]]
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in inherited]
    for fd in inherited:
        os.close(fd)
    for index, fd in enumerate(high):
        os.dup2(fd, 3 + index, inheritable=True)
        os.close(fd)
    os.environ["LISTEN_PID"] = str(os.getpid())
    os.environ["LISTEN_FDS"] = str(len(high))
    if sys.argv[-1] != "-":
        os.environ["LISTEN_FDNAMES"] = sys.argv[-1]
    try:
        activated = listen_fds()
    except SocketActivationError as exc:
        print(json.dumps({"error": str(exc)}))
        raise SystemExit(0)
    sockets = []
    for item in activated:
        sock = item.sock
        entry = {
            "fd": item.fd, "name": item.name, "sock_fd": sock.fileno(),
            "family": sock.family.name, "type": sock.type.name,
            "cloexec": bool(fcntl.fcntl(item.fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC),
        }
        if sock.type == socket.SOCK_STREAM:
            with socket.socket(sock.family, socket.SOCK_STREAM) as client:
                client.connect(sock.getsockname())
                conn, _ = sock.accept()
                conn.close()
            entry["accepted"] = True
        sockets.append(entry)
    child = subprocess.run(
        [sys.executable, "-c",
         "import os; print(sorted(k for k in os.environ if k.startswith('LISTEN_')))"],
        capture_output=True, text=True, check=True,
    )
    print(json.dumps({
        "sockets": sockets,
        "environ": sorted(k for k in os.environ if k.startswith("LISTEN_")),
        "grandchild_environ": child.stdout.strip(),
    }))
    """
)


def adopt_in_child(fds: list[int], names: str | None) -> dict[str, Any]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("LISTEN_")}
    result = subprocess.run(
        [sys.executable, "-c", ADOPT, *map(str, fds), names or "-"],
        pass_fds=fds,
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


@pytest.fixture
def activation_sockets(short_dir: Path) -> Iterator[list[socket.socket]]:
    """A TCP listener, a unix stream listener and a UDP socket, as a .socket unit might give."""
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(str(short_dir / "http.sock"))
    unix.listen(8)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    sockets = [tcp, unix, udp]
    yield sockets
    for sock in sockets:
        sock.close()


def test_listen_fds_adopts_named_sockets(activation_sockets: list[socket.socket]) -> None:
    report = adopt_in_child([sock.fileno() for sock in activation_sockets], "http:local:stats")
    first = SD_LISTEN_FDS_START
    assert report["sockets"] == [
        {
            "fd": first,
            "name": "http",
            "sock_fd": first,
            "family": "AF_INET",
            "type": "SOCK_STREAM",
            "cloexec": True,
            "accepted": True,
        },
        {
            "fd": first + 1,
            "name": "local",
            "sock_fd": first + 1,
            "family": "AF_UNIX",
            "type": "SOCK_STREAM",
            "cloexec": True,
            "accepted": True,
        },
        {
            "fd": first + 2,
            "name": "stats",
            "sock_fd": first + 2,
            "family": "AF_INET",
            "type": "SOCK_DGRAM",
            "cloexec": True,
        },
    ]
    assert report["environ"] == []
    assert report["grandchild_environ"] == "[]"


def test_listen_fds_names_default_to_unknown(activation_sockets: list[socket.socket]) -> None:
    report = adopt_in_child([activation_sockets[0].fileno()], None)
    [adopted] = report["sockets"]
    assert (adopted["name"], adopted["family"]) == ("unknown", "AF_INET")


def test_a_descriptor_that_is_not_a_socket_is_an_error(
    activation_sockets: list[socket.socket],
) -> None:
    read_end, write_end = os.pipe()
    try:
        report = adopt_in_child([activation_sockets[0].fileno(), read_end], "http:fifo")
    finally:
        os.close(read_end)
        os.close(write_end)
    assert report == {"error": "inherited fd 4 (fifo) is unusable: Socket operation on non-socket"}


# --- socket activation by systemd's own tool ----------------------------------------------

# Run by systemd-socket-activate on the first connection: adopts what it was given and
# answers that connection, through the adopted socket, with what it found.
ANSWER = textwrap.dedent(
    """
    import json, os
    from covetd.master.systemd import listen_fds

    pid = os.environ.get("LISTEN_PID")
    activated = listen_fds()
    report = {
        "listen_pid_was_ours": pid == str(os.getpid()),
        "sockets": [[a.fd, a.name, a.sock.family.name, a.sock.type.name] for a in activated],
        "environ": sorted(k for k in os.environ if k.startswith("LISTEN_")),
    }
    conn, _ = activated[0].sock.accept()
    conn.sendall(json.dumps(report).encode())
    conn.close()
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_listen_fds_reads_what_systemd_socket_activate_passes() -> None:
    if shutil.which(SOCKET_ACTIVATE) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{SOCKET_ACTIVATE} is missing: apt-get install systemd")
        pytest.skip(f"{SOCKET_ACTIVATE} is not installed (Debian package systemd)")
    port = free_port()
    command = [SOCKET_ACTIVATE, "-l", f"127.0.0.1:{port}", "--fdname=http"]
    command += [sys.executable, "-c", ANSWER]
    with subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as tool:
        try:
            conn = wait_for(lambda: connect(port, tool), 10, 0.02, "socket-activate to listen")
            with conn:
                conn.settimeout(20)
                answer = b"".join(iter(lambda: conn.recv(4096), b""))
            assert tool.wait(20) == 0
        finally:
            if tool.poll() is None:
                tool.kill()
                tool.wait()
        output = tool.stdout.read().decode() if tool.stdout else ""
    assert answer, output
    assert json.loads(answer) == {
        "listen_pid_was_ours": True,
        "sockets": [[SD_LISTEN_FDS_START, "http", "AF_INET", "SOCK_STREAM"]],
        "environ": [],
    }


def connect(port: int, tool: subprocess.Popen[bytes]) -> socket.socket | None:
    if tool.poll() is not None:
        output = tool.stdout.read().decode() if tool.stdout else ""
        raise AssertionError(f"systemd-socket-activate exited with {tool.returncode}: {output}")
    try:
        return socket.create_connection(("127.0.0.1", port), timeout=1)
    except OSError:
        return None
