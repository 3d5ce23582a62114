"""``process_*`` metrics for the master and every worker, read from ``/proc``.

prometheus-client's ProcessCollector describes one process; here one scrape of the
master describes all of them, with a ``process`` label (``master``, ``worker-<slot>``)
and a ``pid`` label: while a replacement overlaps the worker it replaces, both hold
the same slot, and one series per process keeps every label set unique.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

__all__ = ["process_metrics"]

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _boot_time() -> float:
    """When the machine booted (epoch s): start times in /proc are relative to it.
    From the clocks rather than /proc/stat, which systemd's ProcSubset=pid hides."""
    return time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)


_BOOT = _boot_time()


def _read(pid: int) -> tuple[float, float, float, int] | None:
    """CPU seconds, RSS bytes, start time (epoch s), open fds."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / _TICKS
        rss = int(fields[21]) * _PAGE
        start = _BOOT + int(fields[19]) / _TICKS
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, ValueError, IndexError):
        return None
    return cpu, float(rss), start, fds


def process_metrics(processes: Iterable[tuple[str, int]]) -> Iterator[Metric]:
    cpu = CounterMetricFamily(
        "process_cpu_seconds", "User and system CPU time.", labels=["process", "pid"]
    )
    rss = GaugeMetricFamily(
        "process_resident_memory_bytes", "Resident memory.", labels=["process", "pid"]
    )
    start = GaugeMetricFamily(
        "process_start_time_seconds", "Start time (Unix epoch).", labels=["process", "pid"]
    )
    fds = GaugeMetricFamily("process_open_fds", "Open file descriptors.", labels=["process", "pid"])
    for name, pid in processes:
        values = _read(pid)
        if values is None:
            continue
        labels = [name, str(pid)]
        cpu.add_metric(labels, values[0])
        rss.add_metric(labels, values[1])
        start.add_metric(labels, values[2])
        fds.add_metric(labels, values[3])
    yield from (cpu, rss, start, fds)
