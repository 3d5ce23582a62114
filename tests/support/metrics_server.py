"""Helpers for the metrics tests (``tests/integration/metrics/``).

``MetricsServer`` is a real covetd master with metrics on: the app on a reserved TCP
port bound the production way (one SO_REUSEPORT socket per worker slot, so new
connections spread over the workers by the kernel's hash), and the master's endpoint
(``/metrics``, ``/healthz``, ``/readyz``) on a free port of its own. ``Scrape`` parses
an exposition with prometheus-client's own parsers (text or OpenMetrics), so a
malformed ``/metrics`` fails there. Every wait has a deadline; nothing sleeps.
"""

from __future__ import annotations

import collections
import http.client
import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families as text_families

from .process import Covetd, wait_for
from .proctree import children, reserve_port
from .slots import get as fetch

HOST = "127.0.0.1"
APP = "metrics_app:app"
OPENMETRICS = "application/openmetrics-text; version=1.0.0"
ITEM_ROUTE = "/items/{id:int}"
UNMATCHED = "<unmatched>"
REQUESTS = "covetd_http_requests_total"
DURATION = "covetd_http_request_duration_seconds"
RESTARTS = "covetd_worker_restarts_total"
# metrics.buckets by default, as the ``le`` labels render them
DEFAULT_BOUNDS = ["0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5"]
DEFAULT_BOUNDS += ["1.0", "2.5", "5.0", "10.0"]

Labels = frozenset[tuple[str, str]]


def free_port() -> int:
    """A port nobody listens on right now (bound on port 0, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def unavailable(reason: str) -> NoReturn:
    """Skip the test for want of a tool, except under CI=true: there, fail."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must have it")
    pytest.skip(reason)


def require_tool(name: str, install: str) -> str:
    """The path of executable ``name`` (see ``unavailable`` when it is missing)."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} is not installed ({install})")
    return path


# -- expositions -----------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    name: str
    labels: Labels
    value: float

    def label(self, name: str) -> str | None:
        return dict(self.labels).get(name)


class Scrape:
    """One ``/metrics`` body, parsed; ``types`` maps each family to its declared type;
    ``duplicates`` lists the series given more than once (an invalid exposition)."""

    def __init__(self, body: str, openmetrics: bool) -> None:
        self.body = body
        parse = openmetrics_families if openmetrics else text_families
        self.samples: list[Sample] = []
        self.types: dict[str, str] = {}
        for family in parse(body):
            self.types[family.name] = family.type
            for sample in family.samples:
                labels = frozenset(sample.labels.items())
                self.samples.append(Sample(sample.name, labels, sample.value))
        counts = collections.Counter((s.name, s.labels) for s in self.samples)
        self.duplicates = sorted(
            (name, sorted(labels)) for (name, labels), n in counts.items() if n > 1
        )

    def select(self, name: str, **labels: str) -> list[Sample]:
        """Samples named ``name`` whose labels include ``labels``."""
        wanted = set(labels.items())
        return [s for s in self.samples if s.name == name and wanted <= s.labels]

    def total(self, name: str, **labels: str) -> float:
        """The sum over every label set of ``name`` that includes ``labels``."""
        return sum(sample.value for sample in self.select(name, **labels))

    def series(self, name: str | None = None) -> set[tuple[str, Labels]]:
        """Distinct (sample name, label set) pairs, of ``name`` or of every metric."""
        return {(s.name, s.labels) for s in self.samples if name is None or s.name == name}


def check_histograms(scrape: Scrape, bounds: list[str]) -> None:
    """Every duration series: buckets at ``bounds`` + ``+Inf``, cumulative, and its
    ``+Inf`` bucket and ``_count`` equal to the series' requests (all statuses)."""
    series = {s.labels for s in scrape.select(f"{DURATION}_count")}
    assert series, "no duration histogram series"
    for labels in series:
        wanted = dict(labels)
        buckets = scrape.select(f"{DURATION}_bucket", **wanted)
        les = [s.label("le") for s in buckets]
        assert les == [*bounds, "+Inf"], (wanted, les)
        counts = [s.value for s in buckets]
        assert counts == sorted(counts), f"buckets not cumulative: {wanted} {counts}"
        (count,) = (s.value for s in scrape.select(f"{DURATION}_count", **wanted))
        requests = scrape.total(REQUESTS, **wanted)
        assert counts[-1] == count == requests, (wanted, counts[-1], count, requests)
        (total,) = (s.value for s in scrape.select(f"{DURATION}_sum", **wanted))
        assert total >= 0, wanted


def owners(directory: Path) -> dict[str, list[str]]:
    """Metric files by the process they belong to (a pid, or ``aggregate``)."""
    found: dict[str, list[str]] = {}
    for path in directory.iterdir():
        owner = path.stem.rsplit("_", 1)[-1]
        found.setdefault(owner, []).append(path.name)
    return found


# -- HTTP ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes


def http_get(port: int, path: str, headers: Mapping[str, str] | None = None) -> Reply:
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        conn.request("GET", path, headers=dict(headers or {}))
        response = conn.getresponse()
        return Reply(response.status, response.getheader("content-type", ""), response.read())
    finally:
        conn.close()


