"""Token buckets, and where their state lives: every worker of a host (``local``) or
every host (``redis``).

A bucket holds up to ``burst`` tokens and refills ``rate`` tokens per second; a
request takes one token or is refused. A check is one atomic read-modify-write:

``local`` -- a file-backed table in shared memory (``/dev/shm``, else
``$XDG_RUNTIME_DIR``, else the temp dir), one file per limit, named after the covetd
master (``os.getppid()`` in a worker, plus the master's start time so a recycled pid
never inherits a dead master's table). Every worker of that master maps the same
file. Invariants:

- the file is a header and ``groups`` groups of ``WAYS`` slots; a key (hashed with a
  per-table random salt, so nobody can aim keys at one group) lives in one group;
- a check holds the lock of its group for the few microseconds of the update, so
  updates of one key are serialised across processes (and across threads, since the
  event loop never yields inside). The locks are robust process-shared mutexes kept
  in the file (``robust_mutex``: no system call unless another worker holds the lock;
  each guards every ``LOCKS``-th group), or, where the C library has none, an
  exclusive ``fcntl.lockf`` byte-range lock on the group. Either way the kernel hands
  the lock on if a worker dies holding it;
- the clock is ``CLOCK_MONOTONIC``, one clock for every process of the host;
- memory is bounded: the file never grows. Way 0 of each group is the group's
  *overflow* bucket; ways 1.. belong to one key each. A key without a way takes a
  free way, or the way of a key whose bucket has refilled completely (forgetting a
  full bucket loses nothing: a new key starts full). When every way holds a
  partly-drained bucket, the key draws from the overflow bucket, shared by all such
  keys of the group, and a key that later gets its own way starts with the overflow
  bucket's level. By induction the overflow bucket never holds more tokens than any
  of its users' own buckets would, so **no key ever gets more than its limit**;
  under pressure, keys of a saturated group share a limit instead (logged).

``redis`` -- one hash per key, updated by a Lua script (one round trip, atomic in
Redis), timed by Redis's own clock (``TIME``) so hosts with skewed clocks agree; the
key expires once its bucket would be full again.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import math
import mmap
import os
import re
import secrets
import stat
import struct
import tempfile
import time
from typing import Any, NamedTuple

from . import robust_mutex, this_process
from .redis_link import RedisLink

__all__ = ["Decision", "Limit", "LocalStore", "RedisStore"]

error_log = logging.getLogger("covetd.error")


class Limit(NamedTuple):
    """One token bucket per key: ``rate`` tokens per second, at most ``burst``.

    ``name`` tells limits apart (the route pattern); a changed rate or burst is a new
    limit with fresh buckets. (Named tuples: made and hashed per check, in C.)
    """

    rate: float
    burst: int
    name: str = "*"

    @property
    def ident(self) -> str:
        return hashlib.sha256(f"{self.name}|{self.rate!r}|{self.burst}".encode()).hexdigest()[:16]

    @property
    def window(self) -> int:
        """Seconds an empty bucket takes to fill (the policy's ``w``)."""
        return max(1, math.ceil(self.burst / self.rate))


class Decision(NamedTuple):
    """The outcome of one check, with what the ``RateLimit-*`` headers report."""

    allowed: bool
    limit: int
    remaining: int
    reset_after: float  # seconds until the bucket is full again
    retry_after: float  # seconds until a token is available (0 when allowed)


def take_token(limit: Limit, tokens: float) -> tuple[Decision, float]:
    """Take one token from a bucket holding ``tokens`` (already refilled to now);
    returns the decision and the bucket's new level."""
    if tokens >= 1.0:
        return decide(limit, True, tokens - 1.0), tokens - 1.0
    return decide(limit, False, tokens), tokens


def decide(limit: Limit, allowed: bool, left: float) -> Decision:
    """The decision for a bucket left holding ``left`` tokens."""
    rate, burst = limit.rate, limit.burst
    return Decision(
        allowed,  # allowed
        burst,  # limit
        math.floor(left) if left > 0.0 else 0,  # remaining
        (burst - left) / rate if left < burst else 0.0,  # reset_after
        0.0 if allowed else (1.0 - left) / rate,  # retry_after
    )


# --- local: a shared-memory table ------------------------------------------------------

MAGIC = b"covetdRL"
VERSION = 2  # 2: the locks area after the header
WAYS = 8  # slots per group: way 0 is the group's overflow bucket
# magic, version, ways, groups, salt, rate, burst, how groups are locked
_HEADER = struct.Struct("<8sIII16sdqI")
HEADER_SIZE = 64
LOCKS = 256  # robust mutexes, each guarding every LOCKS-th group
LOCKS_SIZE = LOCKS * robust_mutex.MUTEX_SIZE
_MUTEXES, _LOCKF = 1, 2  # the header's locking field
_SLOT = struct.Struct("<Qdd")  # key fingerprint (0 = free), tokens, last update
SLOT_SIZE = _SLOT.size
GROUP_SIZE = WAYS * SLOT_SIZE
_GROUP = struct.Struct("<" + "Qdd" * WAYS)  # a whole group, to place a newcomer
_FINGERPRINTS = struct.Struct("<" + "Q16x" * WAYS)  # a group's fingerprints alone
_FINGERPRINT_SIZE = 8
_BUCKET = struct.Struct("<dd")  # a slot's tokens and last update
_TABLE_NAME = re.compile(r"covetd-ratelimit-(\d+)-(\d+)-[0-9a-f]+\.tbl")
_SATURATION_LOG_INTERVAL = 60.0
_PLACES_LIMIT = 4096  # keys whose place a table remembers


class TableError(RuntimeError):
    """The shared table cannot be used (someone else's file, wrong layout...)."""


class LocalTable:
    """One limit's buckets for every worker of this master (see the module docstring)."""

    def __init__(self, path: str, limit: Limit, slots: int) -> None:
        self.path = path
        self.limit = limit
        self.full, self.rate = float(limit.burst), limit.rate
        self.groups = max(1, slots // WAYS)
        self.groups_offset = HEADER_SIZE + LOCKS_SIZE
        self.size = self.groups_offset + self.groups * GROUP_SIZE
        self.locking = _MUTEXES if robust_mutex.AVAILABLE else _LOCKF
        self.fd = _open_private(path)
        try:
            self.salt = self._initialise()
        except BaseException:
            if hasattr(self, "map"):
                self.map.close()
            os.close(self.fd)
            raise
        self.mutexes = (
            robust_mutex.RobustMutexes(self.map, HEADER_SIZE, LOCKS)
            if self.locking == _MUTEXES
            else None
        )
        # key -> (group offset, fingerprint, lock): the keyed hash once per key (a
        # client comes back); bounded, emptied when full.
        self._places: dict[str, tuple[int, int, Any]] = {}
        self._saturation_logged = -_SATURATION_LOG_INTERVAL

    def _initialise(self) -> bytes:
        """Set the table up if this process is first (under the header's lock), map it,
        check it."""
        fcntl.lockf(self.fd, fcntl.LOCK_EX, HEADER_SIZE, 0)
        try:
            raw = os.pread(self.fd, _HEADER.size, 0)
            if not raw.strip(b"\0"):  # new (or its creator died before writing the header)
                os.ftruncate(self.fd, self.size)
                self.map = mmap.mmap(self.fd, self.size)
                if self.locking == _MUTEXES:  # before the header: then others use them
                    robust_mutex.RobustMutexes(self.map, HEADER_SIZE, LOCKS).initialise()
                raw = self._header(secrets.token_bytes(16))
                os.pwrite(self.fd, raw.ljust(HEADER_SIZE, b"\0"), 0)
                return self._check_header(raw)
        finally:
            fcntl.lockf(self.fd, fcntl.LOCK_UN, HEADER_SIZE, 0)
        salt = self._check_header(raw)
        self.map = mmap.mmap(self.fd, self.size)
        return salt

    def _header(self, salt: bytes) -> bytes:
        limit = self.limit
        return _HEADER.pack(
            MAGIC, VERSION, WAYS, self.groups, salt, limit.rate, limit.burst, self.locking
        )

    def _check_header(self, raw: bytes) -> bytes:
        if len(raw) < _HEADER.size:
            raise TableError(f"{self.path}: truncated header")
        magic, version, ways, groups, salt, rate, burst, locking = _HEADER.unpack(raw)
        expected = (MAGIC, VERSION, WAYS, self.groups, self.limit.rate, self.limit.burst)
        if (magic, version, ways, groups, rate, burst) != expected:
            raise TableError(f"{self.path}: not a table for this limit; remove the file")
        if locking != self.locking:
            raise TableError(f"{self.path}: locked another way by another process")
        if os.fstat(self.fd).st_size < self.size:
            raise TableError(f"{self.path}: truncated table; remove the file")
        return bytes(salt)

    def close(self) -> None:
        self.mutexes = None
        self.map.close()
        os.close(self.fd)

    def take(self, key: str) -> Decision:
        place = self._places.get(key)
        if place is None:
            place = self._place(key)
        offset, fingerprint, lock = place
        mutexes = self.mutexes
        if mutexes is not None:
            status = robust_mutex.trylock(lock)
            if status:
                mutexes.wait(lock, status)
            try:
                return self._take_locked(offset, fingerprint, time.monotonic())
            finally:
                robust_mutex.unlock(lock)
        fcntl.lockf(self.fd, fcntl.LOCK_EX, GROUP_SIZE, offset)
        try:
            return self._take_locked(offset, fingerprint, time.monotonic())
        finally:
            fcntl.lockf(self.fd, fcntl.LOCK_UN, GROUP_SIZE, offset)

    def _place(self, key: str) -> tuple[int, int, Any]:
        """Where ``key``'s bucket lives: its group's offset, its fingerprint, its lock."""
        raw = key.encode("utf-8", "surrogateescape")
        digest = hashlib.blake2b(raw, key=self.salt, digest_size=16).digest()
        group = int.from_bytes(digest[:8], "little") % self.groups
        fingerprint = int.from_bytes(digest[8:], "little") | 1
        lock = self.mutexes.addresses[group % LOCKS] if self.mutexes is not None else None
        place = (self.groups_offset + group * GROUP_SIZE, fingerprint, lock)
        if len(self._places) >= _PLACES_LIMIT:
            self._places.clear()
        self._places[key] = place
        return place

    def _take_locked(self, offset: int, fingerprint: int, now: float) -> Decision:
        table = self.map
        try:  # a key seen before has a way: read its fingerprint row, then its bucket
            way = _FINGERPRINTS.unpack_from(table, offset).index(fingerprint, 1)
        except ValueError:
            return self._take_newcomer(offset, fingerprint, now)
        bucket = offset + way * SLOT_SIZE + _FINGERPRINT_SIZE
        decision, left = take_token(
            self.limit, self._refill(_BUCKET.unpack_from(table, bucket), now)
        )
        _BUCKET.pack_into(table, bucket, left, now)  # its fingerprint stays
        return decision

    def _take_newcomer(self, offset: int, fingerprint: int, now: float) -> Decision:
        group = _GROUP.unpack_from(self.map, offset)  # (fingerprint, tokens, updated) x WAYS
        ways = [group[index + 1 : index + 3] for index in range(0, 3 * WAYS, 3)]
        tokens = self._refill(ways[0], now)  # a newcomer starts at the overflow level
        way = next((w for w in range(1, WAYS) if self._reusable(group[3 * w], ways[w], now)), 0)
        if way == 0:
            self._log_saturation(now)
        decision, left = take_token(self.limit, tokens)
        _SLOT.pack_into(self.map, offset + way * SLOT_SIZE, fingerprint if way else 0, left, now)
        return decision

    def _refill(self, bucket: tuple[float, float], now: float) -> float:
        """The level of ``bucket`` (tokens, last update) refilled to ``now``."""
        tokens, updated = bucket
        if updated == 0.0:  # never used: a full bucket
            return self.full
        if now > updated:
            tokens += (now - updated) * self.rate
        return tokens if tokens < self.full else self.full

    def _reusable(self, fingerprint: int, bucket: tuple[float, float], now: float) -> bool:
        return fingerprint == 0 or self._refill(bucket, now) >= self.full

    def _log_saturation(self, now: float) -> None:
        if now - self._saturation_logged >= _SATURATION_LOG_INTERVAL:
            self._saturation_logged = now
            error_log.warning(
                "rate_limit: a group of %s is full of active keys; new keys of that group "
                "share one bucket (raise 'slots' above the number of active keys)",
                self.path,
            )


class LocalStore:
    """The ``local`` backend: one ``LocalTable`` per limit, opened on first use in the
    worker (never in the master, never by ``--check-config``)."""

    def __init__(self, slots: int, directory: str | None) -> None:
        self.slots = slots
        self.directory = directory
        self._tables: dict[Limit, LocalTable] = {}
        self._pid = 0

    async def take(self, limit: Limit, key: str) -> Decision:
        return self.take_now(limit, key)

    def take_now(self, limit: Limit, key: str) -> Decision:
        """``take``, for callers that know the store is local (no coroutine to make)."""
        return self.table(limit).take(key)

    def table(self, limit: Limit) -> LocalTable:
        if self._pid != this_process.pid:  # first use, or we were forked: reopen
            self._tables = {}
            self._pid = this_process.pid
        table = self._tables.get(limit)
        if table is None:
            directory = self.directory or shared_memory_dir()
            if not self._tables:
                remove_stale_tables(directory)
            table = self._tables[limit] = LocalTable(self.path(directory, limit), limit, self.slots)
        return table

    def path(self, directory: str, limit: Limit) -> str:
        master = os.getppid()
        layout = hashlib.sha256(f"{limit.ident}|{self.slots}|{VERSION}".encode()).hexdigest()
        name = f"covetd-ratelimit-{master}-{process_start(master)}-{layout[:16]}.tbl"
        return os.path.join(directory, name)


def shared_memory_dir() -> str:
    """``/dev/shm`` when usable, else ``$XDG_RUNTIME_DIR``, else the temp dir."""
    for candidate in ("/dev/shm", os.environ.get("XDG_RUNTIME_DIR")):
        if candidate and os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
            return candidate
    return tempfile.gettempdir()


def process_start(pid: int) -> int:
    """When ``pid`` started (clock ticks since boot; /proc field 22), 0 if unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            fields = file.read().rpartition(b")")[2].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return 0


def remove_stale_tables(directory: str) -> None:
    """Delete our tables whose master is gone (its pid is dead or was reused)."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    uid = os.geteuid()
    for name in names:
        match = _TABLE_NAME.fullmatch(name)
        if match is None or _master_alive(int(match[1]), int(match[2])):
            continue
        path = os.path.join(directory, name)
        try:
            if os.lstat(path).st_uid == uid:
                os.unlink(path)
        except OSError:
            continue  # another worker removed it first


def _master_alive(pid: int, started: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return started == 0 or process_start(pid) in (0, started)


def _open_private(path: str) -> int:
    """Open (creating) a regular file that only we can read or write."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o600)
    info = os.fstat(fd)
    if (
        not stat.S_ISREG(info.st_mode)
        or info.st_uid != os.geteuid()
        or info.st_mode & (stat.S_IRWXG | stat.S_IRWXO)
    ):
        os.close(fd)
        raise TableError(f"{path}: not a private regular file of ours; refusing to use it")
    return fd


# --- redis: a Lua script ----------------------------------------------------------------

# KEYS[1] the bucket; ARGV: rate (tokens/s), burst. Returns {allowed, tokens left}.
BUCKET_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1])
local updated = tonumber(state[2])
if tokens == nil or updated == nil then
  tokens = burst
else
  tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
end
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
           'updated', string.format('%.17g', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {allowed, string.format('%.17g', tokens)}
"""


class RedisStore:
    """The ``redis`` backend: buckets shared by every covetd instance using ``url``."""

    def __init__(self, link: RedisLink, prefix: str) -> None:
        self.link = link
        self.prefix = prefix
        self._script: Any = None

    async def take(self, limit: Limit, key: str) -> Decision:
        hashed = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:32]
        redis_key = f"{self.prefix}{limit.ident}:{hashed}"
        allowed, left = await self.link.call(lambda client: self._run(client, redis_key, limit))
        return decide(limit, bool(int(allowed)), float(left))

    async def _run(self, client: Any, key: str, limit: Limit) -> Any:
        if self._script is None:
            self._script = client.register_script(BUCKET_SCRIPT)
        return await self._script(keys=[key], args=[repr(limit.rate), limit.burst])
