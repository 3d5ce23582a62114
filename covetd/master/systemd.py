"""systemd's protocols, spoken without libsystemd: sd_notify, the watchdog, socket activation.

All three are plain environment variables and one datagram socket, so a C dependency
would buy nothing. The rules follow sd_notify(3), sd_watchdog_enabled(3) and
sd_listen_fds(3); where those functions return an error we do the same thing a caller
of them would reasonably do, and say so.

Invariant: nothing here may take the server down because systemd is absent, restarted
or slow. A failed notification is logged at debug level and forgotten.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import socket
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass

__all__ = [
    "SD_LISTEN_FDS_START",
    "SEND_TIMEOUT",
    "ActivatedSocket",
    "Notifier",
    "SocketActivationError",
    "listen_fds",
    "monotonic_usec",
    "watchdog_interval",
]

SD_LISTEN_FDS_START = 3
"""The first inherited descriptor: 0, 1 and 2 are stdin, stdout and stderr."""

_LISTEN_VARIABLES = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")
_DEFAULT_FD_NAME = "unknown"
_FIELD_NAME = re.compile(r"[A-Z_][A-Z0-9_]*\Z")
# A unix datagram send blocks only while the receiver's queue is full (systemd stuck, or
# net.unix.max_dgram_qlen datagrams unread). Waiting a little is better than losing
# READY=1; stalling the master's loop for long is not.
SEND_TIMEOUT = 0.25

error_log = logging.getLogger("covetd.error")

FieldValue = str | int


class Notifier:
    """Sends sd_notify(3) state changes to the socket named by ``NOTIFY_SOCKET``.

    Disabled (every call a no-op) when the variable is unset, as it is outside
    ``Type=notify`` units. One socket is opened on first use and reused; call
    ``close()`` when done. Sending never raises, and waits at most ``SEND_TIMEOUT``.
    """

    def __init__(self, address: str | None) -> None:
        self.address = address
        self._target = _socket_address(address)
        self._sock: socket.socket | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> Notifier:
        """Read ``NOTIFY_SOCKET`` (a path, or ``@name`` for an abstract socket).

        The variable is left in place: a master started by USR2 must still find it.
        """
        return cls(environ.get("NOTIFY_SOCKET") or None)

    @property
    def enabled(self) -> bool:
        """True when there is a socket to notify (whether systemd listens is unknown)."""
        return self._target is not None

    def notify(self, text: str | None = None, /, **fields: FieldValue) -> bool:
        """Send ``text`` and ``KEY=value`` fields as one datagram; True if it was sent.

        ``notify("READY=1\\nSTATUS=up")`` and ``notify(READY=1, STATUS="up")`` send the
        same bytes. Newlines inside field values are replaced by spaces so a value
        (a status text, say) cannot smuggle in another assignment.
        """
        message = _message(text, fields)
        if self._target is None or not message:
            return False
        try:
            self._socket().sendto(message.encode("utf-8", "replace"), self._target)
        except OSError as exc:
            error_log.debug("sd_notify to %s failed: %s", self.address, exc)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Startup finished: systemd considers the service started from now on."""
        return self.notify(READY=1, **_status(status))

    def reloading(self, status: str | None = None) -> bool:
        """A reload began; ``Type=notify-reload`` needs the monotonic time in the same datagram.

        Send ``ready()`` again when the reload is complete.
        """
        return self.notify(RELOADING=1, MONOTONIC_USEC=monotonic_usec(), **_status(status))

    def stopping(self, status: str | None = None) -> bool:
        """Shutdown began; systemd stops expecting the service to answer."""
        return self.notify(STOPPING=1, **_status(status))

    def status(self, text: str) -> bool:
        """A one-line human status, shown by ``systemctl status``."""
        return self.notify(STATUS=text)

    def watchdog(self) -> bool:
        """Keep-alive ping for ``WatchdogSec=``; send every ``watchdog_interval()`` s."""
        return self.notify(WATCHDOG=1)

    def close(self) -> None:
        """Close the socket; a later notification opens a new one."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _socket(self) -> socket.socket:
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            sock.settimeout(SEND_TIMEOUT)
            self._sock = sock
        return self._sock


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds, the clock systemd compares ``MONOTONIC_USEC`` to."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def _socket_address(address: str | None) -> bytes | None:
    """The sendto() address; None (disabled) unless absolute path or ``@abstract``.

    sd_notify(3) rejects relative paths too; ``vsock:`` addresses are not supported.
    """
    if not address:
        return None
    if address.startswith("@"):
        return b"\0" + os.fsencode(address[1:])
    if address.startswith("/"):
        return os.fsencode(address)
    error_log.debug("NOTIFY_SOCKET=%s is not supported; notifications disabled", address)
    return None


def _message(text: str | None, fields: Mapping[str, FieldValue]) -> str:
    lines = [text] if text else []
    for name, value in fields.items():
        if not _FIELD_NAME.match(name):
            raise ValueError(f"{name!r} is not an sd_notify field name (e.g. READY, STATUS)")
        lines.append(f"{name}={_one_line(str(value))}")
    return "\n".join(lines)


def _one_line(value: str) -> str:
    return " ".join(value.splitlines()) if "\n" in value or "\r" in value else value


def _status(text: str | None) -> dict[str, FieldValue]:
    return {} if text is None else {"STATUS": text}


# --- watchdog -----------------------------------------------------------------------------


def watchdog_interval(
    environ: Mapping[str, str] = os.environ, pid: int | None = None
) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings, or None when no watchdog is asked for.

    Half of ``WATCHDOG_USEC``, as sd_watchdog_enabled(3) advises, so one late ping does
    not get the service killed. ``WATCHDOG_PID``, when set, must name us (``pid``,
    default ``os.getpid()``): it is set for the main process only, and a child that
    inherited it must not ping. Malformed values mean no watchdog.
    """
    usec = _positive_int(environ.get("WATCHDOG_USEC"))
    if usec is None:
        return None
    watchdog_pid = environ.get("WATCHDOG_PID")
    if watchdog_pid is not None and _positive_int(watchdog_pid) != _our_pid(pid):
        return None
    return usec / 2 / 1_000_000


