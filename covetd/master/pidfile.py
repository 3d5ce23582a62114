"""The master's pidfile, with gunicorn's rules so init scripts written for it keep working.

One line, the master's pid. A file naming a live process stops a second master from
starting over the first; a file naming a dead one (left by a crash) is replaced. On
USR2 the old master moves its file to ``<path>.oldbin`` so the new master can claim
``<path>``. The file always appears whole: it is written to a temporary file in the
same directory and renamed into place, so a reader never sees it half-written.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import tempfile

__all__ = ["Pidfile", "PidfileError"]

_MODE = 0o644
error_log = logging.getLogger("covetd.error")


class PidfileError(Exception):
    """The pidfile cannot be claimed or written (one-line message naming the file)."""


class Pidfile:
    """A pidfile at ``path``; ``pid`` is the process it was last written for (or None)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.pid: int | None = None

    def create(self, pid: int) -> None:
        """Write ``pid`` to the file, refusing to take it from another live process.

        The file may already name ``pid`` or this process (rewritten as is); naming a
        dead process or holding anything but a pid it is stale, and replaced.
        """
        owner = self.validate()
        if owner is not None and owner not in (pid, os.getpid()):
            raise PidfileError(
                f"pidfile {self.path} names process {owner}, which is running: is covetd "
                "already running? (if not, remove the file)"
            )
        self._write(pid)
        self.pid = pid

    def rename(self, new_path: str | os.PathLike[str]) -> None:
        """Move our pidfile to ``new_path`` (USR2: ``<path>.oldbin``; back on failure).

        The new file is written before the old one is removed, so some file names us
        throughout. Raises ``PidfileError`` if ``new_path`` names another live process.
        """
        pid = os.getpid() if self.pid is None else self.pid
        moved = Pidfile(new_path)
        moved.create(pid)
        self.unlink()
        self.path, self.pid = moved.path, pid

    def unlink(self) -> None:
        """Remove the file if it still names us; never raises (this runs on the way out).

        A file naming another pid belongs to someone else now (the new master after
        USR2) and is left alone.
        """
        if self.pid is None or self._read() != self.pid:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            error_log.warning("cannot remove pidfile %s: %s", self.path, exc.strerror or exc)

    def validate(self) -> int | None:
        """The pid in the file if that process is alive, else None (no file, stale, junk).

        Raises ``PidfileError`` if the file exists but cannot be read: we cannot tell
        whether another master owns it.
        """
        try:
            with open(self.path, encoding="ascii", errors="replace") as file:
                text = file.read(64)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise PidfileError(f"cannot read pidfile {self.path}: {exc.strerror or exc}") from exc
        pid = _parse_pid(text)
        return pid if pid is not None and _is_alive(pid) else None

    def _read(self) -> int | None:
        try:
            with open(self.path, encoding="ascii", errors="replace") as file:
                return _parse_pid(file.read(64))
        except OSError:
            return None

    def _write(self, pid: int) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            fd, temporary = tempfile.mkstemp(prefix=".covetd-pid.", dir=directory)
        except OSError as exc:
            raise PidfileError(f"cannot write pidfile {self.path}: {exc.strerror or exc}") from exc
        try:
            with os.fdopen(fd, "w", encoding="ascii") as file:
                file.write(f"{pid}\n")
            os.chmod(temporary, _MODE)
            os.replace(temporary, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise PidfileError(f"cannot write pidfile {self.path}: {exc.strerror or exc}") from exc


def _parse_pid(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and int(text) > 0 else None


def _is_alive(pid: int) -> bool:
    """Signal 0 checks existence; EPERM means alive but someone else's."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True
