"""Issue 3: a worker that fails while booting stops the master, with the reason.

A broken deploy must not turn into a fork loop: the master exits non-zero within 5 s,
its output says why, and it forked no more workers than it has slots. Every forked
worker is counted by a ``worker_started`` hook (``tests/apps/master_fork_log.py``) and,
independently, by the pids of the log lines that are not the master's.

Not tested: an app whose startup hangs (the master gives a booting worker
max(30 s, worker_timeout) before killing it; too long for CI).
"""

from __future__ import annotations

import re
import subprocess
import time

import pytest
from support.proctree import assert_gone

SENTINEL = "MASTER-BOOT-SENTINEL"
EXIT_DEADLINE = 5.0
WORKERS = 2
LOG_PID = re.compile(r"^\[[^]]+\] \[(\d+)\] ", re.MULTILINE)

CASES = {
    "import-error": ("master_boot_import_error:app", {}),
    "import-error-preload": ("master_boot_import_error:app", {"preload": True}),
    "startup-hook-raises": ("master_boot_failures:startup_hook_app", {}),
    "lifespan-raises": ("master_boot_failures:lifespan_app", {}),
    "asgi-startup-failed": ("master_boot_failures:asgi_app", {}),
}


@pytest.mark.parametrize("case", CASES)
def test_boot_failure_stops_the_master_with_the_reason(covetd, tmp_path, case) -> None:
    app, server_settings = CASES[case]
    fork_log = tmp_path / "forks"
    config = {
        "server": {"workers": WORKERS, **server_settings},
        "hooks": {"worker_started": "master_fork_log:worker_started"},
    }
    started = time.monotonic()
    server = covetd(app, config, wait=False, env={"COVETD_TEST_FORK_LOG": str(fork_log)})
    try:
        code = server.wait(timeout=EXIT_DEADLINE + 5)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the master still runs after {EXIT_DEADLINE + 5}s:\n{server.log()}")
    elapsed = time.monotonic() - started
    output = server.log()
    forked = {int(pid) for pid in fork_log.read_text().split()} if fork_log.exists() else set()
    logged = {int(pid) for pid in LOG_PID.findall(output)} - {server.proc.pid}
    print(f"{case}: exit {code} after {elapsed:.2f}s, {len(forked | logged)} worker(s) forked")
    assert code != 0, output
    assert elapsed < EXIT_DEADLINE, output
    assert SENTINEL in output, output
    assert len(forked | logged) <= WORKERS, f"fork loop: workers {forked | logged}\n{output}"
    assert_gone(forked | logged)
