"""Issue 3: the master itself dies (SIGKILL, OOM killer): its workers must not live on.

Each worker watches its control channel to the master; at EOF it has lost its master
and stops (draining, within ``graceful_timeout``), so no orphaned worker keeps
serving out of supervision.
"""

from __future__ import annotations

import os
import signal
import time

from support.proctree import assert_gone, wait_for_children
from support.slots import get, start_per_slot


def test_workers_of_a_killed_master_stop_by_themselves(covetd) -> None:
    graceful = 2.0
    server = start_per_slot(covetd, {"server": {"workers": 2, "graceful_timeout": graceful}})
    master = server.proc.pid
    workers = wait_for_children(master, 2)
    assert get(server.port).status == 200
    killed_at = time.monotonic()
    os.kill(master, signal.SIGKILL)
    assert server.wait(5.0) == -signal.SIGKILL
    assert_gone(workers, timeout=graceful + 3.0)
    print(f"workers gone {time.monotonic() - killed_at:.2f}s after the master's SIGKILL")
    assert server.log().count("lost the master") == 2, server.log()
