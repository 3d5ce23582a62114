"""Issue 3: a handler that blocks its worker's event loop (``time.sleep``).

The heartbeat comes from inside the event loop, so a blocked loop goes silent; after
``worker_timeout`` the master has the worker dump its stacks (SIGUSR2, faulthandler)
to the error log, showing the blocking line, then kills and replaces it. The other
worker serves on meanwhile.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support.crashload import CrashLoad
from support.process import TEST_APPS, wait_for
from support.proctree import alive, assert_gone, children, wait_for_children
from support.rawhttp import RawConnection

APP_FILE = TEST_APPS / "master_failures.py"
BLOCKING_LINE = next(
    number
    for number, line in enumerate(APP_FILE.read_text().splitlines(), start=1)
    if "# BLOCKING-LINE" in line
)
# faulthandler's format: '  File "/path/app.py", line 42 in block'
DUMP_FRAME = re.compile(rf'File "{re.escape(str(APP_FILE))}", line {BLOCKING_LINE} in block')


def _blocked_worker(state_dir: Path) -> int:
    marks = wait_for(lambda: list(state_dir.glob("blocked-*")), 5.0, what="the blocking handler")
    return int(marks[0].name.split("-")[1])


@pytest.mark.parametrize("log_to", ["stderr", "error_log_file"])
def test_blocked_worker_is_dumped_killed_and_replaced(covetd, tmp_path, log_to) -> None:
    error_log = tmp_path / "error.log"
    logging = {"error_log_file": str(error_log)} if log_to == "error_log_file" else {}
    server = covetd(
        "master_failures:app",
        {"server": {"workers": 2, "worker_timeout": 1}, "logging": logging},
        env={"COVETD_TEST_STATE_DIR": str(tmp_path)},
    )
    master = server.proc.pid
    workers = wait_for_children(master, 2)

    def error_log_text() -> str:
        return error_log.read_text() if log_to == "error_log_file" else server.log()

    with RawConnection(server.host, server.port, timeout=15.0) as blocked:
        blocked.send(b"GET /block?s=30 HTTP/1.1\r\nHost: t\r\n\r\n")
        victim = _blocked_worker(tmp_path)
        (healthy,) = set(workers) - {victim}
        # Connections opened from now on reach the healthy worker: the blocked one
        # cannot accept. None of their requests may fail while it is being replaced.
        with CrashLoad(server.port, clients=2, timeout=5.0, pause=0.005) as load:
            wait_for(lambda: not alive(victim), 10.0, what=f"blocked worker {victim} killed")
            replacement = wait_for(
                lambda: [p for p in children(master) if p not in workers], 5.0, what="replacement"
            )[0]
            wait_for(lambda: f"worker {replacement} ready" in error_log_text(), 5.0, what="ready")
            load.wait_for_requests(50)
        assert blocked.is_closed(timeout=5.0), "the blocked request's connection stayed open"
    result = load.result
    print(f"while blocked: {result.ok} ok on {dict(result.pids)}, failures {dict(result.failures)}")
    assert result.failed == 0, result
    assert result.pids[str(healthy)] > 0
    log = error_log_text()
    assert f"worker {victim} silent for" in log, log
    assert DUMP_FRAME.search(log), (
        f"no stack frame of line {BLOCKING_LINE} in the error log:\n{log}\n"
        f"(covetd's stderr/stdout:\n{server.log()})"
    )
    assert log.index(f"worker {victim} silent for") < DUMP_FRAME.search(log).start()
    assert f"worker {victim} (slot" in log and "timed out" in log, log
    assert server.stop() == 0
    assert_gone({*workers, replacement})