def _positive_int(text: str | None) -> int | None:
    value = _count(text)
    return value if value else None


def _count(text: str | None) -> int | None:
    """A non-negative decimal integer, or None (``str.isdigit`` alone admits "²")."""
    if text is None or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def _our_pid(pid: int | None) -> int:
    return os.getpid() if pid is None else pid


# --- socket activation --------------------------------------------------------------------


class SocketActivationError(Exception):
    """systemd passed descriptors we cannot use (one-line message naming the variable/fd)."""


@dataclass(frozen=True, slots=True)
class ActivatedSocket:
    """A listening socket inherited from systemd.

    ``sock`` owns ``fd``: closing the socket closes the descriptor. ``name`` is the
    unit's ``FileDescriptorName=`` (default: the socket unit's name; "unknown" when
    systemd gave none).
    """

    fd: int
    name: str
    sock: socket.socket


def listen_fds(
    environ: MutableMapping[str, str] = os.environ, pid: int | None = None, unset: bool = True
) -> list[ActivatedSocket]:
    """The sockets passed by systemd socket activation, as sd_listen_fds_with_names(3).

    Empty unless ``LISTEN_PID`` names us (``pid``, default ``os.getpid()``): the
    variables may be inherited by a process they were not meant for. Descriptors
    start at 3, ``LISTEN_FDS`` of them, named by ``LISTEN_FDNAMES`` (colon-separated).
    Each gets FD_CLOEXEC, so a worker or a re-exec'd master only has what it is handed.

    With ``unset`` the three variables are removed from ``environ`` whatever the outcome
    (as sd_listen_fds does), so processes started later do not believe they were
    activated. Raises ``SocketActivationError`` on malformed variables or a descriptor
    that is not an open socket: binding our own sockets instead would only hide it.
    """
    try:
        return _activated_sockets(environ, _our_pid(pid))
    finally:
        if unset:
            for name in _LISTEN_VARIABLES:
                environ.pop(name, None)


def _activated_sockets(environ: Mapping[str, str], pid: int) -> list[ActivatedSocket]:
    listen_pid = environ.get("LISTEN_PID")
    if listen_pid is None:
        return []
    listen_pid_value = _positive_int(listen_pid)
    if listen_pid_value is None:
        raise SocketActivationError(f"LISTEN_PID={listen_pid!r} is not a process id")
    if listen_pid_value != pid:
        return []
    listen_fds_text = environ.get("LISTEN_FDS")
    if listen_fds_text is None:
        return []
    count = _fd_count(listen_fds_text)
    names = _fd_names(environ.get("LISTEN_FDNAMES"), count)
    fds = range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count)
    adopted: list[ActivatedSocket] = []
    try:
        for fd, name in zip(fds, names, strict=True):
            adopted.append(_adopt(fd, name))
    except BaseException:
        for activated in adopted:
            activated.sock.close()
        raise
    return adopted


def _fd_count(text: str) -> int:
    count = _count(text)
    if count is None:
        raise SocketActivationError(f"LISTEN_FDS={text!r} is not a descriptor count")
    return count


def _fd_names(text: str | None, count: int) -> list[str]:
    if not text:
        return [_DEFAULT_FD_NAME] * count
    names = text.split(":")
    if len(names) != count:
        raise SocketActivationError(
            f"LISTEN_FDNAMES={text!r} names {len(names)} descriptors, LISTEN_FDS={count}"
        )
    return names


def _adopt(fd: int, name: str) -> ActivatedSocket:
    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFD)
        fcntl.fcntl(fd, fcntl.F_SETFD, flags | fcntl.FD_CLOEXEC)
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SocketActivationError(f"inherited fd {fd} ({name}) is unusable: {reason}") from exc
    return ActivatedSocket(fd, name, sock)
