"""The master's side of metrics: the multiprocess directory, the dead-worker folding,
and the endpoint on ``metrics.bind`` (``/metrics``, ``/healthz``, ``/readyz``)."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import MetricsConfig
from .sockets import bind_one

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from ..metrics.exporter import Reply
    from .arbiter import Arbiter

__all__ = ["MasterMetrics"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


INHERIT_METRICS_ENV = "COVETD_METRICS_LISTENER"  # "fd,address", for a USR2 master


def _inherited(address: str) -> socket.socket | None:
    """The endpoint's socket of the master that re-executed us (USR2), if it is for
    the same address (both masters then answer on it until the old one exits)."""
    spec = os.environ.pop(INHERIT_METRICS_ENV, None)
    if not spec:
        return None
    fd_text, _, inherited_address = spec.partition(",")
    sock = socket.socket(fileno=int(fd_text))
    if inherited_address != address:
        sock.close()  # the new config moved it: bind the new address
        return None
    sock.setblocking(False)
    return sock


class MasterMetrics:
    """Owns the metrics directory and serves the workers' metrics from the master."""

    def __init__(self, arbiter: Arbiter, config: MetricsConfig) -> None:
        self.arbiter = arbiter
        self.owned = config.multiproc_dir is None
        if config.multiproc_dir is None:
            self.directory = tempfile.mkdtemp(prefix="covetd-metrics-")
        else:
            self.directory = config.multiproc_dir
            _clear(self.directory)  # fresh at start: nothing from an earlier run counts
        # Set before prometheus-client is imported anywhere: it picks its value class
        # from this variable at import time (workers inherit it through fork).
        os.environ[MULTIPROC_ENV] = self.directory
        from ..metrics.collector import EngineCollector
        from ..metrics.exporter import Exporter

        self.aggregate: dict[Any, float] = {}
        self.collector = EngineCollector(
            self.directory, self.aggregate, self._slot_of, config.buckets, self._master_metrics
        )
        self.address = str(config.bind)
        sock = _inherited(self.address) or bind_one(config.bind, backlog=64)
        self.exporter = Exporter(
            sock,
            {"/metrics": self.render, "/healthz": self.healthz, "/readyz": self.readyz},
            arbiter.selector,
        )

    # -- endpoint ------------------------------------------------------------------------

    def render(self, accept: str) -> Reply:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
        from prometheus_client.openmetrics import exposition as openmetrics

        from ..metrics.exporter import Reply

        registry = CollectorRegistry(auto_describe=False)
        registry.register(self.collector)
        if "application/openmetrics-text" in accept:
            return Reply(
                200, openmetrics.generate_latest(registry), openmetrics.CONTENT_TYPE_LATEST
            )
        return Reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)

    def healthz(self, accept: str) -> Reply:
        """200 while the master runs and at least one worker serves."""
        from ..metrics.exporter import Reply

        ready = self.arbiter.ready_workers()
        if ready:
            return Reply(200, f"ok: {ready} worker(s) serving\n".encode())
        return Reply(503, b"no worker is serving\n")

    def readyz(self, accept: str) -> Reply:
        """200 when every worker is ready and its database pools are connected."""
        from ..metrics.exporter import Reply

        problem = self.arbiter.readiness_problem()
        if problem is None:
            return Reply(200, b"ready\n")
        return Reply(503, f"not ready: {problem}\n".encode())

    def expire(self, now: float) -> None:
        self.exporter.expire(now)

    # -- bookkeeping ---------------------------------------------------------------------

    def worker_exited(self, pid: int) -> None:
        from ..metrics.collector import fold_dead_worker

        fold_dead_worker(self.directory, str(pid), self.aggregate)

    def _slot_of(self, ident: str) -> str | None:
        worker = self.arbiter.workers.get(int(ident)) if ident.isdigit() else None
        return str(worker.slot) if worker is not None else None

    def _master_metrics(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        from ..metrics.process import process_metrics

        workers = GaugeMetricFamily("covetd_workers", "Worker processes serving.")
        workers.add_metric([], self.arbiter.ready_workers())
        yield workers
        restarts = CounterMetricFamily(
            "covetd_worker_restarts", "Workers replaced, by reason.", labels=["reason"]
        )
        for reason in ("crash", "timeout", "max_requests", "max_rss", "reload"):
            restarts.add_metric([reason], self.arbiter.restarts.get(reason, 0))
        yield restarts
        processes = [("master", os.getpid())] + [
            (f"worker-{w.slot}", w.pid) for w in self.arbiter.workers.values()
        ]
        yield from process_metrics(processes)

    def inherit_env(self) -> dict[str, str]:
        """For a USR2 re-exec: the environment that hands our socket over."""
        sock = self.exporter.sock
        os.set_inheritable(sock.fileno(), True)
        return {INHERIT_METRICS_ENV: f"{sock.fileno()},{self.address}"}

    def forget_in_child(self) -> None:
        """In a forked worker: close the endpoint's sockets (they are the master's)."""
        for sock in (self.exporter.sock, *self.exporter.clients):
            sock.close()

    def close(self) -> None:
        self.exporter.close()
        if self.owned:
            shutil.rmtree(self.directory, ignore_errors=True)


def _clear(directory: str) -> None:
    Path(directory).mkdir(parents=True, exist_ok=True)
    for path in Path(directory).iterdir():
        if path.suffix in (".db", ".bin", ".keys"):
            path.unlink(missing_ok=True)
