"""covetd's worker processes as the kernel sees them (children of the master)."""

from __future__ import annotations

import os


def worker_pids(master: int) -> set[int]:
    """Live (non-zombie) children of ``master``, from /proc."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                text = stat.read().decode("ascii", "replace")
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[1]) == master and fields[0] != "Z":
            found.add(int(entry))
    return found
