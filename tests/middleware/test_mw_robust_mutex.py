"""The rate limiter's cross-process lock: mutual exclusion between processes, a lock
whose holder died handed over, and the local table exact under two processes."""

from __future__ import annotations

import errno
import mmap
import os
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from covetd.middleware import robust_mutex
from covetd.middleware.ratelimit_store import Limit, LocalTable

pytestmark = pytest.mark.skipif(not robust_mutex.AVAILABLE, reason="no robust mutexes here")

COUNTER = struct.Struct("<q")
COUNTER_AT = robust_mutex.MUTEX_SIZE  # after the one mutex


def in_children(count: int, work: Callable[[int], None]) -> None:
    """Run ``work(index)`` in ``count`` forked processes; fail if one of them failed."""
    pids = []
    for index in range(count):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                work(index)
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0


def shared_mutex() -> tuple[mmap.mmap, robust_mutex.RobustMutexes]:
    mapping = mmap.mmap(-1, 2 * robust_mutex.MUTEX_SIZE)  # shared with forked children
    mutexes = robust_mutex.RobustMutexes(mapping, 0, 1)
    mutexes.initialise()
    return mapping, mutexes


def lock(mutexes: robust_mutex.RobustMutexes) -> None:
    address = mutexes.addresses[0]
    status = robust_mutex.trylock(address)
    if status:
        mutexes.wait(address, status)


def test_it_excludes_other_processes() -> None:
    mapping, mutexes = shared_mutex()
    rounds = 20000

    def add(_: int) -> None:
        for _ in range(rounds):
            lock(mutexes)
            try:  # a read-modify-write that loses updates unless serialised
                (value,) = COUNTER.unpack_from(mapping, COUNTER_AT)
                COUNTER.pack_into(mapping, COUNTER_AT, value + 1)
            finally:
                robust_mutex.unlock(mutexes.addresses[0])

    in_children(3, add)
    assert COUNTER.unpack_from(mapping, COUNTER_AT) == (3 * rounds,)


def test_the_lock_of_a_dead_holder_is_handed_over() -> None:
    mapping, mutexes = shared_mutex()
    in_children(1, lambda _: lock(mutexes))  # exits holding it
    address = mutexes.addresses[0]
    status = robust_mutex.trylock(address)
    assert status == errno.EOWNERDEAD
    mutexes.wait(address, status)  # ours, made consistent
    assert robust_mutex.unlock(address) == 0
    assert robust_mutex.trylock(address) == 0  # usable again
    assert robust_mutex.unlock(address) == 0
    mapping.close()


def test_a_holder_cannot_lock_it_twice() -> None:
    _, mutexes = shared_mutex()
    address = mutexes.addresses[0]
    assert robust_mutex.trylock(address) == 0
    with pytest.raises(OSError) as raised:
        mutexes.wait(address, robust_mutex.trylock(address))
    assert raised.value.errno == errno.EDEADLK
    assert robust_mutex.unlock(address) == 0


def test_the_local_table_is_exact_across_processes(tmp_path: Path) -> None:
    limit = Limit(rate=0.001, burst=3000)
    path = str(tmp_path / "table.tbl")
    LocalTable(path, limit, 64).close()  # created here, opened again by each child
    granted = mmap.mmap(-1, 8 * 4)

    def take(index: int) -> None:
        table = LocalTable(path, limit, 64)
        allowed = sum(table.take("one key").allowed for _ in range(1500))
        COUNTER.pack_into(granted, 8 * index, allowed)

    in_children(4, take)
    assert sum(COUNTER.unpack_from(granted, 8 * index)[0] for index in range(4)) == 3000
