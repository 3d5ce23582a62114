"""systemd's end of sd_notify(3), for tests: a datagram socket that records messages.

Like ``deploycheck/sd-notify-listen`` (in the shared tools), but in-process so a test
can interleave signals and checks: every datagram is parsed into its ``KEY=value``
fields and stamped with its arrival time (CLOCK_MONOTONIC) and the sender's pid
(SO_PASSCRED, what systemd checks for ``NotifyAccess=main``).
"""

from __future__ import annotations

import select
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SO_PASSCRED = getattr(socket, "SO_PASSCRED", 16)
SCM_CREDENTIALS = getattr(socket, "SCM_CREDENTIALS", 2)
STATES = ("READY", "RELOADING", "STOPPING")


@dataclass(frozen=True)
class Notification:
    fields: dict[str, str]
    pid: int | None
    at: float  # time.monotonic() on arrival

    @property
    def state(self) -> str | None:
        """READY, RELOADING or STOPPING when the message announces one."""
        return next((name for name in STATES if self.fields.get(name) == "1"), None)


class NotifyListener:
    """``NOTIFY_SOCKET`` for a covetd under test; ``path`` goes into its environment."""

    def __init__(self, directory: Path) -> None:
        self.path = str(directory / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_PASSCRED, 1)
        self.sock.bind(self.path)
        self.messages: list[Notification] = []

    def _receive(self, timeout: float) -> Notification | None:
        ready, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        if not ready:
            return None
        data, ancillary, _, _ = self.sock.recvmsg(65536, socket.CMSG_SPACE(12))
        pid = None
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == SCM_CREDENTIALS:
                pid = struct.unpack("iII", payload[:12])[0]
        fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
        message = Notification(fields, pid, time.monotonic())
        self.messages.append(message)
        return message

    def wait_for(
        self, predicate: Callable[[Notification], bool], timeout: float, what: str
    ) -> Notification:
        """Receive until a message satisfies ``predicate``; fail after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            message = self._receive(deadline - time.monotonic())
            if message is not None and predicate(message):
                return message
            if message is None and time.monotonic() >= deadline:
                seen = [m.fields for m in self.messages]
                raise AssertionError(f"no sd_notify message {what} within {timeout}s: {seen}")

    def wait_for_state(self, state: str, timeout: float = 10.0) -> Notification:
        return self.wait_for(lambda m: m.state == state, timeout, f"{state}=1")

    def drain(self) -> None:
        """Receive whatever is already queued."""
        while self._receive(0) is not None:
            pass

    def states(self) -> list[str]:
        return [m.state for m in self.messages if m.state is not None]

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> NotifyListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
