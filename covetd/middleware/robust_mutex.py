"""Robust mutexes shared between processes, in a shared mapping: a lock across the
workers of a host that costs no system call when nobody else holds it, and that the
kernel hands over when its holder dies.

They are POSIX mutexes set ``PTHREAD_PROCESS_SHARED`` and ``PTHREAD_MUTEX_ROBUST``,
called through ``ctypes``. Taking a free one is an atomic instruction in the C library
(a futex: the kernel is asked only to wait for a held one, or to wake a waiter). If a
process dies holding one, the kernel marks it "owner died" and hands it to the next
locker, which gets ``EOWNERDEAD``, marks it consistent and goes on: what an ``fcntl``
lock gives (the kernel drops the lock of a dead process), at a fraction of the cost
of its two system calls. Each mutex is ``PTHREAD_MUTEX_ERRORCHECK``: a thread locking
one it holds gets an error, never a deadlock.

The fast path is ``trylock`` (the GIL kept: it never waits); only a held mutex sends
the caller to ``wait``, which blocks in ``pthread_mutex_lock`` with the GIL released,
so another thread of the same process holding it can finish.

Linux only (glibc or musl); elsewhere ``AVAILABLE`` is False and callers keep their
``fcntl`` locks.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import mmap
import sys
from typing import Any

__all__ = ["AVAILABLE", "MUTEX_SIZE", "RobustMutexes", "trylock", "unlock"]

error_log = logging.getLogger("covetd.error")

# Bytes per mutex: pthread_mutex_t is 40 bytes on x86-64 and 48 on arm64 (glibc), 40
# (musl); one cache line each keeps two mutexes from sharing one.
MUTEX_SIZE = 64
_ATTRIBUTES_SIZE = 64  # pthread_mutexattr_t is 4 or 8 bytes: room to spare
_PROCESS_SHARED = 1  # PTHREAD_PROCESS_SHARED
_ROBUST = 1  # PTHREAD_MUTEX_ROBUST
_ERRORCHECK = 2  # PTHREAD_MUTEX_ERRORCHECK


_POINTER, _INT = ctypes.c_void_p, ctypes.c_int
_SIGNATURES = {
    "pthread_mutexattr_init": [_POINTER],
    "pthread_mutexattr_setpshared": [_POINTER, _INT],
    "pthread_mutexattr_setrobust": [_POINTER, _INT],
    "pthread_mutexattr_settype": [_POINTER, _INT],
    "pthread_mutexattr_destroy": [_POINTER],
    "pthread_mutex_init": [_POINTER, _POINTER],
    "pthread_mutex_trylock": [_POINTER],
    "pthread_mutex_lock": [_POINTER],
    "pthread_mutex_unlock": [_POINTER],
    "pthread_mutex_consistent": [_POINTER],
}


def _functions(library: Any) -> dict[str, Any] | None:
    functions = {}
    for name, argtypes in _SIGNATURES.items():
        function = getattr(library, name, None)
        if function is None:
            return None
        function.argtypes = argtypes
        function.restype = ctypes.c_int
        functions[name] = function
    return functions


def _load() -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The functions twice: called with the GIL kept (``PyDLL``: cheaper, for calls
    that never wait) and with it released (``CDLL``, for the one that waits)."""
    if sys.platform != "linux":
        return None
    try:
        keep_gil, release_gil = _functions(ctypes.PyDLL(None)), _functions(ctypes.CDLL(None))
    except OSError:
        return None
    if keep_gil is None or release_gil is None:
        return None
    return keep_gil, release_gil


_loaded = _load()
AVAILABLE = _loaded is not None

if _loaded is not None:
    _fast, _blocking = _loaded
    trylock: Any = _fast["pthread_mutex_trylock"]
    unlock: Any = _fast["pthread_mutex_unlock"]
else:  # never called: AVAILABLE is False
    trylock = unlock = None


class RobustMutexes:
    """``count`` mutexes, ``MUTEX_SIZE`` bytes apart from ``offset`` of ``buffer`` (a
    shared mapping that outlives this object: the addresses point into it)."""

    def __init__(self, buffer: mmap.mmap, offset: int, count: int) -> None:
        if not AVAILABLE:
            raise RuntimeError("robust process-shared mutexes are not available here")
        view = ctypes.c_char.from_buffer(buffer, offset)
        base = ctypes.addressof(view)
        del view  # no buffer export left: the mapping can still be closed
        #: What ``trylock``/``unlock`` take: one pointer per mutex.
        self.addresses = [ctypes.c_void_p(base + index * MUTEX_SIZE) for index in range(count)]

    def initialise(self) -> None:
        """Make every mutex (by the process creating the mapping, before any other
        process may use it)."""
        attributes = ctypes.create_string_buffer(_ATTRIBUTES_SIZE)
        _check(_fast["pthread_mutexattr_init"](attributes), "pthread_mutexattr_init")
        try:
            _check(_fast["pthread_mutexattr_setpshared"](attributes, _PROCESS_SHARED), "setpshared")
            _check(_fast["pthread_mutexattr_setrobust"](attributes, _ROBUST), "setrobust")
            _check(_fast["pthread_mutexattr_settype"](attributes, _ERRORCHECK), "settype")
            for address in self.addresses:
                _check(_fast["pthread_mutex_init"](address, attributes), "pthread_mutex_init")
        finally:
            _fast["pthread_mutexattr_destroy"](attributes)

    @staticmethod
    def wait(address: ctypes.c_void_p, status: int) -> None:
        """Finish taking the mutex at ``address`` after ``trylock`` returned ``status``
        (not 0): wait while another holds it; take over from a holder that died."""
        if status == errno.EBUSY:
            status = _blocking["pthread_mutex_lock"](address)
        if status == errno.EOWNERDEAD:
            # Ours now; what the dead holder was writing may be half done (its
            # critical section is a few stores into the mapping).
            _check(_fast["pthread_mutex_consistent"](address), "pthread_mutex_consistent")
            error_log.warning("a process died holding a shared lock; it was taken over")
            return
        _check(status, "pthread_mutex_lock")


def _check(status: int, what: str) -> None:
    if status != 0:
        raise OSError(status, f"{what}: {errno.errorcode.get(status, status)}")