def fetch_all(port: int, paths: Iterable[str], threads: int = 8) -> collections.Counter[str]:
    """GET every path, each on a new connection (so the kernel spreads them over the
    workers), all answered 200; returns how many each worker (``x-worker-pid``) served."""

    def one(path: str) -> str:
        response = fetch(port, path)
        assert response.status == 200, (path, response.status, response.body)
        return response.header("x-worker-pid") or "?"

    with ThreadPoolExecutor(threads) as pool:
        return collections.Counter(pool.map(one, paths))


def fetch_statuses(port: int, paths: Iterable[str], threads: int = 8) -> collections.Counter[int]:
    """GET every path on a new connection; how many got each status."""
    with ThreadPoolExecutor(threads) as pool:
        return collections.Counter(pool.map(lambda path: fetch(port, path).status, paths))


# -- the server ------------------------------------------------------------------------


class MetricsServer:
    """A covetd master with metrics on (see the module docstring)."""

    def __init__(self, server: Covetd, port: socket.socket, metrics_port: int) -> None:
        self.server = server
        self._reserved = port
        self.metrics_port = metrics_port

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def pid(self) -> int:
        assert self.server.proc is not None
        return self.server.proc.pid

    def log(self) -> str:
        return self.server.log()

    def workers(self) -> set[int]:
        """The master's live child processes."""
        return set(children(self.pid))

    def endpoint(self, path: str, accept: str | None = None) -> Reply:
        """GET ``path`` from the master's metrics endpoint (a master that died says so)."""
        try:
            return http_get(self.metrics_port, path, {"Accept": accept} if accept else None)
        except OSError:
            self.check_alive()
            raise

    def answers(self, path: str) -> Reply | None:
        """The endpoint's reply, or None while nothing listens there yet."""
        try:
            return http_get(self.metrics_port, path)
        except OSError:
            self.check_alive(grace=0)
            return None

    def check_alive(self, grace: float = 1.0) -> None:
        """Fail with the log if the master exited (or exits within ``grace`` s: a
        connection refused or reset may be the master going down)."""
        proc = self.server.proc
        if proc is None:
            return
        try:
            code = proc.wait(grace)
        except subprocess.TimeoutExpired:
            return
        raise AssertionError(f"covetd exited with {code}:\n{self.log_tail()}")

    def scrape(self, openmetrics: bool = False) -> Scrape:
        reply = self.endpoint("/metrics", OPENMETRICS if openmetrics else None)
        assert reply.status == 200, reply
        return Scrape(reply.body.decode(), openmetrics)

    def wait_value(
        self, read: Callable[[Scrape], float], expected: float, what: str, timeout: float = 10.0
    ) -> Scrape:
        """Scrape until ``read(scrape) == expected`` (a deadline; the last value is
        reported on failure). Counters are updated when a response is sent, so the
        value is usually right at once; the deadline covers a worker that answered
        but has not yet counted, and the master reaping a dead worker."""
        seen: list[float] = []

        def matches() -> Scrape | None:
            scrape = self.scrape()
            seen.append(read(scrape))
            return scrape if seen[-1] == expected else None

        try:
            found: Scrape = wait_for(matches, timeout, 0.05, f"{what} == {expected}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last seen {seen[-1:]}\n{self.log_tail()}") from None
        return found

    def wait_ready(self, timeout: float = 15.0) -> None:
        """Until ``/readyz`` says every worker is ready (fails at once if covetd exits)."""

        def ready() -> bool:
            reply = self.answers("/readyz")
            return reply is not None and reply.status == 200

        wait_for(ready, timeout, 0.02, "/readyz to answer 200")

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def stop(self) -> int | None:
        code = self.server.stop()
        self._reserved.close()
        return code


def start_metrics_server(
    config: Mapping[str, Any] | None = None,
    *,
    workers: int = 2,
    app: str = APP,
    multiproc_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    wait: bool = True,
) -> MetricsServer:
    """Start covetd with metrics on; with ``wait``, until ``/readyz`` is 200."""
    reserved = reserve_port()
    port = reserved.getsockname()[1]
    metrics_port = free_port()
    settings: dict[str, Any] = {
        "server": {"workers": workers, "graceful_timeout": 5, "bind": [f"{HOST}:{port}"]},
        "metrics": {"enabled": True, "bind": f"{HOST}:{metrics_port}"},
    }
    if multiproc_dir is not None:
        settings["metrics"]["multiproc_dir"] = str(multiproc_dir)
    for key, value in (config or {}).items():
        settings[key] = {**settings.get(key, {}), **value} if isinstance(value, dict) else value
    env = {"PYTHONDONTWRITEBYTECODE": "1", **(env or {})}
    server = Covetd(app, settings, env=env, bind=False)
    server.port = port
    started = MetricsServer(server, reserved, metrics_port)
    try:
        server.start(wait=False)
        if wait:
            started.wait_ready()
    except BaseException:
        started.stop()
        raise
    return started
