"""Metric values in shared memory: one float64 *cell* per (metric, label values).

Why not prometheus-client's multiprocess values on the request path: each of their
updates takes a lock, checks the pid and packs a struct (~1 µs), and a request
updates a dozen. Here a worker owns one memory-mapped file of cells and updates them
with a plain ``cells[i] += 1`` (tens of ns); the master reads every worker's file when
Prometheus scrapes. A cell is written by one process only, so no lock is needed, and
the file is shared memory, so a worker killed with ``kill -9`` loses nothing it had
counted. (App-defined metrics still use prometheus-client's multiprocess mode; both
end up in the same ``/metrics``.)

Layout per worker, in the metrics directory:

    cells_<id>.bin   CELL_COUNT float64 values (a sparse file: untouched cells cost
                     no memory)
    cells_<id>.keys  one line per allocated cell: ``<index>\\t<name>\\t<json labels>``,
                     appended (and flushed) before the cell is first written
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["CELL_COUNT", "CellReader", "CellWriter", "Key"]

CELL_COUNT = 1 << 16  # label cardinality is bounded by design; see instruments.py
CELL_SIZE = 8

Key = tuple[str, tuple[str, ...]]  # (metric name, label values)


class CellWriter:
    """The cells of this process; ``cells[cell(name, labels)] += amount``."""

    def __init__(self, directory: str, ident: str) -> None:
        base = Path(directory) / f"cells_{ident}"
        self.data_path = base.with_suffix(".bin")
        self.keys_path = base.with_suffix(".keys")
        fd = os.open(self.data_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(fd, CELL_COUNT * CELL_SIZE)
            self._map = mmap.mmap(fd, CELL_COUNT * CELL_SIZE)
        finally:
            os.close(fd)
        self.cells = memoryview(self._map).cast("d")
        self._keys = open(self.keys_path, "w", encoding="utf-8")  # noqa: SIM115 - lives with us
        self._index: dict[Key, int] = {}
        self._overflow = -1

    def cell(self, name: str, labels: tuple[str, ...] = ()) -> int:
        """The index of the cell for ``name{labels}``, allocated on first use."""
        key = (name, labels)
        index = self._index.get(key)
        if index is None:
            index = self._allocate(key)
        return index

    def _allocate(self, key: Key) -> int:
        index = len(self._index)
        if index >= CELL_COUNT - 1:
            # Out of cells (runaway labels): count into one shared, visible cell.
            if self._overflow < 0:
                self._overflow = CELL_COUNT - 1
                self._write_key(self._overflow, ("covetd_metric_cells_overflow_total", ()))
            return self._overflow
        self._write_key(index, key)
        self._index[key] = index
        return index

    def _write_key(self, index: int, key: Key) -> None:
        self._keys.write(f"{index}\t{key[0]}\t{json.dumps(list(key[1]))}\n")
        self._keys.flush()

    def close(self) -> None:
        self.cells.release()
        self._map.close()
        self._keys.close()


class CellReader:
    """Reads one process's cells (the master, at scrape time or when it died)."""

    def __init__(self, data_path: Path) -> None:
        self.data_path = data_path
        self.keys_path = data_path.with_suffix(".keys")

    def read(self) -> Iterator[tuple[Key, float]]:
        try:
            keys = self.keys_path.read_text(encoding="utf-8").splitlines()
            with open(self.data_path, "rb") as data:
                mapped = mmap.mmap(data.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return
        try:
            cells = memoryview(mapped).cast("d")
            try:
                for line in keys:
                    index_text, name, labels = line.split("\t", 2)
                    yield (name, tuple(json.loads(labels))), cells[int(index_text)]
            finally:
                cells.release()
        finally:
            mapped.close()

    def remove(self) -> None:
        for path in (self.data_path, self.keys_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def cell_files(directory: str) -> dict[str, Path]:
    """Process id → its cells file, for every writer that left files in ``directory``."""
    found = {}
    for path in Path(directory).glob("cells_*.bin"):
        found[path.stem.removeprefix("cells_")] = path
    return found
