"""Signals for the master: handlers only enqueue; the master loop acts (STYLE habit 8).

A handler appends the signal number to a queue and nothing else: no logging, no
allocation-heavy work, no reentrancy trouble. ``signal.set_wakeup_fd`` writes a byte
to a pipe the master's selector watches, so a signal wakes the loop at once.
"""

from __future__ import annotations

import os
import signal
from collections import deque
from types import FrameType

__all__ = ["HANDLED", "STOPS", "SignalQueue"]

HANDLED = (
    signal.SIGHUP,
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGCHLD,
    signal.SIGWINCH,
)
#: The signals that stop the master: never the ones dropped when a flood fills the queue.
STOPS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})
#: Signals held between two drains; a sender in a loop can outrun the master.
QUEUE_LENGTH = 64


class SignalQueue:
    """Pending signals, in arrival order; ``fileno()`` becomes readable when one comes."""

    def __init__(self) -> None:
        self._pending: deque[int] = deque(maxlen=QUEUE_LENGTH)
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        os.set_inheritable(self._read, False)
        os.set_inheritable(self._write, False)

    def install(self) -> None:
        signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        for signum in HANDLED:
            signal.signal(signum, self._enqueue)

    def _enqueue(self, signum: int, frame: FrameType | None) -> None:
        # Full (a flood): the newcomer is dropped, not the oldest pending signal, unless
        # it is a stop signal, which pushes out the oldest. So a TERM is never lost
        # behind a burst of HUPs; only a later stop signal can push it out.
        if len(self._pending) >= QUEUE_LENGTH and signum not in STOPS:
            return
        self._pending.append(signum)

    def fileno(self) -> int:
        return self._read

    def drain(self) -> list[int]:
        """Everything received since the last call (the pipe is emptied too)."""
        try:
            while os.read(self._read, 4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        # One popleft at a time, never list() then clear(): a handler that runs between
        # those two (Python runs handlers between any two bytecodes) would append a
        # signal that clear() then drops, its wake-up byte already read above: a TERM
        # lost, and a master that never stops.
        pending = []
        while self._pending:
            pending.append(self._pending.popleft())
        return pending

    def close(self) -> None:
        """Undo ``install`` and close the pipe (in a forked worker, or at exit)."""
        signal.set_wakeup_fd(-1)
        for signum in HANDLED:
            signal.signal(signum, signal.SIG_DFL)
        os.close(self._read)
        os.close(self._write)
