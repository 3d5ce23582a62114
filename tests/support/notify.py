"""systemd's end of sd_notify, recording in the background: for tests under load.

covetd's master reports its state there (READY=1, RELOADING=1, STOPPING=1 and
``STATUS=N of M workers ready, generation G``), which makes it the observable for
"how many workers are ready" through every reload, without asking the master itself.

Unlike ``sdnotify.NotifyListener``, which reads when the test waits on it, a thread
here reads every datagram as it comes: the kernel queues only
``net.unix.max_dgram_qlen`` (often 10) unread datagrams, after which the master's
send times out and the message is lost, and a test busy with load, signals and
/proc would otherwise miss the very STATUS lines it checks. The sender's pid comes
with each message (SCM_CREDENTIALS), to tell an old master from a new one after USR2.
"""

from __future__ import annotations

import re
import socket
import struct
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .process import wait_for

STATUS = re.compile(r"(\d+) of (\d+) workers ready, generation (\d+)")
_UCRED = struct.Struct("3i")  # pid, uid, gid


@dataclass(frozen=True)
class Message:
    """One datagram: its fields (``READY``, ``STATUS``, ...) and who sent it."""

    fields: dict[str, str]
    sender: int

    def status(self) -> tuple[int, int, int] | None:
        """(ready, slots, generation) from the STATUS field, if there is one."""
        match = STATUS.match(self.fields.get("STATUS", ""))
        return (int(match[1]), int(match[2]), int(match[3])) if match else None


class NotifyRecorder:
    """Collects sd_notify datagrams; ``env`` points a covetd process at it."""

    def __init__(self) -> None:
        # A short path: sun_path holds 107 bytes, and pytest's tmp_path can be longer.
        self._dir = tempfile.TemporaryDirectory(prefix="covetd-n-")
        self.path = str(Path(self._dir.name) / "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(self.path)
        self.sock.settimeout(0.05)
        self._messages: list[Message] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    @property
    def env(self) -> dict[str, str]:
        return {"NOTIFY_SOCKET": self.path}

    def messages(self) -> list[Message]:
        with self._lock:
            return list(self._messages)

    def statuses(self, sender: int | None = None) -> list[tuple[int, int, int]]:
        """Every parsed STATUS, in order (only ``sender``'s if given)."""
        found = [
            (m.status(), m.sender) for m in self.messages() if sender is None or m.sender == sender
        ]
        return [status for status, _ in found if status is not None]

    def count(self, field: str, sender: int | None = None) -> int:
        """How many datagrams carried ``field`` (e.g. ``READY``)."""
        return sum(
            1
            for m in self.messages()
            if field in m.fields and (sender is None or m.sender == sender)
        )

    def wait_for(self, predicate: Any, timeout: float = 10.0, what: str = "a datagram") -> Any:
        """Wait until ``predicate(messages)`` is truthy; the failure lists what came."""
        try:
            return wait_for(lambda: predicate(self.messages()), timeout, 0.01, what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; received: {self.describe()}") from None

    def describe(self) -> str:
        return "; ".join(f"[{m.sender}] {m.fields}" for m in self.messages()) or "nothing"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
        self._dir.cleanup()

    def _receive(self) -> None:
        space = socket.CMSG_SPACE(_UCRED.size)
        while not self._stop.is_set():
            try:
                data, ancillary, _flags, _address = self.sock.recvmsg(65536, space)
            except TimeoutError:
                continue
            except OSError:
                return
            sender = 0
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    sender = _UCRED.unpack(payload[: _UCRED.size])[0]
            fields = dict(
                line.split("=", 1)
                for line in data.decode("utf-8", "replace").split("\n")
                if "=" in line
            )
            with self._lock:
                self._messages.append(Message(fields, sender))

    def __enter__(self) -> NotifyRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
