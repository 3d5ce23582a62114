"""What the kernel knows about covetd's processes and sockets, read from /proc.

The master's tests check supervision from the outside: which workers a master has
(``children``), whether a process is gone, which TCP connections a worker owns, and
how many connections wait in the accept queue of a listening socket. Linux only.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from .process import wait_for

PROC = Path("/proc")
TCP_LISTEN, TCP_ESTABLISHED = "0A", "01"


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state first), or None."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text.rpartition(")")[2].split()


def state(pid: int) -> str | None:
    """The process state letter (R, S, T, Z...), None when there is no such process."""
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    return state(pid) not in (None, "Z")


def children(pid: int) -> list[int]:
    """Live (non-zombie) child processes of ``pid``, sorted."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields and fields[1] == str(pid) and fields[0] != "Z":
            found.append(int(entry.name))
    return sorted(found)


def wait_for_children(pid: int, count: int, timeout: float = 10.0) -> list[int]:
    """Wait until ``pid`` has exactly ``count`` live children; return them."""
    return wait_for(
        lambda: (found := children(pid)) and len(found) == count and found,
        timeout,
        what=f"{count} worker(s) of master {pid}",
    )


def assert_gone(pids: set[int] | list[int], timeout: float = 5.0) -> None:
    """Every process in ``pids`` ends (or is a zombie) within ``timeout`` s."""
    wait_for(
        lambda: not [pid for pid in pids if alive(pid)],
        timeout,
        what=f"processes {sorted(pid for pid in pids if alive(pid))} to exit",
    )


def socket_inodes(pid: int) -> set[int]:
    """Inodes of the sockets ``pid`` holds open (any descriptor)."""
    inodes = set()
    fd_dir = PROC / str(pid) / "fd"
    try:
        names = os.listdir(fd_dir)
    except FileNotFoundError:
        return set()
    for name in names:
        try:
            target = os.readlink(fd_dir / name)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


@dataclass(frozen=True)
class TcpEntry:
    local_port: int
    remote_port: int
    state: str
    rx_queue: int  # for a listening socket: connections waiting in its accept queue
    inode: int


def tcp_entries(port: int) -> list[TcpEntry]:
    """IPv4 TCP sockets whose local port is ``port`` (/proc/net/tcp)."""
    entries = []
    for line in (PROC / "net" / "tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        if local_port != port:
            continue
        remote_port = int(fields[2].split(":")[1], 16)
        rx_queue = int(fields[4].split(":")[1], 16)
        entries.append(TcpEntry(local_port, remote_port, fields[3], rx_queue, int(fields[9])))
    return entries


def listening_inodes(pid: int, port: int) -> set[int]:
    """The listening sockets on ``port`` that ``pid`` holds."""
    held = socket_inodes(pid)
    return {e.inode for e in tcp_entries(port) if e.state == TCP_LISTEN and e.inode in held}


def accept_queue(inode: int, port: int) -> int:
    """Connections waiting in the accept queue of listening socket ``inode``."""
    for entry in tcp_entries(port):
        if entry.inode == inode and entry.state == TCP_LISTEN:
            return entry.rx_queue
    raise AssertionError(f"no listening socket with inode {inode} on port {port}")


def connections_of(pid: int, port: int) -> int:
    """Established connections on ``port`` (server side) that ``pid`` holds."""
    held = socket_inodes(pid)
    return sum(1 for e in tcp_entries(port) if e.state == TCP_ESTABLISHED and e.inode in held)


def reserve_port(host: str = "127.0.0.1") -> socket.socket:
    """A bound, *not listening* SO_REUSEPORT socket: it keeps the port for the test
    while covetd binds its own SO_REUSEPORT sockets on it (no free-port race) and it
    never receives a connection. Close it once covetd listens."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, 0))
    return sock
