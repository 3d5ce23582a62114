"""The master's view of every worker's metrics, rendered for Prometheus.

The master owns the metrics directory: it is created fresh at start (a private temp
dir unless ``metrics.multiproc_dir`` is set) and removed at exit; workers write there.
When a worker exits, its counters and histograms are folded into the master's
aggregate and its files are deleted: files do not pile up with recycling, and
counters never go backwards. Gauges describe live processes only, so a dead worker's
gauges are dropped (prometheus-client's ``livesum`` semantics).

App metrics (``covetd.metrics.Counter`` etc.) use prometheus-client's multiprocess mode
in the same directory; a dead worker's counter and histogram files are merged into
``*_aggregate.db`` files in the same way.
"""

from __future__ import annotations

import glob
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from .cells import CellReader, Key, cell_files
from .instruments import METRICS

__all__ = ["EngineCollector", "fold_dead_worker"]

_FOLDED_APP_KINDS = ("counter", "histogram", "summary")


def fold_dead_worker(directory: str, ident: str, aggregate: dict[Key, float]) -> None:
    """Fold a dead worker's counters into ``aggregate`` and delete its files."""
    path = Path(directory) / f"cells_{ident}.bin"
    reader = CellReader(path)
    for key, value in reader.read():
        spec = METRICS.get(key[0])
        if spec is None or spec.kind not in ("gauge", "worker_gauge"):
            aggregate[key] = aggregate.get(key, 0.0) + value
    reader.remove()
    _fold_app_files(directory, ident)


def _readable(path: str) -> bool:
    """A prometheus-client file that has its header: a worker creates the file before
    sizing it, and reading it in between fails (prometheus/client_python#1199)."""
    try:
        return os.path.getsize(path) >= 8
    except OSError:
        return False  # removed meanwhile (a dead worker folded)


def _fold_app_files(directory: str, pid: str) -> None:
    if not pid.isdigit():
        return
    mark_process_dead(int(pid), directory)
    for kind in _FOLDED_APP_KINDS:
        for dead in glob.glob(os.path.join(directory, f"{kind}_{pid}.db")):
            if not _readable(dead):  # created but never written: nothing to fold
                os.remove(dead)
                continue
            merged = MmapedDict(os.path.join(directory, f"{kind}_aggregate.db"))
            try:
                # (key, value, timestamp, position) in prometheus-client 0.2x
                for key, value, timestamp, *_ in MmapedDict.read_all_values_from_file(dead):
                    current, _ = merged.read_value(key)
                    merged.write_value(key, current + value, timestamp)
            finally:
                merged.close()
            os.remove(dead)
    for other in glob.glob(os.path.join(directory, f"gauge_*_{pid}.db")):
        os.remove(other)  # gauges of other modes describe a process that is gone


class EngineCollector:
    """A prometheus-client collector over the workers' cells (plus the aggregate)."""

    def __init__(
        self,
        directory: str,
        aggregate: Mapping[Key, float],
        worker_of: Callable[[str], str | None],
        buckets: tuple[float, ...],
        master_metrics: Callable[[], Iterable[Metric]],
    ) -> None:
        self.directory = directory
        self.aggregate = aggregate
        self.worker_of = worker_of
        self.buckets = buckets
        self.master_metrics = master_metrics

    def collect(self) -> Iterator[Metric]:
        totals: dict[Key, float] = defaultdict(float, self.aggregate)
        per_worker: dict[Key, float] = {}
        for ident, path in cell_files(self.directory).items():
            worker = self.worker_of(ident)
            for key, value in CellReader(path).read():
                spec = METRICS.get(key[0])
                if spec is not None and spec.kind == "worker_gauge":
                    if worker is not None:
                        per_worker[(key[0], (worker,))] = value
                else:
                    totals[key] += value
        yield from self._families(totals, per_worker)
        yield from self.master_metrics()
        files = [
            path for path in glob.glob(os.path.join(self.directory, "*.db")) if _readable(path)
        ]
        yield from MultiProcessCollector.merge(files, accumulate=True)

    def _families(
        self, totals: Mapping[Key, float], per_worker: Mapping[Key, float]
    ) -> Iterator[Metric]:
        by_name: dict[str, list[tuple[tuple[str, ...], float]]] = defaultdict(list)
        for (name, labels), value in totals.items():
            by_name[name].append((labels, value))
        for (name, labels), value in per_worker.items():
            by_name[name].append((labels, value))
        counts: dict[tuple[str, tuple[str, ...]], float] = {}
        for name, spec in METRICS.items():
            rows = by_name.get(name, [])
            if spec.kind == "counter":
                family: Any = CounterMetricFamily(name, spec.help, labels=list(spec.labels))
                for labels, value in sorted(rows):
                    family.add_metric(list(labels), value)
            elif spec.kind in ("gauge", "worker_gauge"):
                labelnames = ["worker"] if spec.kind == "worker_gauge" else list(spec.labels)
                family = GaugeMetricFamily(name, spec.help, labels=labelnames)
                for labels, value in sorted(rows):
                    family.add_metric(list(labels), value)
            elif spec.kind == "histogram":
                family = HistogramMetricFamily(name, spec.help, labels=list(spec.labels))
                for labels, (buckets, total) in sorted(self._histograms(rows).items()):
                    family.add_metric(list(labels), buckets, total)
                    counts[(name, labels)] = buckets[-1][1] if buckets else 0.0
            else:
                # A size summary shares its count with the series' duration histogram.
                family = SummaryMetricFamily(name, spec.help, labels=list(spec.labels))
                for labels, total in sorted(_sums(rows).items()):
                    count = counts.get(("covetd_http_request_duration_seconds", labels), 0.0)
                    family.add_metric(list(labels), count, total)
            yield family

    def _histograms(
        self, rows: list[tuple[tuple[str, ...], float]]
    ) -> dict[tuple[str, ...], tuple[list[tuple[str, float]], float]]:
        """Cells (labels + "sum" / "le=x") → cumulative buckets and sum per series."""
        parts: dict[tuple[str, ...], dict[str, float]] = defaultdict(dict)
        for labels, value in rows:
            parts[labels[:-1]][labels[-1]] = parts[labels[:-1]].get(labels[-1], 0.0) + value
        result = {}
        for labels, cells in parts.items():
            bounds = sorted(
                (float(part[3:]), value) for part, value in cells.items() if part.startswith("le=")
            )
            cumulative, buckets = 0.0, []
            for bound, value in bounds:
                cumulative += value
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            result[labels] = (buckets, cells.get("sum", 0.0))
        return result


def _sums(rows: list[tuple[tuple[str, ...], float]]) -> dict[tuple[str, ...], float]:
    sums: dict[tuple[str, ...], float] = defaultdict(float)
    for labels, value in rows:
        if labels[-1] == "sum":
            sums[labels[:-1]] += value
    return sums
