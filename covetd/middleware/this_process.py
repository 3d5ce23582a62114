"""This process's id, read without a system call: ``this_process.pid``.

``os.getpid()`` is a system call each time (glibc no longer caches it), and the access
log and the rate limiter want the pid on every request. It changes only in a forked
child, which updates it here before any of its code runs.
"""

from __future__ import annotations

import os

__all__ = ["pid"]

pid = os.getpid()


def _forked() -> None:
    global pid
    pid = os.getpid()


os.register_at_fork(after_in_child=_forked)
