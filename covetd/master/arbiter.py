"""The master: holds the listening sockets, runs and supervises the workers.

One thread, one loop (gunicorn's arbiter shape): a selector waits on the signal pipe
and every worker's control channel; each turn it dispatches queued signals, reaps
children, and checks deadlines (heartbeats, boot, kills, respawn backoff, RSS caps,
the systemd watchdog). No event loop and no threads live here, so forking a worker
is always safe.

Invariants:

- every replacement is readiness-gated: a new worker is started first and the one it
  replaces is told to drain only once the new one reported ``ready`` (reload, recycle,
  RSS cap); if the new one fails, the old one keeps serving;
- a slot (a share of the listening sockets) is covered by one live worker of the
  current generation, except while a replacement overlaps the worker it replaces;
- a worker that fails while booting stops the master with the reason, unless it was
  a replacement (the old worker stays) or part of a reload (the old generation stays);
- no listening socket is closed while the master runs (see ``sockets.py``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import shutil
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..config import Config, ConfigError
from ..logs import reopen_logs
from ..websocket.local import runtime_directory
from ..worker.appload import AppLoadError, load_app
from ..worker.control import LineReader, send_line, send_with_fd
from ..worker.main import DUMP_SIGNAL, EXIT_BOOT_FAILURE, run_worker
from .hooks import Hooks
from .metrics import MasterMetrics
from .pidfile import Pidfile, PidfileError
from .proctitle import master_title, set_title, worker_title
from .signals import SignalQueue
from .sockets import INHERIT_ENV, Listener, SocketPool
from .systemd import Notifier, watchdog_interval

__all__ = ["Arbiter", "WorkerProcess"]

error_log = logging.getLogger("covetd.error")

BOOTING, READY = "booting", "ready"
KILL_GRACE = 5.0  # beyond graceful_timeout, before a draining worker is killed
DUMP_GRACE = 1.0  # between the stack-dump signal and the kill of a blocked worker
BACKOFF_MAX = 30.0
STABLE_AFTER = 30.0  # a worker up this long resets its slot's crash backoff


@dataclass(eq=False)
class WorkerProcess:
    """What the master knows of one worker process."""

    pid: int
    slot: int
    generation: int
    channel: socket.socket
    spawned_at: float
    state: str = BOOTING
    ready_at: float = 0.0
    last_beat: float = 0.0
    served: int = 0
    retiring: str | None = None  # why it was told to stop
    recycle: str | None = None  # why a replacement was asked for
    replaces: WorkerProcess | None = None
    timed_out: bool = False
    healthy: bool = True  # its database pools are connected (for /readyz)
    kill_at: float | None = None
    checked_rss_at: float = 0.0

    def __post_init__(self) -> None:
        self.reader = LineReader()

    @property
    def covers_slot(self) -> bool:
        return self.retiring is None and not self.timed_out


@dataclass(frozen=True)
class WorkerInfo:
    """What hooks are told about a worker."""

    pid: int
    slot: int
    generation: int
    exit_code: int | None = None
    reason: str | None = None


class Arbiter:
    """Run ``config``'s workers until a stop signal; ``reload`` re-reads the config."""

    def __init__(self, config: Config, reload: Callable[[], Config]) -> None:
        self.config = config
        self.reload_config = reload
        self.slots = config.server.workers
        self.generation = 1
        self.pending: tuple[int, Config] | None = None  # a reload waiting for readiness
        self.workers: dict[int, WorkerProcess] = {}
        self.restarts: Counter[str] = Counter()
        self.crashes: dict[int, int] = {}
        self.respawn_at: dict[int, float] = {}
        self.booted = False
        self.stopping: str | None = None
        self.exit_code = 0
        self.last_error = ""
        self.reexec_pid: int | None = None
        self.app: Any = None
        self.signals = SignalQueue()
        self.selector = selectors.DefaultSelector()
        self.notifier = Notifier.from_environ()
        self.watchdog_every = watchdog_interval()
        self.watchdog_at = 0.0
        self.pool = SocketPool(config.server.backlog, config.server.reuse_port)
        self.pidfile = Pidfile(config.server.pidfile) if config.server.pidfile else None
        self.hooks = Hooks.load(config.hooks, config.app_dir)
        self.metrics: MasterMetrics | None = None

    # -- life --------------------------------------------------------------------------

    def run(self, activated: list[tuple[str, socket.socket]] | None = None) -> int:
        """Bind, spawn, supervise until stopped; returns the process exit code."""
        self.hooks.run("on_starting", self.config)
        if self.pidfile is not None:
            self.pidfile.create(os.getpid())
        try:
            self._open_sockets(activated)
            if self.config.metrics.enabled:
                self.metrics = MasterMetrics(self, self.config.metrics)
            if self.config.server.preload:
                self.app = self._preload()
            self.signals.install()
            self.selector.register(self.signals, selectors.EVENT_READ, None)
            set_title(master_title(str(self.config.app)))
            error_log.info(
                "master %d: %d worker(s) on %s",
                os.getpid(),
                self.slots,
                ", ".join(sorted({item.address for item in self.pool.listeners})),
            )
            self._loop()
        finally:
            self._cleanup()
        return self.exit_code

    def _open_sockets(self, activated: list[tuple[str, socket.socket]] | None) -> None:
        inherited = os.environ.pop(INHERIT_ENV, None)
        if inherited:
            self.pool.inherit(inherited)
        elif activated:
            self.pool.adopt(activated)
        else:
            self.pool.bind(
                self.config.server.bind,
                unix_mode=self.config.server.unix_socket_mode,
                unix_owner=self.config.server.unix_socket_owner,
            )
        for slot in range(self.slots):
            self.pool.ensure_slot(slot)

    def _preload(self) -> Any:
        assert self.config.app is not None
        return load_app(self.config.app, self.config.app_dir)

    def _cleanup(self) -> None:
        for worker in list(self.workers.values()):
            _kill(worker.pid, signal.SIGKILL)
        if self.metrics is not None:
            self.metrics.close()
        self.pool.close()
        if self.pidfile is not None:
            self.pidfile.unlink()
        shutil.rmtree(runtime_directory(os.getpid()), ignore_errors=True)  # workers' sockets
        self.selector.close()

    def _loop(self) -> None:
        while True:
            now = time.monotonic()
            self._check_workers(now)
            if self.stopping is None:
                self._cover_slots(now)
            self._ping_watchdog(now)
            for key, _ in self.selector.select(self._timeout(time.monotonic())):
                data = key.data
                if isinstance(data, WorkerProcess):
                    self._read_channel(data)
                elif data is not None:
                    data(key.fileobj)  # the metrics endpoint's sockets
            if self.metrics is not None:
                self.metrics.expire(time.monotonic())
            for signum in self.signals.drain():
                self._dispatch(signum)
            self._reap()
            if self.stopping is not None and not self.workers:
                return

    def _timeout(self, now: float) -> float:
        deadlines = [now + 1.0]
        deadlines += [w.kill_at for w in self.workers.values() if w.kill_at is not None]
        deadlines += list(self.respawn_at.values())
        if self.watchdog_every:
            deadlines.append(self.watchdog_at)
        return max(0.0, min(deadlines) - now)

    # -- signals -----------------------------------------------------------------------

    def _dispatch(self, signum: int) -> None:
        handlers: dict[int, Callable[[], None]] = {
            signal.SIGHUP: self.handle_hup,
            signal.SIGTERM: self.handle_term,
            signal.SIGINT: self.handle_int,
            signal.SIGQUIT: self.handle_int,
            signal.SIGTTIN: self.handle_ttin,
            signal.SIGTTOU: self.handle_ttou,
            signal.SIGUSR1: self.handle_usr1,
            signal.SIGUSR2: self.handle_usr2,
        }
        handler = handlers.get(signum)
        if handler is not None:
            handler()

    def handle_term(self) -> None:
        """Graceful stop: workers finish in-flight requests within graceful_timeout."""
        self._stop(graceful=True)

    def handle_int(self) -> None:
        """Fast stop."""
        self._stop(graceful=False)

    def handle_hup(self) -> None:
        """Re-read the config; start a new generation; retire the old once it is ready."""
        if self.stopping is not None:
            return
        if self.pending is not None:
            error_log.warning("reload already in progress (generation %d)", self.pending[0])
            return
        self.notifier.reloading()
        try:
            config = self.reload_config()
        except (ConfigError, AppLoadError, OSError) as exc:
            self._error(f"reload refused, keeping the running configuration: {exc}")
            self.notifier.ready(self._status())  # the reload is over (systemctl returns)
            return
        if config.server.bind != self.config.server.bind:
            error_log.warning("server.bind changes take effect on restart or USR2 upgrade")
        self.hooks.run("on_reload", config)
        generation = self.generation + 1
        self.pending = (generation, config)
        count = config.server.workers
        error_log.info("reload: starting generation %d (%d workers)", generation, count)
        for slot in range(count):
            self._ensure_slot(slot)
            self._spawn(slot, generation, config)

    def handle_ttin(self) -> None:
        if self.stopping is None:
            self._ensure_slot(self.slots)
            self.slots += 1
            error_log.info("TTIN: %d workers", self.slots)

    def handle_ttou(self) -> None:
        if self.stopping is not None or self.slots <= 1:
            return
        self.slots -= 1
        victim = self.slots
        moved = self.pool.move_slot(victim, 0)
        for worker in self._live(0):
            for listener in moved:
                self._offer(worker, listener)
        for worker in self._live(victim):
            self._retire(worker, "ttou")
        error_log.info("TTOU: %d workers", self.slots)

    def handle_usr1(self) -> None:
        reopen_logs()
        for worker in self.workers.values():
            _kill(worker.pid, signal.SIGUSR1)

    def handle_usr2(self) -> None:
        """Re-execute a new master on the same sockets (zero-downtime upgrade)."""
        if self.reexec_pid is not None or self.stopping is not None:
            error_log.warning("USR2 ignored: an upgrade is already running or we are stopping")
            return
        if self.pidfile is not None:
            try:
                self.pidfile.rename(self.pidfile.path + ".oldbin")
            except PidfileError as exc:
                self._error(f"USR2 upgrade refused: {exc}")
                return
        environ = dict(os.environ, **{INHERIT_ENV: self.pool.inherit_spec()})
        pid = os.fork()
        if pid == 0:
            for listener in self.pool.listeners:
                os.set_inheritable(listener.fd, True)
            if self.metrics is not None:  # the new master answers on the same port
                environ.update(self.metrics.inherit_env())
            if "WATCHDOG_PID" in environ:  # the watchdog follows the new main process
                environ["WATCHDOG_PID"] = str(os.getpid())
            try:
                os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environ)
            finally:
                os._exit(1)
        self.reexec_pid = pid
        error_log.info(
            "USR2: started new master %d; send TERM to %d to retire this one", pid, os.getpid()
        )

    def _stop(self, graceful: bool) -> None:
        if self.stopping == "fast" or (self.stopping == "graceful" and graceful):
            return
        self.stopping = "graceful" if graceful else "fast"
        if self.reexec_pid is None:
            self.notifier.stopping()
        error_log.info("%s stop", "graceful" if graceful else "fast")
        grace = self.config.server.graceful_timeout + KILL_GRACE if graceful else KILL_GRACE
        now = time.monotonic()
        handover = graceful and self.reexec_pid is not None  # the USR2 master serves on
        for worker in self.workers.values():
            if not (handover and send_line(worker.channel, "retire")):
                _kill(worker.pid, signal.SIGTERM if graceful else signal.SIGQUIT)
            worker.retiring = worker.retiring or "stop"
            worker.kill_at = min(worker.kill_at or now + grace, now + grace)

    # -- workers -----------------------------------------------------------------------

    def _ensure_slot(self, slot: int) -> None:
        for listener, holder in self.pool.ensure_slot(slot):
            for worker in self._live(holder):
                send_line(worker.channel, "release", listener.id)

    def _spawn(
        self, slot: int, generation: int, config: Config, replaces: WorkerProcess | None = None
    ) -> WorkerProcess:
        listeners = self.pool.for_slot(slot)
        parent_end, child_end = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            parent_end.close()
            self._become_worker(child_end, listeners, config, slot, generation)
        child_end.close()
        parent_end.setblocking(False)
        now = time.monotonic()
        worker = WorkerProcess(
            pid, slot, generation, parent_end, now, last_beat=now, replaces=replaces
        )
        self.workers[pid] = worker
        self.selector.register(parent_end, selectors.EVENT_READ, worker)
        return worker

    def _become_worker(
        self,
        channel: socket.socket,
        listeners: list[Listener],
        config: Config,
        slot: int,
        generation: int,
    ) -> None:
        """In the forked child: shed the master's state, then be a worker. Never returns."""
        code = 1
        try:
            self.signals.close()
            self.selector.close()
            if self.metrics is not None:
                self.metrics.forget_in_child()
            for worker in self.workers.values():
                worker.channel.close()
            keep = {listener.id for listener in listeners}
            for listener in self.pool.listeners:
                if listener.id not in keep:
                    listener.sock.close()
            set_title(worker_title(generation, slot, str(config.app)))
            self.hooks.run("worker_started", WorkerInfo(os.getpid(), slot, generation))
            code = run_worker(config, {item.id: item.sock for item in listeners}, channel, self.app)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            error_log.exception("worker %d crashed", os.getpid())
        finally:
            logging.shutdown()
            os._exit(code)

    def _live(self, slot: int) -> list[WorkerProcess]:
        return [w for w in self.workers.values() if w.slot == slot and w.retiring is None]

    def _offer(self, worker: WorkerProcess, listener: Listener) -> None:
        try:
            send_with_fd(worker.channel, f"adopt {listener.id}", listener.fd)
        except OSError as exc:
            error_log.warning(
                "could not hand socket %s to worker %d: %s", listener.address, worker.pid, exc
            )

    def _read_channel(self, worker: WorkerProcess) -> None:
        try:
            data = worker.channel.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.selector.unregister(worker.channel)
            return
        now = time.monotonic()
        for words in worker.reader.feed(data):
            kind = words[0]
            if kind == "beat":
                worker.last_beat = now
                if len(words) > 1 and words[1].isdigit():
                    worker.served = int(words[1])
            elif kind == "ready":
                self._on_ready(worker, now)
            elif kind == "recycle":
                self._recycle(worker, words[1] if len(words) > 1 else "max_requests")
            elif kind == "health":
                worker.healthy = len(words) > 1 and words[1] == "up"

    def _on_ready(self, worker: WorkerProcess, now: float) -> None:
        worker.state = READY
        worker.ready_at = worker.last_beat = now
        error_log.info(
            "worker %d ready (generation %d, slot %d)", worker.pid, worker.generation, worker.slot
        )
        old = worker.replaces
        if old is not None and old.pid in self.workers:
            self._retire(old, old.recycle or "replaced")
        if self.pending is not None and worker.generation == self.pending[0]:
            self._maybe_commit()
        if not self.booted and self._ready_count(self.generation) >= self.slots:
            self.booted = True
            # MAINPID: after a USR2 upgrade systemd must follow the new master (this
            # needs NotifyAccess=all in the unit, as the old master is still alive).
            self.notifier.notify(READY=1, MAINPID=os.getpid(), STATUS=self._status())
            error_log.info("all %d workers ready", self.slots)
        else:
            self.notifier.status(self._status())

    def _ready_count(self, generation: int) -> int:
        return sum(
            1
            for w in self.workers.values()
            if w.generation == generation and w.state == READY and w.covers_slot
        )

    def _maybe_commit(self) -> None:
        assert self.pending is not None
        generation, config = self.pending
        count = config.server.workers
        if self._ready_count(generation) < count:
            return
        self.pending = None
        self.config, self.generation = config, generation
        for slot in range(count, self.slots):  # fewer workers now: keep their sockets served
            moved = self.pool.move_slot(slot, 0)
            for worker in self._live(0):
                if worker.generation == generation:
                    for listener in moved:
                        self._offer(worker, listener)
        self.slots = count
        for worker in list(self.workers.values()):
            if worker.generation < generation and worker.retiring is None:
                self._retire(worker, "reload")
        error_log.info("reload: generation %d serving", generation)
        self.notifier.ready(self._status())

    def _recycle(self, worker: WorkerProcess, reason: str) -> None:
        """Replace ``worker`` (readiness-gated) because of ``reason``."""
        if (
            worker.recycle
            or worker.retiring
            or self.stopping
            or self.pending
            or worker.state != READY
        ):
            return
        worker.recycle = reason
        error_log.info("worker %d: %s reached, starting its replacement", worker.pid, reason)
        self._spawn(worker.slot, worker.generation, self.config, replaces=worker)

    def _retire(self, worker: WorkerProcess, reason: str) -> None:
        """Drain ``worker`` while others serve its clients (its replacement, or the rest)."""
        worker.retiring = reason
        if reason not in ("stop", "ttou", "replaced"):
            self.restarts[reason] += 1
        if not send_line(worker.channel, "retire"):
            _kill(worker.pid, signal.SIGTERM)
        worker.kill_at = time.monotonic() + self.config.server.graceful_timeout + KILL_GRACE

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            if worker is not None:
                self._exited(worker, os.waitstatus_to_exitcode(status))
            elif pid == self.reexec_pid:
                self._new_master_exited(os.waitstatus_to_exitcode(status))
            else:
                error_log.debug("reaped process %d (exit %s)", pid, status)

    def _exited(self, worker: WorkerProcess, code: int) -> None:
        if worker.channel.fileno() >= 0:
            with contextlib.suppress(KeyError, ValueError):  # unregistered at EOF already
                self.selector.unregister(worker.channel)
            worker.channel.close()
        if self.metrics is not None:
            self.metrics.worker_exited(worker.pid)
        reason = worker.retiring or ("timeout" if worker.timed_out else "crash")
        self.hooks.run(
            "worker_exited", WorkerInfo(worker.pid, worker.slot, worker.generation, code, reason)
        )
        if worker.retiring is not None:
            error_log.info("worker %d exited (%s, code %d)", worker.pid, worker.retiring, code)
        elif worker.state == BOOTING:
            self._boot_failed(worker, code)
        else:
            self.restarts[reason] += 1
            error_log.error(
                "worker %d (slot %d) %s, exit code %d; replacing it",
                worker.pid,
                worker.slot,
                "timed out" if worker.timed_out else "died",
                code,
            )
            self._schedule_respawn(worker)

    def _boot_failed(self, worker: WorkerProcess, code: int) -> None:
        why = "failed to start its app" if code == EXIT_BOOT_FAILURE else f"exited with {code}"
        if self.stopping is not None:
            return
        if worker.replaces is not None:
            worker.replaces.recycle = None
            self._error(
                f"replacement worker {why} while booting; worker "
                f"{worker.replaces.pid} keeps serving (see the log above)"
            )
        elif self.pending is not None and worker.generation == self.pending[0]:
            generation = self.pending[0]
            self.pending = None
            for other in list(self.workers.values()):
                if other.generation == generation:
                    other.retiring = "reload-aborted"
                    _kill(other.pid, signal.SIGTERM)
            self._error(
                f"reload aborted: a worker of generation {generation} {why} "
                f"while booting; generation {self.generation} keeps serving"
            )
            self.notifier.ready(self._status())
        elif self.booted:
            # Once serving, a respawn that fails to boot (a database down at that
            # moment, a resource limit) must not take the whole server down: the other
            # workers keep serving and the slot is retried with backoff.
            self._error(
                f"worker (slot {worker.slot}) {why} while booting; retrying with backoff"
                " (see the log above)"
            )
            self._schedule_respawn(worker)
        else:
            self._error(f"worker {why} while booting; stopping (see the log above)")
            self.exit_code = EXIT_BOOT_FAILURE
            self._stop(graceful=False)

    def _schedule_respawn(self, worker: WorkerProcess) -> None:
        slot = worker.slot
        if worker.ready_at and time.monotonic() - worker.ready_at > STABLE_AFTER:
            self.crashes.pop(slot, None)
        failures = self.crashes.get(slot, 0)
        self.crashes[slot] = failures + 1
        delay = 0.0 if failures == 0 else min(BACKOFF_MAX, 0.5 * 2 ** (failures - 1))
        self.respawn_at[slot] = time.monotonic() + delay

    def _cover_slots(self, now: float) -> None:
        for slot in range(self.slots):
            if any(
                w.slot == slot and w.generation == self.generation and w.covers_slot
                for w in self.workers.values()
            ):
                continue
            if self.respawn_at.get(slot, 0.0) > now:
                continue
            self.respawn_at.pop(slot, None)
            self._spawn(slot, self.generation, self.config)

    def _check_workers(self, now: float) -> None:
        server = self.config.server
        boot_timeout = max(30.0, server.worker_timeout)
        for worker in list(self.workers.values()):
            if worker.kill_at is not None and now >= worker.kill_at:
                worker.kill_at = None
                error_log.warning("worker %d did not stop in time; killing it", worker.pid)
                _kill(worker.pid, signal.SIGKILL)
            elif worker.retiring is not None or worker.timed_out:
                continue
            elif worker.state == BOOTING and now - worker.spawned_at > boot_timeout:
                error_log.error(
                    "worker %d not ready after %.0fs; killing it", worker.pid, boot_timeout
                )
                worker.kill_at = now
            elif worker.state == READY and now - worker.last_beat > server.worker_timeout:
                self._timed_out(worker, now)
            elif server.max_rss and worker.state == READY and now - worker.checked_rss_at > 1.0:
                worker.checked_rss_at = now
                if _rss(worker.pid) > server.max_rss:
                    self._recycle(worker, "max_rss")

    def _timed_out(self, worker: WorkerProcess, now: float) -> None:
        error_log.error(
            "worker %d silent for %.1fs (worker_timeout %s): its event loop is blocked; "
            "dumping its stacks, then replacing it",
            worker.pid,
            now - worker.last_beat,
            self.config.server.worker_timeout,
        )
        worker.timed_out = True
        _kill(worker.pid, DUMP_SIGNAL)
        worker.kill_at = now + DUMP_GRACE

    def _new_master_exited(self, code: int) -> None:
        self.reexec_pid = None
        if self.pidfile is not None:
            with contextlib.suppress(PidfileError):
                self.pidfile.rename(self.pidfile.path.removesuffix(".oldbin"))
        self._error(f"the new master (USR2) exited with {code}; this master keeps serving")

    # -- reporting ---------------------------------------------------------------------

    def ready_workers(self) -> int:
        """Workers that serve now (ready and not being stopped)."""
        return sum(1 for w in self.workers.values() if w.state == READY and w.covers_slot)

    def readiness_problem(self) -> str | None:
        """Why this instance should not get traffic now, or None (for /readyz)."""
        if self.stopping is not None:
            return "stopping"
        if not self.booted:
            return "starting"
        if self._ready_count(self.generation) < self.slots:
            return f"{self._ready_count(self.generation)} of {self.slots} workers ready"
        unhealthy = [w.pid for w in self.workers.values() if w.covers_slot and not w.healthy]
        if unhealthy:
            return f"database unavailable in worker(s) {', '.join(map(str, unhealthy))}"
        return None

    def _status(self) -> str:
        text = (
            f"{self._ready_count(self.generation)} of {self.slots} workers ready, "
            f"generation {self.generation}"
        )
        return f"{text}; last error: {self.last_error}" if self.last_error else text

    def _error(self, message: str) -> None:
        error_log.error("%s", message)
        self.last_error = message
        self.notifier.status(self._status())

    def _ping_watchdog(self, now: float) -> None:
        if self.watchdog_every and now >= self.watchdog_at:
            self.notifier.watchdog()
            self.watchdog_at = now + self.watchdog_every


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _rss(pid: int) -> int:
    """Resident set size in bytes (0 when unknown)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
